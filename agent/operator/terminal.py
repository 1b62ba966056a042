"""``TerminalKeys``: the terminal's keys, read raw on a thread of their own, fed to a ``KeyboardOperator``.

The terminal is put in cbreak mode (keys arrive as typed, no echo; Ctrl-C still interrupts) and
restored on ``close``. End of input (the terminal closed) tells the operator its keyboard is gone,
so an intervention under way holds the robot. Only ``rill actor --keyboard`` uses it; everything
it feeds is handled, and tested, by ``KeyboardOperator``.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)


class TerminalKeys:
    """Reads ``fd`` (default: stdin, which must be a terminal) into ``operator.feed``."""

    def __init__(self, operator: Any, fd: int | None = None) -> None:
        self.operator = operator
        self.fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(self.fd):
            raise RuntimeError("--keyboard needs a terminal on standard input")
        self._saved: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="keyboard", daemon=True)

    def start(self) -> TerminalKeys:
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self.fd, 64)
            if not data:
                self.operator.lose("the terminal closed")
                return
            self.operator.feed(data.decode(errors="replace"))

    def close(self) -> None:
        import termios

        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
