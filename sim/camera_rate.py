"""``CameraRate``: a simulated camera slower than the control loop.

A real camera delivers frames at its own rate (often 15-30 Hz) while the controller ticks faster;
between frames a robot's driver hands out the last one. ``CameraRate(every)`` gives a new set of
frames at an episode's first observation and every ``every``-th step after it, and the last set in
between, read-only (the same arrays go out several times: nobody may change them). ``every = 1``
renders every step, as before.

Rendering is most of a simulated tick where MuJoCo renders in software (EGL without a GPU): with
``every`` set to a chunking policy's chunk length, a stepped loop plans from the very frames it
would have had at ``every = 1``, for a fraction of the rendering (``bench.sim_camera``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class CameraRate:
    """Which steps render new frames; ``every`` a positive integer (``ValueError`` otherwise)."""

    def __init__(self, every: int = 1) -> None:
        if type(every) is not int or every < 1:
            raise ValueError(f"camera_every must be a positive integer, got {every!r}")
        self.every = every
        self._frames: dict[str, np.ndarray] | None = None
        self._since = 0  # steps since the frames were made

    def reset(self) -> None:
        """A new episode: its first observation gets new frames."""
        self._frames = None

    def frames(self, render: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """This step's frames: ``render()``'s when the camera is due, else the last ones."""
        if self.every == 1:
            return render()
        if self._frames is None or self._since >= self.every:
            self._frames = render()
            for frame in self._frames.values():
                frame.flags.writeable = False
            self._since = 0
        self._since += 1
        return self._frames
