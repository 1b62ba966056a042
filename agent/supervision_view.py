"""``rill watch``'s panel: the ``supervision`` section of an ``agent_node`` status file, readable at
a glance in 80 columns by the person standing at the robot.

Top to bottom: the loop's state as a badge (OK, HOLDING, ERROR, STOPPED, or STALE when the file
has not been rewritten for a few report periods: the node is gone or hung), the instruction and
the reward model's confidence against its threshold, the episode under way, success over the
recent episodes and overall with one mark per recent episode, interventions per episode, who
ended the recent episodes, and the loop's counters. A status file that is missing, half written
or not a status is shown as such in the panel; ``watch`` keeps reading.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

log = logging.getLogger(__name__)

BAR_WIDTH = 30
_MARKS = {"success": ("█", "green"), "failure": ("█", "red"), "timeout": ("▄", "yellow"),
          "stopped": ("·", "dim"), "": ("?", "dim")}
_SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class StatusRead:
    """One reading of a status file: its contents, or why there are none usable (``problem``)."""

    path: Path
    status: dict[str, Any] | None
    problem: str = ""


def find_status_file(target: Path, actor: str | None = None) -> Path:
    """The status file ``target`` names: the file itself, or in a run directory (``learner.run_dir``)
    ``actors/<actor>/status.json`` (the most recently written one when ``actor`` is None; while
    there is none, the path of the one actor directory, or ``actors/*/status.json`` as said)."""
    target = Path(target)
    if not target.is_dir():
        return target
    if actor:
        return target / "actors" / actor / "status.json"
    found = sorted((target / "actors").glob("*/status.json"), key=_mtime, reverse=True)
    if found:
        return found[0]
    actors = sorted(p for p in (target / "actors").glob("*") if p.is_dir())
    return actors[0] / "status.json" if len(actors) == 1 else target / "actors" / "*" / "status.json"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def read_status(path: Path) -> StatusRead:
    """``path`` read and parsed; a missing, unreadable, torn or foreign file becomes a ``problem``."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return StatusRead(path, None, f"no status file at {path} yet (is agent_node running?)")
    except OSError as e:
        return StatusRead(path, None, f"cannot read {path}: {e}")
    try:
        status = json.loads(text)
    except ValueError as e:
        return StatusRead(path, None, f"{path} is not valid JSON ({e}); half written, or not a status file")
    if not isinstance(status, dict) or not isinstance(status.get("supervision"), dict):
        return StatusRead(path, None, f"{path} has no 'supervision' section: not an agent_node status file "
                                      "(or one from a rill older than rill watch)")
    return StatusRead(path, status)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _state_badge(status: dict[str, Any], now: float) -> Text:
    sup = status["supervision"]
    loop = sup.get("loop") or {}
    age = now - float(sup.get("time", now))
    stale_after = max(3.0 * float(sup.get("period_s") or 1.0), 3.0)
    if status.get("stopped"):
        return Text(" STOPPED ", style="bold white on blue") + Text(f"  agent_node stopped {age:.0f}s ago")
    if age > stale_after:
        return Text(" STALE ", style="bold white on red") + Text(
            f"  no update for {age:.0f}s: agent_node gone or hung?", style="bold red")
    level, message = loop.get("level"), str(loop.get("message", ""))
    if level == 2:
        return Text(" ERROR ", style="bold white on red") + Text(f"  {message}", style="bold red")
    if level == 1 or str(loop.get("state", "")).startswith("holding"):
        return Text(" HOLDING ", style="bold black on yellow") + Text(f"  {message}", style="yellow")
    return Text(" OK ", style="bold white on green") + Text(f"  {loop.get('state', '')}")


def confidence_bar(model: dict[str, Any], width: int = BAR_WIDTH) -> Text:
    """``[█████████░░░░|░░░░] 0.62 / 0.70  streak 1/3``: the bar green at or above the threshold."""
    conf = min(max(float(model.get("confidence", 0.0)), 0.0), 1.0)
    threshold = min(max(float(model.get("threshold", 1.0)), 0.0), 1.0)
    filled, mark = round(conf * width), min(round(threshold * width), width - 1)
    style = "bold green" if conf >= threshold else "cyan"
    bar = Text("[")
    for i in range(width):
        if i == mark:
            bar.append("|", style="bold white")
        else:
            bar.append("█" if i < filled else "░", style=style if i < filled else "dim")
    bar.append("] ")
    bar.append(f"{conf:.2f}", style=style)
    bar.append(f" / {threshold:.2f}  streak {model.get('streak', 0)}/{model.get('consecutive', '?')}")
    if model.get("declared"):
        bar.append("  SUCCESS", style="bold green")
    return bar


def _marks(outcomes: list[str]) -> Text:
    text = Text()
    for outcome in outcomes:
        char, style = _MARKS.get(outcome, _MARKS[""])
        text.append(char, style=style)
    return text


def _spark(values: list[float]) -> Text:
    top = max(values, default=0) or 1
    return Text("".join(_SPARK[round(v / top * (len(_SPARK) - 1))] for v in values), style="magenta")


def _n(count: Any, noun: str) -> str:
    """``1 takeover``, ``3 takeovers``, ``- takeovers`` (unknown)."""
    if count is None:
        return f"- {noun}s"
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _rows(status: dict[str, Any]) -> Table:
    sup = status["supervision"]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Instruction", Text(sup.get("instruction") or "(none)", style="bold cyan"))
    if sup.get("reward_model"):
        grid.add_row("Confidence", confidence_bar(sup["reward_model"]))
    ep = sup.get("episode") or {}
    phase = str(ep.get("phase", ""))
    if ep.get("phase_s") is not None:
        phase += f" {float(ep['phase_s']):.0f}s"
    grid.add_row("Episode", f"{ep.get('episode', '-')} {phase} · {_n(ep.get('takeovers'), 'takeover')}, "
                            f"{_n(ep.get('intervened_steps'), 'step')} driven")
    s = sup.get("success") or {}
    grid.add_row("Success", Text.assemble(
        (f"{_pct(s.get('recent'))} of the last {s.get('recent_judged', 0)}", "bold"),
        f" · {_pct(s.get('overall'))} of all {s.get('overall_judged', 0)} judged"))
    outcomes = sup.get("recent_outcomes", [])
    legend = ("  █ ok █ fail ▄ time · stop", "dim")
    grid.add_row(f"Last {len(outcomes)} eps", Text.assemble(_marks(outcomes), legend))
    iv = sup.get("interventions") or {}
    grid.add_row("Interventions", f"{_num(iv.get('mean_takeovers'))} takeovers, "
                 f"{_num(iv.get('mean_intervened_steps'))} steps per episode (last {len(outcomes)})")
    grid.add_row("", Text.assemble(f"last episode {_n(iv.get('last_takeovers'), 'takeover')}, "
                                   f"{_n(iv.get('last_intervened_steps'), 'step')}  ",
                                   _spark([float(v) for v in sup.get("recent_takeovers", [])])))
    ended = (sup.get("ended_by") or {}).get("recent") or {}
    grid.add_row("Ended by", " · ".join(f"{k} {v}" for k, v in ended.items()) or "-")
    loop = sup.get("loop") or {}
    ticks = int(loop.get("ticks") or 0)
    holds = int(loop.get("holds") or 0)
    grid.add_row("Loop", f"{ticks} ticks · {holds} holds ({holds / max(ticks, 1):.1%}) · "
                 f"{loop.get('deadline_misses', 0)} deadline misses · "
                 f"{loop.get('stale_observations', 0)} stale obs · "
                 f"{loop.get('policy_failures', 0)} policy failures")
    learner = status.get("learner")
    if learner:
        grid.add_row("Learner", f"{'connected' if learner.get('connected') else 'NOT CONNECTED'} · "
                     f"weights v{learner.get('weights_version')} · backlog {learner.get('backlog')} · "
                     f"{sup.get('episodes', 0)} episodes")
    return grid


def supervision_panel(read: StatusRead, now: float | None = None) -> Panel:
    """The panel for one reading of the status file (``now``: wall time, for the file's age)."""
    now = time.time() if now is None else now
    title = f"rill watch · {read.path}"
    if read.status is None:
        return Panel(Text(read.problem, style="bold yellow"), title=title, title_align="left",
                     subtitle="still watching", border_style="yellow")
    sup = read.status["supervision"]
    age = now - float(sup.get("time", now))
    body: list[RenderableType] = [_state_badge(read.status, now), Text(), _rows(read.status)]
    return Panel(Group(*body), title=title, title_align="left", subtitle=f"written {age:.1f}s ago",
                 subtitle_align="right")


def render_text(read: StatusRead, width: int = 80, now: float | None = None) -> str:
    """The panel as plain text at ``width`` columns (for tests and logs)."""
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(supervision_panel(read, now))
    return console.export_text()


def watch(target: Path, console: Console, *, actor: str | None = None, refresh_s: float = 0.5,
          frames: int | None = None) -> None:
    """Show the status file ``target`` names (a file or a run directory, see ``find_status_file``)
    live until Ctrl-C, or for ``frames`` refreshes."""
    from rich.live import Live

    def frame() -> Panel:
        return supervision_panel(read_status(find_status_file(target, actor)))

    shown = 0
    with Live(frame(), console=console, refresh_per_second=max(1.0 / refresh_s, 1.0),
              auto_refresh=False) as live:
        while frames is None or shown < frames:
            live.update(frame(), refresh=True)
            shown += 1
            if frames is None or shown < frames:
                time.sleep(refresh_s)


def actor_dirs(run_dir: Path) -> list[Path]:
    """The ``agent_node`` actors of a ``learner.run_dir``: ``actors/*`` with a status file or an
    episode log."""
    return sorted(p for p in (Path(run_dir) / "actors").glob("*")
                  if (p / "status.json").exists() or (p / "episodes.csv").exists())


def actor_report(actor_dir: Path, window: int = 10) -> Group:
    """What ``rill status`` shows of one ``agent_node`` actor afterwards, from its files: success at
    the start and the end, interventions per ``window`` episodes, who ended the episodes, and the
    last status it wrote."""
    from agent.actor.episodes import read_episodes
    from agent.supervision import WINDOW, EpisodeTally, intervention_windows

    parts: list[RenderableType] = []
    csv = actor_dir / "episodes.csv"
    records = read_episodes(csv) if csv.exists() else []
    title = f"agent_node actor {actor_dir.name}: {len(records)} episodes"
    if records:
        start = EpisodeTally.of(records[:WINDOW]).summary()["success"]
        end = EpisodeTally.of(records).summary()
        s = end["success"]
        parts.append(Text(f"success: start {_pct(start['recent'])} (first {start['recent_judged']} judged) "
                          f"-> end {_pct(s['recent'])} (last {s['recent_judged']}); "
                          f"overall {_pct(s['overall'])} of {s['overall_judged']}"))
        ended = end["ended_by"]["overall"]
        parts.append(Text("ended by: " + " · ".join(f"{k} {v}" for k, v in ended.items())))
        table = Table(title=f"per {window} episodes", title_justify="left")
        for col in ("episodes", "success", "takeovers/ep", "steps driven/ep"):
            table.add_column(col, justify="right")
        for w in intervention_windows(records, window):
            table.add_row(f"{w['first']}-{w['last']}", _pct(w["success"]), _num(w["takeovers"]),
                          _num(w["intervened_steps"]))
        parts.append(table)
    else:
        parts.append(Text(f"no finished episodes ({csv})"))
    parts.append(supervision_panel(read_status(actor_dir / "status.json")))
    return Group(Text(title, style="bold"), *parts)
