"""Message conversion on the real ``sensor_msgs`` / ``trajectory_msgs`` / ``std_msgs`` /
``diagnostic_msgs`` classes: image encodings both ways, chunk -> JointTrajectory timing,
forward commands, diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CompressedImage, Image

from agent.ros.conversions import (
    UnsupportedEncodingError,
    compressed_to_rgb,
    forward_command_msg,
    image_msg,
    image_to_rgb,
    joint_state_msg,
    joint_trajectory_msg,
    trajectory_points,
)
from agent.ros.diagnostics import ERROR, diagnostic_array

RGB = np.random.default_rng(1).integers(0, 256, (6, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8"])
def test_images_round_trip_through_real_messages(encoding):
    msg = image_msg(RGB, encoding)
    assert isinstance(msg, Image) and msg.encoding == encoding and (msg.height, msg.width) == (6, 4)
    out = image_to_rgb(msg)
    if encoding == "mono8":
        assert msg.step == 4 and np.array_equal(out[..., 0], out[..., 1])
    else:
        assert msg.step == 12 and np.array_equal(out, RGB)


def test_an_unsupported_encoding_on_a_real_message_is_named():
    msg = image_msg(RGB, "rgb8")
    msg.encoding = "16UC1"
    with pytest.raises(UnsupportedEncodingError, match="'16UC1'"):
        image_to_rgb(msg)


def test_compressed_image_message():
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(RGB).save(buf, format="PNG")
    msg = CompressedImage(format="png", data=buf.getvalue())
    assert np.array_equal(compressed_to_rgb(msg), RGB)


def test_a_chunk_becomes_a_trajectory_with_increasing_times():
    chunk = np.linspace([0.0, 1.0], [0.9, 1.9], 10, dtype=np.float32)
    msg = joint_trajectory_msg(["shoulder", "elbow"], chunk, 0.05)
    assert msg.joint_names == ["shoulder", "elbow"] and len(msg.points) == 10
    names, times, points = trajectory_points(msg)
    assert names == ["shoulder", "elbow"]
    assert np.allclose(times, 0.05 * np.arange(1, 11)) and np.all(np.diff(times) > 0)
    assert np.allclose(points, chunk, atol=1e-6)
    assert msg.points[-1].time_from_start.sec == 0 and msg.points[-1].time_from_start.nanosec == 500_000_000


def test_forward_command_and_joint_state_messages():
    assert forward_command_msg(np.array([0.5, -1.0], np.float32)).data.tolist() == [0.5, -1.0]
    msg = joint_state_msg(["a", "b"], [1.0, 2.0], [0.1, 0.2])
    assert msg.name == ["a", "b"] and msg.position.tolist() == [1.0, 2.0]


def test_diagnostics_message():
    snap = {"level": ERROR, "message": "no sensor data since 10:00:00.000 (3.0 s): /joint_states",
            "ticks": 10, "robot": {"status": "holding"}, "learner": {"acked_seq": 5}}
    msg = diagnostic_array(snap, "rill: agent_node control loop", "/agent_node")
    assert isinstance(msg, DiagnosticArray)
    status = msg.status[0]
    assert status.level == DiagnosticStatus.ERROR and status.message.startswith("no sensor data since")
    assert {kv.key: kv.value for kv in status.values} == {"ticks": "10", "robot.status": "holding",
                                                         "learner.acked_seq": "5"}
