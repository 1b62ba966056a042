"""Simulated environments and robots (MuJoCo, gymnasium).

Imports ``hal`` and the numpy-only stream-x normalizers of ``policies`` (see docs/design.md, "Rooms").

MuJoCo loads its OpenGL backend (``MUJOCO_GL``: egl, osmesa, glfw) when it is first imported, so a
backend this machine cannot load fails here, before any simulation, with ``RenderingUnavailable``
naming ``MUJOCO_GL`` instead of an error from deep inside PyOpenGL.
"""

import os

from hal.errors import HalError


class RenderingUnavailable(HalError):
    """MuJoCo cannot render offscreen on this machine with this ``MUJOCO_GL``."""


def gl_hint() -> str:
    """What to do about a rendering failure: the ``MUJOCO_GL`` in force and the usual fix."""
    return (f"MUJOCO_GL is {os.environ.get('MUJOCO_GL')!r}: set MUJOCO_GL=egl (or osmesa, where "
            "installed) on a machine without a display")


try:
    import mujoco  # noqa: F401
except (ImportError, AttributeError, RuntimeError, OSError) as _e:
    raise RenderingUnavailable(f"cannot load MuJoCo with its OpenGL backend ({type(_e).__name__}: {_e}); "
                               f"{gl_hint()}") from _e
