"""Fixtures of the bench tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def reference_code() -> Path:
    """The paper's reference code (``bench/reference/README.md``): ``$RILL_REFERENCE_CODE`` or
    ``runs/reference/streaming-drl``. A test that takes it is skipped where it is not installed
    (CI has none)."""
    code = Path(os.environ.get("RILL_REFERENCE_CODE", REPO / "runs" / "reference" / "streaming-drl"))
    if not (code / "stream_ac_continuous.py").is_file():
        pytest.skip(f"the reference code is not installed at {code}")
    return code
