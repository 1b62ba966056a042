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
