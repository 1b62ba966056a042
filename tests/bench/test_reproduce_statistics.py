"""The reproduction report's statistics, on numbers whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.reproduce_report import against_paper, compare, final_return, learning_curve


def test_equal_samples_are_indistinguishable():
    c = compare([2000.0, 2100.0, 2200.0], [2200.0, 2000.0, 2100.0])
    assert c["difference"] == 0 and c["welch_p"] == pytest.approx(1.0) and c["distinguishable"] is False
    assert c["ci95"][0] < 0 < c["ci95"][1]


def test_separated_samples_are_distinguishable_with_the_welch_interval():
    rill, ref = [1000.0, 1010.0, 990.0, 1005.0, 995.0], [2000.0, 2050.0, 1950.0, 2020.0, 1980.0]
    c = compare(rill, ref)
    assert c["difference"] == pytest.approx(-1000.0) and c["distinguishable"] is True
    assert c["welch_p"] < 1e-6 and c["mann_whitney_p"] < 0.05
    # Welch's interval by hand: t(0.975, dof) * sqrt(s1²/n1 + s2²/n2)
    va, vb = np.var(rill, ddof=1) / 5, np.var(ref, ddof=1) / 5
    dof = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    from scipy import stats

    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert c["ci95"] == pytest.approx([-1000.0 - half, -1000.0 + half])


def test_too_few_seeds_give_no_verdict():
    c = compare([2000.0], [2100.0, 2200.0])
    assert c["distinguishable"] is None and math.isnan(c["welch_p"])


def test_against_the_paper():
    a = against_paper([4300.0, 4400.0, 4350.0], 4335)
    assert a["gap"] == pytest.approx(15.0) and a["p"] > 0.5
    b = against_paper([2200.0, 2300.0, 2250.0], 4335)
    assert b["gap"] == pytest.approx(-2085.0) and b["p"] < 0.01


def test_final_return_and_curve_windows():
    steps = np.array([100, 200, 900, 1000])
    returns = np.array([1.0, 2.0, 3.0, 5.0])
    assert final_return(steps, returns, total=1000, window=200) == pytest.approx(4.0)
    curve = learning_curve(steps, returns, np.array([150, 500, 1000]), window=200)
    assert curve[0] == 1.0 and curve[1] == 1.0 and curve[2] == pytest.approx(4.0)  # 500 carries 150's


def _run(root, name: str, seed: int, returns_by_step: dict[int, float], total: int):
    """A finished run directory as bench.reproduce leaves one: an episode log and a summary."""
    import json

    from agent.actor.episodes import EpisodeLog, EpisodeRecord

    run = root / name
    log = EpisodeLog(run / "metrics" / "episodes.csv", fresh=True)
    for i, (step, ret) in enumerate(sorted(returns_by_step.items())):
        log.append(EpisodeRecord(step=step, episode=i, ret=ret, length=10, wall_time=0.0))
    log.close()
    (run / "summary.json").write_text(json.dumps({"seed": seed, "steps": total}))
    return run


def test_the_report_compares_the_sides_along_the_way(tmp_path):
    import json

    from bench.reproduce_report import write_report

    total = 400_000  # marks at 100k, 200k, 300k, 400k; each run has one episode per 100k window
    ends = [100_000, 200_000, 300_000, 400_000]
    rill = [_run(tmp_path, f"seed{s}", s, dict(zip(ends, [10 + s, 20 + s, 30 + s, 40 + s], strict=True)),
                 total) for s in range(3)]
    # the reference learns faster early on and ends where rill ends
    ref = [_run(tmp_path, f"reference-seed{s}", s,
                dict(zip(ends, [100 + s, 200 + s, 300 + s, 40 + s], strict=True)), total) for s in range(3)]
    write_report({"Hopper-v4": {"rill": rill, "reference": ref}}, tmp_path / "out", total)
    payload = json.loads((tmp_path / "out" / "streamx.json").read_text())
    marks = payload["envs"]["Hopper-v4"]["along_the_way"]
    assert [m["step"] for m in marks] == ends
    assert [m["rill"]["mean"] for m in marks] == pytest.approx([11, 21, 31, 41])
    assert [m["reference"]["mean"] for m in marks] == pytest.approx([101, 201, 301, 41])
    assert [m["rill_vs_reference"]["distinguishable"] for m in marks] == [True, True, True, False]
    assert all(m["twin_vs_reference"]["distinguishable"] is None for m in marks)  # no twins here
    text = (tmp_path / "out" / "streamx.md").read_text()
    assert "| Hopper-v4 | 200,000 | 21 ± 1 | 201 ± 1 |" in text


def test_twins_are_paired_with_the_reference_run_of_their_seed(tmp_path):
    import json

    from bench.reproduce_report import write_report

    total, ends = 200_000, [100_000, 200_000]
    ref = [_run(tmp_path, f"reference-seed{s}", s, dict(zip(ends, [0, 1000 + 100 * s], strict=True)), total)
           for s in range(4)]
    # each twin ends 10 above its own seed's reference run: unpaired the spread hides it, paired not
    twin = [_run(tmp_path, f"twin-seed{s}", s, dict(zip(ends, [0, 1010 + 100 * s + (s % 2)], strict=True)),
                 total) for s in range(4)]
    write_report({"Walker2d-v4": {"rill": [], "reference": ref, "twin": twin}}, tmp_path / "out", total)
    entry = json.loads((tmp_path / "out" / "streamx.json").read_text())["envs"]["Walker2d-v4"]
    assert entry["twin_vs_reference"]["distinguishable"] is False
    p = entry["twin_vs_reference"]["paired"]
    assert p["seeds"] == 4 and p["mean_difference"] == pytest.approx(10.5) and p["p"] < 1e-3
    text = (tmp_path / "out" / "streamx.md").read_text()
    assert "rill from the reference's start" in text and "4 pairs, mean difference 10" in text
