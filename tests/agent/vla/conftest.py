"""Shared fixtures of the VLA actor tests."""

from __future__ import annotations

import pytest


def shipped_vla(name: str):
    """A VLA that rill ships (``pretrained:NAME``), acting on one CPU thread, as an actor would."""
    import torch

    from policies.vla import VLAPolicy, load_vla

    torch.set_num_threads(1)
    return VLAPolicy(load_vla(name))


@pytest.fixture(scope="module")
def vla(request):
    """The shipped VLA named by the test module's ``VLA``."""
    return shipped_vla(request.module.VLA)
