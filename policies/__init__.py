"""Policies: the policy interface, stream-x networks, the VLA.

Imports only torch, transformers and numpy (see DESIGN.md). Submodules import torch lazily where
they can, so ``policies.streamx.normalization`` stays numpy-only.
"""
