"""The MuJoCo tabletop tasks: a two-link arm pushes coloured blocks to a green target.

``scene`` builds the MJCF, ``arm`` holds the kinematics and the end-effector velocity controller,
``task`` the goal, instructions, reward and success, ``camera`` the offscreen renderer, ``env`` the
gymnasium environment (registered as ``rill/Tabletop*-v0`` by ``sim.tasks``) and ``robot`` the
``hal.Robot`` around it (type ``sim-tabletop``).
"""
