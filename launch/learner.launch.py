"""rill's stream-x learner as a ROS 2 node: ``ros2 launch rill learner.launch.py [ARG:=VALUE ...]``.

Arguments: ``config`` (a ``learner_node`` parameter file, default the installed
``config/ros_learner.yaml``), ``bind`` (``tcp://HOST:PORT``; off loopback give CurveZMQ keys in the
config), ``run_dir``. Agents reach it with ``agent.launch.py learner:=tcp://HOST:PORT``.
"""

# ruff: noqa: I001  (isort takes `launch` for this repository's launch/ folder; it is ROS 2's package)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _learner(context):
    overrides = {}
    for name in ("bind", "run_dir"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    return [Node(package="rill", executable="learner_node", name="learner_node", output="screen",
                 parameters=[LaunchConfiguration("config"), overrides])]


def generate_launch_description():
    default_config = PathJoinSubstitution([FindPackageShare("rill"), "config", "ros_learner.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config, description="parameter file"),
        DeclareLaunchArgument("bind", default_value="", description="tcp://HOST:PORT (empty: the config's)"),
        DeclareLaunchArgument("run_dir", default_value="", description="run directory (empty: the config's)"),
        OpaqueFunction(function=_learner),
    ])
