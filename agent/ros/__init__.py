"""rill on ROS 2: a ``hal.Robot`` on ROS 2 topics, the nodes ``ros2 launch`` starts, and discovery.

- ``robot``: ``Ros2Robot`` (robot type ``ros2``): camera images, joint states and an instruction
  in; ``JointTrajectory`` or ``Float64MultiArray`` commands out; the same control loop drives it.
  ``robot_config``: its ``Ros2RobotConfig``.
- ``conversions``: ROS messages <-> numpy (image encodings, joint states by name, chunk timing).
- ``timing`` / ``qos``: header stamps (ROS time) to monotonic time and max-age dropping; QoS.
- ``params``: ROS parameters <-> rill's typed config dataclasses, errors naming the parameter.
- ``agent_node``, ``sim_node``, ``learner_node``: the console scripts installed under ``lib/rill``
  (``agent_config``, ``policy_factory``, ``diagnostics`` and ``runtime`` are the agent node's
  parts, its learner client is ``agent.actor.ticks``; ``sim_joints`` and ``sim_tasks`` the
  simulation's; ``reach_policy`` the scripted policy the agent node adds to rill's).
- ``discovery``: the ``rill.discovery`` plugin listing ROS 2 robots seen on the graph.

rclpy and the message packages are imported only inside the functions that need them, so
``import agent.ros`` (and every module here but the nodes' ``main``) works without ROS 2.
"""
