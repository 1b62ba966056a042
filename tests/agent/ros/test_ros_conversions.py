"""Message conversion without ROS: image encodings, joints by name, chunk timing, stamps.

The decoders read message fields only, so these run on plain field holders; the same functions
on real ``sensor_msgs`` / ``trajectory_msgs`` messages are checked in the ROS venv
(``inside/check_ros_messages.py``)."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from agent.ros.conversions import (
    ImageFormatError,
    JointMatcher,
    MissingJointsError,
    UnsupportedEncodingError,
    compressed_to_rgb,
    duration_parts,
    image_to_rgb,
    rgb_to_image_fields,
    trajectory_times,
)
from agent.ros.timing import MessageAges

RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _image(encoding: str, pixels: np.ndarray, pad: int = 0) -> SimpleNamespace:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    return SimpleNamespace(encoding=encoding, height=h, width=w, step=padded.shape[1], is_bigendian=0,
                           data=padded.tobytes())


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb8_bgr8_rgba8_bgra8_decode_to_the_same_rgb(pad):
    alpha = np.full((5, 7, 1), 255, np.uint8)
    assert np.array_equal(image_to_rgb(_image("rgb8", RGB, pad)), RGB)
    assert np.array_equal(image_to_rgb(_image("bgr8", RGB[:, :, ::-1].copy(), pad)), RGB)
    assert np.array_equal(image_to_rgb(_image("rgba8", np.concatenate([RGB, alpha], 2), pad)), RGB)
    bgra = np.concatenate([RGB[:, :, ::-1], alpha], 2)
    assert np.array_equal(image_to_rgb(_image("bgra8", bgra, pad)), RGB)


def test_mono8_becomes_grey_rgb():
    grey = RGB[:, :, 0].copy()
    out = image_to_rgb(_image("mono8", grey[:, :, None], pad=1))
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 0], grey) and np.array_equal(out[:, :, 2], grey)


def test_encode_then_decode_round_trips_each_encoding():
    for encoding in ("rgb8", "bgr8"):
        fields = rgb_to_image_fields(RGB, encoding)
        assert fields["step"] == 7 * 3 and fields["encoding"] == encoding
        assert np.array_equal(image_to_rgb(SimpleNamespace(**fields)), RGB)
    mono = image_to_rgb(SimpleNamespace(**rgb_to_image_fields(RGB, "mono8")))
    assert mono.shape == (5, 7, 3)


def test_unsupported_encoding_is_an_error_naming_it():
    with pytest.raises(UnsupportedEncodingError, match=r"'bayer_rggb8'.*rgb8, bgr8, mono8"):
        image_to_rgb(_image("bayer_rggb8", RGB[:, :, :1].copy()))
    with pytest.raises(UnsupportedEncodingError, match="'16UC1'"):
        image_to_rgb(_image("16UC1", RGB[:, :, :2].copy()))


def test_short_data_is_an_error_with_the_sizes():
    msg = _image("rgb8", RGB)
    msg.data = msg.data[:-30]
    with pytest.raises(ImageFormatError, match="rgb8 image 7x5 with step 21 needs 105 bytes, got 75"):
        image_to_rgb(msg)


def test_resize_to_the_declared_shape():
    assert image_to_rgb(_image("rgb8", RGB), (10, 14)).shape == (10, 14, 3)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_images_decode(fmt):
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format=fmt.upper(), quality=95) if fmt == "jpeg" else \
        Image.fromarray(RGB).save(buf, format="PNG")
    out = compressed_to_rgb(SimpleNamespace(format=fmt, data=buf.getvalue()), (5, 7))
    assert out.shape == (5, 7, 3)
    if fmt == "png":
        assert np.array_equal(out, RGB)
    with pytest.raises(ImageFormatError, match="format 'jpeg' does not decode"):
        compressed_to_rgb(SimpleNamespace(format="jpeg", data=b"not an image"))


def test_joint_states_are_matched_by_name_not_index():
    matcher = JointMatcher(["shoulder", "elbow"])
    pos, vel = matcher.match(["gripper", "elbow", "shoulder"], [9.0, 2.0, 1.0], [0.9, 0.2, 0.1])
    assert pos.tolist() == [1.0, 2.0] and np.allclose(vel, [0.1, 0.2])
    # A driver that reorders its joints between messages is still read right.
    pos, vel = matcher.match(["shoulder", "elbow", "gripper"], [1.5, 2.5, 9.0], [])
    assert pos.tolist() == [1.5, 2.5] and vel.tolist() == [0.0, 0.0]


def test_a_missing_joint_is_named():
    matcher = JointMatcher(["shoulder", "elbow", "wrist"])
    with pytest.raises(MissingJointsError, match=r"lacks configured joint\(s\) \['elbow', 'wrist'\]"):
        matcher.match(["shoulder", "gripper"], [1.0, 2.0])
    found, pos, _, missing = matcher.partial(["wrist", "gripper"], [3.0, 0.0])
    assert found.tolist() == [2] and pos.tolist() == [3.0] and missing == ["shoulder", "elbow"]


def test_inconsistent_joint_state_lengths_are_refused():
    with pytest.raises(ValueError, match="2 names but 1 positions"):
        JointMatcher(["a"]).match(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="2 names but 1 velocities"):
        JointMatcher(["a"]).match(["a", "b"], [1.0, 2.0], [0.0])


def test_chunk_points_are_one_period_apart_starting_one_period_ahead():
    times = trajectory_times(4, 0.02)
    assert np.allclose(times, [0.02, 0.04, 0.06, 0.08])
    assert np.all(np.diff(times) > 0)
    assert duration_parts(0.02) == (0, 20_000_000)
    assert duration_parts(2.5) == (2, 500_000_000)
    assert duration_parts(times[-1] * 25) == (2, 0)
    with pytest.raises(ValueError):
        duration_parts(-0.1)


def test_old_messages_are_dropped_and_counted_and_stamps_become_monotonic():
    ages = MessageAges(max_age_s=0.25)
    now_ros, now_mono = 1_000 * 10**9, 50.0
    assert ages.accept("/js", now_ros - 100_000_000, now_ros, now_mono) == pytest.approx(49.9)
    assert ages.accept("/js", now_ros - 300_000_000, now_ros, now_mono) is None
    assert ages.accept("/js", 0, now_ros, now_mono) == now_mono  # unstamped: taken on arrival
    assert ages.accept("/js", now_ros + 50_000_000, now_ros, now_mono) == now_mono  # skewed clock
    assert ages.counters() == {"dropped_stale": 1, "unstamped": 1, "future_stamps": 1}


def test_a_stamp_from_another_clock_is_explained(caplog):
    ages = MessageAges(max_age_s=0.25)
    with caplog.at_level(logging.WARNING):
        assert ages.accept("/js", 12 * 10**9, 1_700_000_000 * 10**9, 5.0) is None  # sim time vs wall
    assert "use_sim_time" in caplog.text and "/js" in caplog.text
