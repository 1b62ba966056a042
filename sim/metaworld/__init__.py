"""Meta-World (50 manipulation tasks on a Sawyer arm, MuJoCo) in rill.

``tasks`` names the tasks, their instructions, difficulty groups and task sets (MT10, MT50);
``env`` is the gymnasium env with LeRobot's observations (registered as ``rill/MetaWorld-*`` by
``sim.tasks``); ``robot`` the ``hal.Robot`` around it (type ``sim-metaworld``). The ``metaworld``
package itself is optional: only building an env imports it.
"""
