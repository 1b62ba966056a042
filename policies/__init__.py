"""Policies: the policy interface, stream-x networks, the VLA.

Imports only ``hal.errors`` and ``hal.config`` of rill (docs/design.md). Submodules import torch lazily where
they can, so ``policies.streamx.normalization`` stays numpy-only.
"""
