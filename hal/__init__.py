"""Hardware abstraction layer: robots, accelerators and hosts as schedulable resources.

Imports nothing of rill's (see DESIGN.md): ``import hal`` works without ROS 2 or Ray.
"""
