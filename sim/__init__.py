"""Simulated environments and robots (MuJoCo, gymnasium).

Imports ``hal`` and the numpy-only stream-x normalizers of ``policies`` (see docs/design.md, "Rooms").
"""
