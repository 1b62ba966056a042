"""Online RL on a VLA: the control loop, a frozen VLA, stream-x residual heads, the learner link."""
