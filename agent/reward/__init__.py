"""Reward from a camera: training a success classifier (``rill reward train``) and using it on a robot
that has no reward of its own (``RewardedRobot``)."""
