"""``bench.reference.parity``: rill's stream AC(λ) step for step against the paper's code.

Skipped where the reference code is not installed (``bench/reference/README.md``); CI has none.
"""

from __future__ import annotations

import pytest

from bench.reference.parity import run


def test_rill_computes_what_the_reference_computes_step_for_step(reference_code):
    result = run(str(reference_code), "Hopper-v4", seed=0, steps=2000, report_every=1000)
    gaps = result["max_abs_gap"]
    assert result["episodes"] >= 20  # episode ends (trace resets, reward trace restarts) are covered
    for pre in ("numpy", "compiled"):  # the same normalized observations and scaled rewards
        assert gaps[f"{pre}_obs"] < 1e-5 and gaps[f"{pre}_reward"] < 1e-9, gaps
    assert gaps["act_autograd"] < 1e-4 and gaps["act_compiled"] < 1e-4, gaps
    for row in result["weights"]:  # float32 rounding, and no more than a nudged copy of the reference
        for path in ("autograd", "compiled"):
            assert row[f"weights_{path}"] < max(1e-5, 10 * row["weights_reference_nudged"]), row
        assert row["weights_reference_reordered"] < 1e-5, row  # the reference, rounded otherwise
    # the one difference by design: rill's time feature after step k is -0.5 + k/T, the reference's
    # -0.5 + (k-1)/T (its wrapper appends the value before counting the step)
    offset = result["time_feature_offset"]
    assert offset["min"] == pytest.approx(0.0, abs=1e-6)  # at a reset both read -0.5
    assert offset["max"] == pytest.approx(offset["one_over_T"], rel=1e-4)


def test_the_comparison_continues_from_a_reference_checkpoint(tmp_path, reference_code):
    from bench.reference.stream_ac import ReferenceRun, train

    run_dir = tmp_path / "ref"
    train(ReferenceRun(str(reference_code), "Hopper-v4", 1, 3000, str(run_dir), checkpoint_every=1000))
    checkpoints = run_dir / "checkpoints"
    start = max(int(p.name.split("_")[1]) for p in checkpoints.iterdir())
    result = run(str(reference_code), "Hopper-v4", seed=1, steps=1000, report_every=500,
                 checkpoints=checkpoints)
    assert result["start_step"] == start >= 2000
    gaps = result["max_abs_gap"]
    # rill's preprocessors took the reference wrappers' statistics, the raw env its random state:
    # after the reset that follows the checkpoint, both see the same episodes
    for pre in ("numpy", "compiled"):
        assert gaps[f"{pre}_obs"] < 1e-5 and gaps[f"{pre}_reward"] < 1e-9, gaps
    for row in result["weights"]:
        for path in ("autograd", "compiled"):
            assert row[f"weights_{path}"] < 1e-5, row


def test_a_directory_without_checkpoints_is_refused(tmp_path, reference_code):
    from bench.reference.stream_ac import ReferenceCodeError

    with pytest.raises(ReferenceCodeError, match="no reference checkpoint"):
        run(str(reference_code), "Hopper-v4", seed=0, steps=10, report_every=10, checkpoints=tmp_path)
