"""The reproduction report: rill's stream AC(λ) runs, the reference code's, and the paper's numbers.

``bench.reproduce`` trains the runs; this module reads their episode logs and writes, into one
directory, ``streamx.md`` (tables), ``streamx.json`` (every number in them) and one learning-curve
PNG per env. Final return: the mean raw episodic return of the episodes that ended in the last
100,000 steps of a run. Two comparisons, per env:

- rill against the reference code at the same budget: per-seed finals, mean ± standard error,
  Welch's two-sample t-test and the Mann-Whitney U test of the finals (two-sided), and the
  difference of means with its 95 % Welch interval;
- rill against the paper's value: the gap, and a one-sample t-test of rill's finals against it;
- where they exist, rill's *twins* (``bench.reference.twin``: rill started from the reference's own
  initial weights and noise stream for the same seed) against the reference runs, with the same
  tests and a paired t-test over the seeds both have.

Along the way, the same two-sample tests at a quarter, half and three quarters of the budget (the
mean return of the episodes ending in the window before each mark): how fast each side learns,
not only where it ends.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FINAL_WINDOW = 100_000
# The paper's final average episodic returns (its bar chart, "Final Average Episodic Return", for
# the -v4 tasks: docs/streamx.md). The chart does not state its step budget.
PAPER = {
    "Hopper": {"stream AC(λ)": 2173, "PPO": 2041, "SAC": 2304, "PPO1": 449, "SAC1": 276},
    "Walker2d": {"stream AC(λ)": 4335, "PPO": 2386, "SAC": 5098},
}
ALPHA = 0.05
NAMES = {"rill": "rill", "reference": "reference code", "twin": "rill from the reference's start"}
MARKS = (0.25, 0.5, 0.75, 1.0)  # fractions of the budget where the sides are compared along the way


@dataclass
class RunSet:
    """The finished runs of one implementation on one env."""

    impl: str  # "rill" | "reference" | "twin"
    run_dirs: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    finals: list[float] = field(default_factory=list)
    curves: list[np.ndarray] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    at_marks: list[list[float]] = field(default_factory=list)  # per run: the return at each of MARKS


def episodes(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from agent.actor.episodes import read_episodes

    found = read_episodes(Path(run_dir) / "metrics" / "episodes.csv")
    return np.asarray([e.step for e in found], np.int64), np.asarray([e.ret for e in found], np.float64)


def learning_curve(steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int) -> np.ndarray:
    """Mean raw return of the episodes that ended in ``(g - window, g]``, per grid point ``g``.

    Points with no episode in their window carry the previous value (NaN before the first).
    """
    out = np.full(len(grid), np.nan)
    last = np.nan
    for i, g in enumerate(grid):
        mask = (steps > g - window) & (steps <= g)
        if mask.any():
            last = float(returns[mask].mean())
        out[i] = last
    return out


def final_return(steps: np.ndarray, returns: np.ndarray, total: int, window: int) -> float:
    """Mean return of the episodes that ended in ``(total - window, total]`` (a longer run is
    read at ``total``, as if it had stopped there)."""
    mask = (steps > total - window) & (steps <= total)
    return float(returns[mask].mean()) if mask.any() else float("nan")


def mean_se(values) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def compare(rill: list[float], reference: list[float]) -> dict:
    """Two-sided tests of rill's finals against the reference's; NaN where a side has < 2 seeds."""
    from scipy import stats

    a = np.asarray([x for x in rill if np.isfinite(x)], np.float64)
    b = np.asarray([x for x in reference if np.isfinite(x)], np.float64)
    out = {"n_rill": len(a), "n_reference": len(b), "difference": float("nan"), "ci95": [float("nan")] * 2,
           "welch_t": float("nan"), "welch_p": float("nan"), "mann_whitney_u": float("nan"),
           "mann_whitney_p": float("nan"), "distinguishable": None}
    if len(a) < 2 or len(b) < 2:
        return out
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else float("inf")
    half = float(stats.t.ppf(1 - ALPHA / 2, dof) * se) if se > 0 else 0.0
    welch = stats.ttest_ind(a, b, equal_var=False)
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    out.update(difference=diff, ci95=[diff - half, diff + half], welch_t=float(welch.statistic),
               welch_p=float(welch.pvalue), mann_whitney_u=float(mw.statistic),
               mann_whitney_p=float(mw.pvalue),
               distinguishable=bool(welch.pvalue < ALPHA or mw.pvalue < ALPHA))
    return out


def paired(twin: RunSet, reference: RunSet) -> dict:
    """Paired t-test of twin minus reference finals over the seeds both sides finished."""
    from scipy import stats

    ref = dict(zip(reference.seeds, reference.finals, strict=True))
    pairs = [(f, ref[s]) for s, f in zip(twin.seeds, twin.finals, strict=True) if s in ref]
    out = {"seeds": len(pairs), "mean_difference": float("nan"), "t": float("nan"), "p": float("nan")}
    if len(pairs) >= 2:
        a, b = np.asarray(pairs, np.float64).T
        test = stats.ttest_rel(a, b)
        out.update(mean_difference=float((a - b).mean()), t=float(test.statistic), p=float(test.pvalue))
    return out


def against_paper(finals: list[float], paper: float | None) -> dict:
    """The gap to the paper's value and a one-sample t-test of the finals against it."""
    from scipy import stats

    v = np.asarray([x for x in finals if np.isfinite(x)], np.float64)
    if paper is None or len(v) == 0:
        return {"paper": paper, "gap": float("nan"), "t": float("nan"), "p": float("nan")}
    out = {"paper": paper, "gap": float(v.mean() - paper), "t": float("nan"), "p": float("nan")}
    if len(v) >= 2 and v.std(ddof=1) > 0:
        test = stats.ttest_1samp(v, paper)
        out.update(t=float(test.statistic), p=float(test.pvalue))
    return out


def _collect(impl: str, run_dirs: list[Path], total: int, window: int, grid: np.ndarray) -> RunSet:
    found = RunSet(impl)
    for run in run_dirs:
        summary_file = run / "summary.json"
        if not summary_file.exists():
            continue  # not finished (or not started): not in the report
        summary = json.loads(summary_file.read_text())
        if summary.get("steps", 0) < total:
            continue
        steps, returns = episodes(run)
        found.run_dirs.append(run)
        found.seeds.append(int(summary.get("seed", _seed_of(run))))
        found.finals.append(final_return(steps, returns, total, window))
        found.at_marks.append([final_return(steps, returns, int(total * m), window) for m in MARKS])
        found.curves.append(learning_curve(steps, returns, grid, max(total // 40, 1000)))
        found.rates.append(float(summary.get("steps_per_s", float("nan"))))
        run_info = run / "run.json"
        if run_info.exists():
            found.paths.add(json.loads(run_info.read_text()).get("update_path", "?"))
        elif impl == "reference":
            found.paths.add("reference")
    return found


def _seed_of(run: Path) -> int:
    digits = "".join(ch for ch in run.name if ch.isdigit())
    return int(digits) if digits else -1


def _plot(env: str, grid: np.ndarray, sets: list[RunSet], total: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    colours = {"rill": "tab:blue", "reference": "tab:orange", "twin": "tab:green"}
    for s in sets:
        if not s.curves:
            continue
        curves = np.asarray(s.curves)
        mean = np.nanmean(curves, axis=0)
        label = f"{NAMES[s.impl]} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
        ax.plot(grid, mean, color=colours[s.impl], lw=2, label=label)
        if len(curves) > 1:
            n = np.sum(np.isfinite(curves), axis=0)
            se = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
            ax.fill_between(grid, mean - se, mean + se, color=colours[s.impl], alpha=0.2)
    family = env.split("-")[0]
    if family in PAPER:
        value = PAPER[family]["stream AC(λ)"]
        ax.axhline(value, color="black", ls="--", lw=1, label=f"paper's final value ({value:,})")
    ax.set_xlim(0, total)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return (raw)")
    ax.set_title(f"stream AC(λ) on {env}, mean ± standard error over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_report(runs: dict[str, dict[str, list[Path]]], out_dir: Path, total: int) -> Path:
    """``runs``: env -> {"rill": run dirs, "reference": run dirs}. Unfinished runs are left out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    window = min(FINAL_WINDOW, total)
    grid = np.linspace(total / 100, total, 100)
    payload: dict = {"steps": total, "final_window": window, "alpha": ALPHA, "envs": {}}
    for env, by_impl in runs.items():
        sets = [_collect(impl, by_impl.get(impl, []), total, window, grid) for impl in NAMES]
        png = out_dir / f"streamx_{env}.png"
        _plot(env, grid, sets, total, png)
        family = env.split("-")[0]
        paper = PAPER.get(family, {})
        entry = {"paper": paper, "plot": png.name}
        for s in sets:
            mean, se = mean_se(s.finals)
            entry[s.impl] = {
                "seeds": s.seeds, "final_returns": s.finals, "mean": mean, "standard_error": se,
                "steps_per_s": s.rates, "update_path": sorted(s.paths),
                # started (its directory exists) but not at the budget yet
                "unfinished": sum(1 for r in by_impl.get(s.impl, []) if Path(r).is_dir()) - len(s.finals),
            }
        entry["rill_vs_reference"] = compare(sets[0].finals, sets[1].finals)
        entry["twin_vs_reference"] = compare(sets[2].finals, sets[1].finals) | {
            "paired": paired(sets[2], sets[1])}
        entry["along_the_way"] = [_at_mark(sets, i, int(total * m)) for i, m in enumerate(MARKS)]
        entry["rill_vs_paper"] = against_paper(sets[0].finals, paper.get("stream AC(λ)"))
        payload["envs"][env] = entry
    (out_dir / "streamx.json").write_text(json.dumps(payload, indent=1))
    report = out_dir / "streamx.md"
    report.write_text(markdown(payload))
    return report


def _at_mark(sets: list[RunSet], i: int, step: int) -> dict:
    """Both sides' returns at one mark, with the two-sample tests of ``compare``."""
    values = {s.impl: [run[i] for run in s.at_marks] for s in sets}
    out: dict = {"step": step}
    for impl, v in values.items():
        mean, se = mean_se(v)
        out[impl] = {"mean": mean, "standard_error": se, "per_seed": v}
    for side in ("rill", "twin"):
        test = compare(values.get(side, []), values.get("reference", []))
        out[f"{side}_vs_reference"] = {k: test[k] for k in ("welch_p", "mann_whitney_p", "distinguishable")}
    return out


def _fmt(x, digits: int = 0) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}"


def _p(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def markdown(payload: dict) -> str:
    total, window = payload["steps"], payload["final_window"]
    lines = [
        "# Stream AC(λ) on MuJoCo: rill, the reference code, the paper",
        "",
        f"Written by `python -m bench.reproduce` at {total:,} environment steps per run. Final return: "
        f"mean raw episodic return of the episodes that ended in the last {window:,} steps of a run; "
        "mean ± standard error over seeds. Only finished runs count.",
        "",
        "| env | implementation | seeds | final return (mean ± s.e.) | per seed | steps/s per run |",
        "|---|---|---|---|---|---|",
    ]
    for env, e in payload["envs"].items():
        for impl, name in NAMES.items():
            s = e.get(impl)
            if s is None or (not s["final_returns"] and not s["unfinished"]):
                continue
            lines.append(
                f"| {env} | {name} | {len(s['final_returns'])} | {_fmt(s['mean'])} ± "
                f"{_fmt(s['standard_error'])} | {', '.join(_fmt(f) for f in s['final_returns']) or '–'} | "
                f"{', '.join(_fmt(r) for r in s['steps_per_s']) or '–'} |")
    lines += [
        "",
        "## rill against the reference code (same budget, same seeds)",
        "",
        f"Two-sided tests of the final returns; distinguishable when either p < {payload['alpha']}.",
        "",
        "| env | rill − reference (95 % CI) | Welch t (p) | Mann-Whitney U (p) | distinguishable |",
        "|---|---|---|---|---|",
    ]
    for env, e in payload["envs"].items():
        for key, label in (("rill_vs_reference", env),
                           ("twin_vs_reference", f"{env}, from the reference's start")):
            c = e.get(key)
            if c is None or (key == "twin_vs_reference" and not c["n_rill"]):
                continue
            verdict = "–" if c["distinguishable"] is None else ("yes" if c["distinguishable"] else "no")
            lines.append(
                f"| {label} | {_fmt(c['difference'])} ({_fmt(c['ci95'][0])} to {_fmt(c['ci95'][1])}) | "
                f"{_fmt(c['welch_t'], 2)} ({_p(c['welch_p'])}) | {_fmt(c['mann_whitney_u'], 1)} "
                f"({_p(c['mann_whitney_p'])}) | {verdict} |")
    twins = {env: e["twin_vs_reference"]["paired"] for env, e in payload["envs"].items()
             if e.get("twin_vs_reference", {}).get("paired", {}).get("seeds", 0) >= 2}
    if twins:
        lines += ["", "Twins paired with the reference run of the same seed (paired t-test of the finals):",
                  ""]
        lines += [f"- {env}: {p['seeds']} pairs, mean difference {_fmt(p['mean_difference'])}, "
                  f"t = {_fmt(p['t'], 2)}, p = {_p(p['p'])}" for env, p in twins.items()]
    lines += [
        "",
        f"Along the way: the mean return of the episodes ending in the {window:,} steps before each "
        "mark, mean ± standard error over seeds, and the same tests.",
        "",
        "| env | steps | rill | reference code | Welch p (Mann-Whitney p) | rill from the reference's start "
        "| Welch p (Mann-Whitney p) |",
        "|---|---|---|---|---|---|---|",
    ]
    for env, e in payload["envs"].items():
        if not e["reference"]["final_returns"]:
            continue
        for row in e["along_the_way"]:
            cells = []
            for side in ("rill", "reference", "twin"):
                v = row.get(side, {})
                cells.append(f"{_fmt(v.get('mean'))} ± {_fmt(v.get('standard_error'))}" if v.get("per_seed")
                             else "–")
                if side != "reference":
                    t = row[f"{side}_vs_reference"]
                    cells.append(f"{_p(t['welch_p'])} ({_p(t['mann_whitney_p'])})")
            r, rp, f, tw, tp = cells
            lines.append(f"| {env} | {row['step']:,} | {r} | {f} | {rp} | {tw} | {tp} |")
    lines += [
        "",
        "## rill against the paper's final value",
        "",
        "| env | paper stream AC(λ) | rill mean | gap | one-sample t (p) | PPO | SAC | PPO1 | SAC1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env, e in payload["envs"].items():
        a, paper = e["rill_vs_paper"], e["paper"]
        lines.append(
            f"| {env} | {_fmt(a['paper'])} | {_fmt(e['rill']['mean'])} | {_fmt(a['gap'])} | "
            f"{_fmt(a['t'], 2)} ({_p(a['p'])}) | {_fmt(paper.get('PPO'))} | {_fmt(paper.get('SAC'))} | "
            f"{_fmt(paper.get('PPO1'))} | {_fmt(paper.get('SAC1'))} |")
    lines += ["", "## Learning curves", "",
              f"Each point: the mean raw return of the episodes that ended in the preceding "
              f"{max(total // 40, 1000):,} steps, averaged over seeds (± standard error shaded).", ""]
    for env, e in payload["envs"].items():
        lines += [f"### {env}", "", f"![{env}]({e['plot']})", ""]
    return "\n".join(lines)
