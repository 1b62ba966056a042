"""ROS 2 messages <-> numpy: camera images, joint states by name, action chunks as trajectories.

The decoding side reads only message fields (``encoding``, ``height``, ``data``...), so it works on
any message object; the building side imports the message classes when called. Errors name what
is wrong: the unsupported encoding, the joints a ``JointState`` lacks, the inconsistent length.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Image encodings ``image_to_rgb`` decodes (channels, and the order to read them as RGB).
IMAGE_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class UnsupportedEncodingError(ValueError):
    """A ``sensor_msgs/Image`` in an encoding rill does not decode (the message names it)."""


class ImageFormatError(ValueError):
    """An image message whose size fields and data disagree, or a compressed one that won't decode."""


class MissingJointsError(ValueError):
    """A ``JointState`` lacks configured joints; ``missing`` lists them by name."""

    def __init__(self, missing: list[str], topic: str = "joint_states") -> None:
        self.missing = list(missing)
        super().__init__(f"{topic} lacks configured joint(s) {self.missing}")


# -- images ----------------------------------------------------------------------------------------
def image_to_rgb(msg: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ``sensor_msgs/Image`` as an ``HxWx3`` uint8 RGB array (resized to ``shape`` if given).

    Decodes ``rgb8``, ``bgr8``, ``mono8`` (grey repeated to three channels), ``rgba8`` and
    ``bgra8`` (alpha dropped); respects row padding (``step``).
    """
    encoding = str(msg.encoding).strip().lower()
    channels = IMAGE_ENCODINGS.get(encoding)
    if channels is None:
        raise UnsupportedEncodingError(
            f"image encoding {msg.encoding!r} is not supported; use one of {', '.join(IMAGE_ENCODINGS)} "
            "(or a CompressedImage)"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * channels
    data = _uint8_view(msg.data)
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"image of size {width}x{height}: nothing to decode")
    if step < row or data.size < step * (height - 1) + row:
        raise ImageFormatError(
            f"{encoding} image {width}x{height} with step {step} needs {step * (height - 1) + row} "
            f"bytes, got {data.size}"
        )
    if data.size < step * height:  # the last row's padding may be missing
        data = np.concatenate([data, np.zeros(step * height - data.size, np.uint8)])
    pixels = data[: step * height].reshape(height, step)[:, :row].reshape(height, width, channels)
    if encoding == "mono8":
        rgb = np.repeat(pixels, 3, axis=2)
    elif encoding in ("bgr8", "bgra8"):
        rgb = pixels[:, :, 2::-1]
    else:
        rgb = pixels[:, :, :3]
    return resize_rgb(np.ascontiguousarray(rgb), shape)


def _uint8_view(data: Any) -> np.ndarray:
    try:
        return np.frombuffer(data, np.uint8)  # bytes, array.array('B'), memoryview: no copy
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)


def compressed_to_rgb(msg: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG or PNG) as an ``HxWx3`` uint8 RGB array."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(_uint8_view(msg.data).tobytes())) as img:
            rgb = np.asarray(img.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageFormatError(f"compressed image of format {msg.format!r} does not decode: {e}") from e
    return resize_rgb(rgb, shape)


def resize_rgb(rgb: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """``rgb`` resized to ``shape`` = (height, width) (bilinear), unchanged if already that size."""
    if shape is None or rgb.shape[:2] == tuple(shape):
        return rgb
    from PIL import Image

    out = Image.fromarray(rgb).resize((int(shape[1]), int(shape[0])), Image.BILINEAR)
    return np.asarray(out, np.uint8)


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict[str, Any]:
    """The fields of a ``sensor_msgs/Image`` holding ``rgb`` (HxWx3 uint8) in ``encoding``."""
    rgb = np.asarray(rgb, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(f"expected an HxWx3 uint8 image, got shape {rgb.shape}")
    if encoding == "rgb8":
        pixels = rgb
    elif encoding == "bgr8":
        pixels = rgb[:, :, ::-1]
    elif encoding == "mono8":
        grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        pixels = np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None]
    else:
        raise UnsupportedEncodingError(f"cannot encode an image as {encoding!r}; use rgb8, bgr8 or mono8")
    height, width, channels = pixels.shape
    return {"height": height, "width": width, "encoding": encoding, "is_bigendian": 0,
            "step": width * channels, "data": np.ascontiguousarray(pixels).tobytes()}


def image_msg(rgb: np.ndarray, encoding: str = "rgb8", stamp: Any = None, frame_id: str = "camera"):
    """A ``sensor_msgs/Image`` of ``rgb`` in ``encoding``."""
    from sensor_msgs.msg import Image

    msg = Image()
    for key, value in rgb_to_image_fields(rgb, encoding).items():
        setattr(msg, key, value)
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


# -- joint states ----------------------------------------------------------------------------------
class JointMatcher:
    """Picks configured joints out of ``JointState`` messages by name, never by index.

    Drivers publish joints in any order (and may add joints rill does not drive); the index map is
    cached per name list, so a driver that keeps its order costs one dict lookup per message.
    """

    def __init__(self, joints: Sequence[str], topic: str = "joint_states") -> None:
        self.joints = list(joints)
        self.topic = topic
        self._names: tuple[str, ...] | None = None
        self._found = self._index = np.zeros(0, np.intp)
        self._missing: list[str] = []

    def locate(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """For a message's name list: which configured joints it holds (their indices), where in
        the message they are, and the configured joints it lacks."""
        names = tuple(names)
        if names != self._names:
            where: dict[str, int] = {}
            for i, name in enumerate(names):
                where.setdefault(name, i)
            ours = [k for k, j in enumerate(self.joints) if j in where]
            self._names = names
            self._found = np.array(ours, np.intp)
            self._index = np.array([where[self.joints[k]] for k in ours], np.intp)
            self._missing = [j for j in self.joints if j not in where]
        return self._found, self._index, self._missing

    def partial(self, names: Sequence[str], position: Sequence[float], velocity: Sequence[float] = ()
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """``(found, positions, velocities, missing)``: the configured joints this message reports
        (indices into ``joints``) with their values, and those it lacks. For drivers that split the
        joints over several ``JointState`` publishers."""
        names = list(names)
        position = np.asarray(position, np.float64).reshape(-1)
        velocity = np.asarray(velocity, np.float64).reshape(-1)
        if position.size != len(names):
            raise ValueError(f"{self.topic}: {len(names)} names but {position.size} positions")
        if velocity.size not in (0, len(names)):
            raise ValueError(f"{self.topic}: {len(names)} names but {velocity.size} velocities")
        found, index, missing = self.locate(names)
        pos = position[index].astype(np.float32)
        vel = velocity[index].astype(np.float32) if velocity.size else np.zeros(len(index), np.float32)
        return found, pos, vel, missing

    def match(self, names: Sequence[str], position: Sequence[float],
              velocity: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities (zeros when the message has none) of every configured joint;
        ``MissingJointsError`` naming those the message lacks."""
        _, pos, vel, missing = self.partial(names, position, velocity)
        if missing:
            raise MissingJointsError(missing, self.topic)
        return pos, vel


def joint_state_msg(names: Sequence[str], position: Sequence[float], velocity: Sequence[float] = (),
                    stamp: Any = None):
    """A ``sensor_msgs/JointState``."""
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    msg.velocity = [float(v) for v in velocity]
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


# -- commands --------------------------------------------------------------------------------------
def duration_parts(seconds: float) -> tuple[int, int]:
    """``(sec, nanosec)`` of a non-negative duration, as ``builtin_interfaces/Duration`` holds it."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration must be finite and >= 0, got {seconds!r}")
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return int(sec), int(nanosec)


def trajectory_times(n_points: int, period_s: float, first_s: float | None = None) -> list[float]:
    """``time_from_start`` of each point of a chunk: ``first_s`` (default one period), then one
    period apart. Point ``h`` is where the joints should be ``h + 1`` ticks from now."""
    if n_points < 1 or not period_s > 0:
        raise ValueError(f"trajectory of {n_points} points at period {period_s!r}")
    first = period_s if first_s is None else first_s
    return [first + h * period_s for h in range(n_points)]


def joint_trajectory_msg(joints: Sequence[str], points: np.ndarray, period_s: float,
                         first_s: float | None = None):
    """A ``trajectory_msgs/JointTrajectory``: row ``h`` of ``points`` ([P, A] positions, ordered as
    ``joints``) at ``time_from_start`` ``first_s + h * period_s``.

    The header stamp stays zero, which tells a ros2_control ``joint_trajectory_controller`` to start
    the trajectory on receipt: no clock agreement between the agent and the driver is needed.
    """
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != len(joints):
        raise ValueError(f"trajectory points of shape {points.shape} for {len(joints)} joints")
    msg = JointTrajectory()
    msg.joint_names = list(joints)
    for row, t in zip(points, trajectory_times(len(points), period_s, first_s)):
        point = JointTrajectoryPoint()
        point.positions = [float(v) for v in row]
        point.time_from_start.sec, point.time_from_start.nanosec = duration_parts(t)
        msg.points.append(point)
    return msg


def trajectory_points(msg: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(joint_names, times [P], positions [P, A])`` of a ``JointTrajectory`` message."""
    names = list(msg.joint_names)
    times, rows = [], []
    for i, point in enumerate(msg.points):
        if len(point.positions) != len(names):
            raise ValueError(f"trajectory point {i} has {len(point.positions)} positions for "
                             f"{len(names)} joints")
        times.append(point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
        rows.append(list(point.positions))
    if not rows:
        return names, np.zeros(0), np.zeros((0, len(names)))
    t = np.asarray(times)
    if np.any(np.diff(t) <= 0):
        raise ValueError("trajectory points must have strictly increasing time_from_start")
    return names, t, np.asarray(rows, np.float64)


def forward_command_msg(values: Sequence[float]):
    """A ``std_msgs/Float64MultiArray`` for a ``forward_command_controller``: one value per joint, in
    the controller's configured joint order."""
    from std_msgs.msg import Float64MultiArray

    msg = Float64MultiArray()
    msg.data = [float(v) for v in values]
    return msg
