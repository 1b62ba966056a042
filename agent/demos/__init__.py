"""Demonstrations: whole episodes of observations and the actions a scripted expert, a human at the
teleop or a policy sent, recorded through the control loop into a replay cache (``episodes`` says
what a step holds; ``record`` drives the robot; ``recorder`` turns ticks into episodes)."""
