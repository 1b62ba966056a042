"""The VLA's errors that reach a user, in a module of their own: the CLI can name them without
importing torch or transformers."""

from __future__ import annotations


class VLACheckpointError(ValueError):
    """A VLA checkpoint directory is missing a file or does not match its config."""
