"""Imitation pretraining: behaviour cloning of a VLA from demonstrations (``data``: samples in the
VLA's input format; ``trainer``: the resumable training run; ``evaluate``: success on held-out
seeded episodes in simulation, optionally with the camera blanked or the instruction changed)."""
