"""rill's agent on a ROS 2 robot: ``ros2 launch rill agent.launch.py [ARG:=VALUE ...]``.

Starts ``agent_node`` (the control loop, the policy, the learner client) with the parameters of
``config`` (default: the installed ``config/ros_agent.yaml``). Arguments:

- ``config``: a parameter file for ``agent_node``;
- ``learner``: the learner endpoint ``tcp://HOST:PORT`` (empty: the config's, no learning by default);
- ``joints``: the commanded joints, e.g. ``"[shoulder, elbow]"`` (empty: the config's);
- ``policy``: the policy type (empty: the config's);
- ``joint_states``, ``image``, ``instruction``, ``trajectory``, ``forward``, ``diagnostics``:
  topic remaps of the defaults ``/joint_states``, ``/camera/image_raw``, ``/instruction``,
  ``/joint_trajectory_controller/joint_trajectory``, ``/forward_position_controller/commands``,
  ``/diagnostics``;
- ``namespace``: the node's namespace.
"""

# ruff: noqa: I001  (isort takes `launch` for this repository's launch/ folder; it is ROS 2's package)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

TOPICS = {
    "joint_states": "/joint_states",
    "image": "/camera/image_raw",
    "instruction": "/instruction",
    "trajectory": "/joint_trajectory_controller/joint_trajectory",
    "forward": "/forward_position_controller/commands",
    "diagnostics": "/diagnostics",
}


def _agent(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ("learner", "joints", "policy")}
    overrides = {}
    if arg["learner"]:
        overrides["learner.endpoint"] = arg["learner"]
    if arg["joints"]:
        overrides["robot.joints"] = [j.strip() for j in arg["joints"].strip("[]").split(",") if j.strip()]
    if arg["policy"]:
        overrides["policy.type"] = arg["policy"]
    remaps = [(default, LaunchConfiguration(name).perform(context)) for name, default in TOPICS.items()]
    return [Node(
        package="rill",
        executable="agent_node",
        name="agent_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("config"), overrides],
        remappings=[(src, dst) for src, dst in remaps if src != dst],
    )]


def generate_launch_description():
    default_config = PathJoinSubstitution([FindPackageShare("rill"), "config", "ros_agent.yaml"])
    args = [
        DeclareLaunchArgument("config", default_value=default_config, description="parameter file"),
        DeclareLaunchArgument("learner", default_value="", description="learner endpoint tcp://HOST:PORT"),
        DeclareLaunchArgument("joints", default_value="", description="commanded joints, '[a, b, c]'"),
        DeclareLaunchArgument("policy", default_value="", description="replan|reach|streamx|vla|class"),
        DeclareLaunchArgument("namespace", default_value="", description="the node's namespace"),
    ]
    args += [DeclareLaunchArgument(name, default_value=default, description=f"remap of {default}")
             for name, default in TOPICS.items()]
    return LaunchDescription([*args, OpaqueFunction(function=_agent)])
