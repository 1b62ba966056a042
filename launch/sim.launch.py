"""The whole ROS path without hardware: ``ros2 launch rill sim.launch.py [start_learner:=true]``.

Starts ``sim_node`` (a simulated MuJoCo arm publishing joint states, camera images, reward and
its instruction, obeying trajectory and forward commands) and ``agent_node`` driving it with the
scripted reaching policy (``config/ros_sim.yaml``, ``config/ros_sim_agent.yaml``). With
``start_learner:=true`` it also starts ``learner_node`` (``config/ros_learner.yaml``) on loopback
and points the agent's learner client at it. Arguments: ``sim_config``, ``agent_config``,
``learner_config``, ``policy`` (the agent's policy type), ``start_learner``.
"""

# ruff: noqa: I001  (isort takes `launch` for this repository's launch/ folder; it is ROS 2's package)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

LEARNER_ENDPOINT = "tcp://127.0.0.1:5555"


def _config(name):
    return PathJoinSubstitution([FindPackageShare("rill"), "config", name])


def _nodes(context):
    start_learner = LaunchConfiguration("start_learner").perform(context).lower() in ("true", "1", "yes")
    policy = LaunchConfiguration("policy").perform(context)
    agent_overrides = {}
    if policy:
        agent_overrides["policy.type"] = policy
    nodes = [Node(package="rill", executable="sim_node", name="sim_node", output="screen",
                  parameters=[LaunchConfiguration("sim_config")])]
    if start_learner:
        agent_overrides["learner.endpoint"] = LEARNER_ENDPOINT
        nodes.append(Node(package="rill", executable="learner_node", name="learner_node", output="screen",
                          parameters=[LaunchConfiguration("learner_config"), {"bind": LEARNER_ENDPOINT}]))
    nodes.append(Node(package="rill", executable="agent_node", name="agent_node", output="screen",
                      parameters=[LaunchConfiguration("agent_config"), agent_overrides]))
    return nodes


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("sim_config", default_value=_config("ros_sim.yaml")),
        DeclareLaunchArgument("agent_config", default_value=_config("ros_sim_agent.yaml")),
        DeclareLaunchArgument("learner_config", default_value=_config("ros_learner.yaml")),
        DeclareLaunchArgument("policy", default_value="", description="the agent's policy type"),
        DeclareLaunchArgument("start_learner", default_value="false", description="also start learner_node"),
        OpaqueFunction(function=_nodes),
    ])
