"""``PinholeCamera``: where a world point lands in a ``sim-metaworld`` camera frame.

MuJoCo's cameras are pinholes: a position, an orientation whose columns are the camera's x, y and z
axes in the world (it looks along -z, y up), and a vertical field of view. ``MetaWorldEnv`` renders
Meta-World's cameras turned half a turn (its frames are upright), so a point's pixel in the frame it
reports is the mirror, in both axes, of MuJoCo's. Used to label frames with the image position of a
point the simulator knows (the goal, for a ``MarkerLocator``) and to measure what one frame can tell
about depth (``bench.metaworld_goal_geometry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """A camera at one instant: ``position`` [3], ``rotation`` [3, 3] (columns: its axes in the
    world), ``focal`` length in pixels, frame ``height`` x ``width``."""

    position: np.ndarray
    rotation: np.ndarray
    focal: float
    height: int
    width: int

    @classmethod
    def of(cls, model, data, camera: str, height: int, width: int) -> PinholeCamera:
        """The MuJoCo ``camera`` as ``data`` places it now (call after a forward pass)."""
        cam = model.camera(camera).id
        focal = (height / 2) / np.tan(np.deg2rad(float(model.cam_fovy[cam])) / 2)
        return cls(data.cam_xpos[cam].copy(), data.cam_xmat[cam].reshape(3, 3).copy(), float(focal),
                   int(height), int(width))

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions (row, column in the upright frame the env reports; pixel ``i`` spans
        ``[i, i + 1)``) and depths along the view axis of world ``points`` [N, 3]."""
        local = (np.asarray(points, np.float64).reshape(-1, 3) - self.position) @ self.rotation
        depth = -local[:, 2]
        u, v = self.focal * local[:, 0] / depth, self.focal * local[:, 1] / depth
        return np.stack([self.height / 2 + v, self.width / 2 - u], 1), depth
