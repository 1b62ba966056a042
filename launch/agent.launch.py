"""rill's agent on a ROS 2 robot: ``ros2 launch rill agent.launch.py [ARG:=VALUE ...]``.

Starts ``agent_node`` (the control loop, the policy, the learner client) with the parameters of
``config`` (default: the installed ``config/ros_agent.yaml``). Arguments:

- ``config``: a parameter file for ``agent_node``;
- ``learner``: the learner endpoint ``tcp://HOST:PORT`` (empty: the config's, no learning by default);
- ``joints``: the commanded joints, e.g. ``"[shoulder, elbow]"`` (empty: the config's);
- ``policy``: the policy type (empty: the config's);
- ``operator``: ``true`` runs operator episodes (``operator.enabled``: start, success, failure,
  reset, stop on ``/rill/operator/event``; state on ``/rill/episode``), ``false`` the robot's own;
- ``time_limit``: seconds after which an operator episode ends as a timeout (``operator.time_limit_s``);
- ``home_pose``: where the reset routine moves the robot, e.g. ``"[0.0, 0.5]"`` (``operator.home_pose``);
- ``teleop``: a teleop command topic a person takes over on (``intervention.topic``), with
  ``teleop_active``, its ``std_msgs/Bool`` "a person drives" topic (``intervention.active_topic``);
- ``reward_model``: a saved reward model directory whose success judgement gives the task signals
  (``reward.model``);
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


#: Launch arguments that set one agent_node parameter each; empty leaves the config's value.
PARAMETERS = {
    "learner": "learner.endpoint",
    "joints": "robot.joints",
    "policy": "policy.type",
    "operator": "operator.enabled",
    "time_limit": "operator.time_limit_s",
    "home_pose": "operator.home_pose",
    "teleop": "intervention.topic",
    "teleop_active": "intervention.active_topic",
    "reward_model": "reward.model",
}


def parameter_overrides(arg):
    """agent_node parameters from the launch arguments (name -> text); a bad value raises
    ValueError naming the argument. Plain Python: the tests run it without ``launch``."""

    def items(name, text):
        return [v.strip() for v in text.strip().strip("[]").split(",") if v.strip()]

    def number(name, text):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"launch argument {name}:={text!r} is not a number") from None

    def flag(name, text):
        value = text.strip().lower()
        if value not in ("true", "false"):
            raise ValueError(f"launch argument {name}:={text!r} must be true or false")
        return value == "true"

    convert = {
        "joints": items,
        "operator": flag,
        "time_limit": number,
        "home_pose": lambda name, text: [number(name, v) for v in items(name, text)],
    }
    overrides = {}
    for name, parameter in PARAMETERS.items():
        text = arg.get(name, "")
        if text:
            overrides[parameter] = convert[name](name, text) if name in convert else text
    return overrides


def _agent(context):
    overrides = parameter_overrides({name: LaunchConfiguration(name).perform(context) for name in PARAMETERS})
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
        DeclareLaunchArgument("operator", default_value="", description="true: operator-run episodes"),
        DeclareLaunchArgument("time_limit", default_value="", description="operator episode limit (s)"),
        DeclareLaunchArgument("home_pose", default_value="", description="reset pose, '[a, b, c]'"),
        DeclareLaunchArgument("teleop", default_value="", description="teleop command topic (takeovers)"),
        DeclareLaunchArgument("teleop_active", default_value="", description="teleop std_msgs/Bool topic"),
        DeclareLaunchArgument("reward_model", default_value="", description="reward model directory"),
        DeclareLaunchArgument("namespace", default_value="", description="the node's namespace"),
    ]
    args += [DeclareLaunchArgument(name, default_value=default, description=f"remap of {default}")
             for name, default in TOPICS.items()]
    return LaunchDescription([*args, OpaqueFunction(function=_agent)])
