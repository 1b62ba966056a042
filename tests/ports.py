"""A free TCP port on loopback, for tests that bind or dial a socket of their own."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody on 127.0.0.1 listens on now (the OS picked it; a test binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
