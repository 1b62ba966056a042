"""The agent side of rill: training and control loops, the actor, the ROS 2 node, the CLI."""
