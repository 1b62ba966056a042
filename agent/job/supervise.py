"""``run_job``: place a prepared job, start its workers, show them live, stop when the work is done.

When every actor has taken its steps, the learner is given up to ``DRAIN_S`` to learn from what is
still in its cache, then stopped (it writes its checkpoint). When every actor has ended but some
failed (a robot with no spare, a lost node), the learner learns what it has and is stopped the same
way, and the job reports the failure; a failed learner stops every actor at once. Ctrl-C stops
every worker: actors keep their spools, the learner checkpoints.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from agent.job.config import RunTrainConfig
from agent.job.prepare import prepare
from agent.job.summary import learning_line, plot_run, print_result, success_line
from hal.config import read_yaml_mapping
from hal.errors import ConfigError

log = logging.getLogger(__name__)
DRAIN_S = 60.0  # how long the learner may take to learn from what is still in its cache
VIEW_EVERY_S = 0.5  # the live view is redrawn at most this often (the scheduler polls every 50 ms)
SUCCESS_EVERY_S = 5.0  # the success line re-reads every actor's episode log at most this often
# The train: fields that make a run what it is. A run directory that holds a run continues it only
# with the same values: its learner resumes its checkpoint and its actors their spools, so other
# ones would mix two runs' transitions and weights (steps, pacing and CPUs may change).
RUN_IDENTITY = ("algo", "seed", "hyper", "policy", "vla", "chunk_size", "residual_scale", "base_scale",
                "episode_steps", "privileged_inputs", "residual_sees_vla", "state_inputs", "locator",
                "reward")


class _Every:
    """Calls ``fn`` at most once per ``period_s``; between calls, returns what the last one did."""

    def __init__(self, period_s: float, fn: Callable[[], Any]) -> None:
        self.period_s, self.fn = period_s, fn
        self.at: float | None = None
        self.value: Any = None

    def __call__(self) -> Any:
        if self.at is None or time.monotonic() - self.at >= self.period_s:
            return self.refresh()
        return self.value

    def refresh(self) -> Any:
        """Call ``fn`` now, whenever it was last called."""
        self.at, self.value = time.monotonic(), self.fn()
        return self.value


def claim_run_dir(run_dir: Path, config_path: Path, overwrite: bool = False) -> None:
    """Make ``run_dir`` this run's: new, the same run continued (its ``config.yaml`` agrees on
    ``RUN_IDENTITY``), or, with ``overwrite``, emptied first (on this host; a worker on another
    node keeps its own directory there). A different run there is a ``ConfigError`` naming what
    differs, and nothing in the directory is touched."""
    stored = run_dir / "config.yaml"
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    elif stored.is_file():
        before = read_yaml_mapping(stored, "the run directory's config").get("train") or {}
        now = read_yaml_mapping(config_path, "run config").get("train") or {}
        defaults = {f.name: f.default if f.default is not MISSING else f.default_factory()
                    for f in fields(RunTrainConfig) if f.name in RUN_IDENTITY}
        differ = [f"train.{k}: {before.get(k, d)!r} -> {now.get(k, d)!r}" for k, d in defaults.items()
                  if before.get(k, d) != now.get(k, d)]
        if differ:
            raise ConfigError(f"run directory {run_dir} holds a different run ({'; '.join(differ)}); "
                              "give this one another run_dir, or pass --overwrite to replace it")
        log.info("run directory %s holds this run: continuing it", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(Path(config_path).read_text())


def run_job(config_path: Path, overwrite: bool = False) -> tuple[Path, bool]:
    """Run the job of ``config_path`` to its end; returns its run directory and whether every
    worker finished (none failed). ``overwrite`` replaces a different run in its directory."""
    from rich.console import Group
    from rich.live import Live

    from agent.console import worker_table
    from hal.scheduler import DONE, FAILED, TERMINAL, Scheduler

    job = prepare(Path(config_path))
    spec, train = job.spec, job.train
    run_dir = spec.directory
    scheduler = Scheduler(spec)
    placement = scheduler.place()  # refuses an infeasible spec before anything starts
    files = job.worker_files(placement, scheduler.backend)  # refuses a link it cannot secure
    scheduler.move_check = job.move_check(placement)  # no move that would leave an actor unreachable
    claim_run_dir(run_dir, Path(config_path), overwrite)
    for note in getattr(placement, "notes", []):
        log.info("%s", note)

    def gathered_success():
        scheduler.gather()  # workers on other hosts: their episode logs and metrics, copied here
        return success_line(run_dir)

    success = _Every(SUCCESS_EVERY_S, gathered_success)
    shown = _Every(VIEW_EVERY_S, lambda: live.update(view()))

    ended = False  # the last frame leaves the success line to the summary printed below it

    def view():
        lines = [learning_line(run_dir), None if ended else success()]
        return Group(worker_table(scheduler.status(), title=f"rill run {spec.name}"),
                     *(line for line in lines if line is not None))

    finished_at = None

    def on_poll(s) -> None:
        nonlocal finished_at
        shown()
        status = s.status()
        lost = [w for w in status if w.role == "learner" and w.state == FAILED]
        if lost:  # nothing left to learn for: the actors stop too (they keep their spools)
            log.error("the learner failed (%s); stopping the run", lost[0].detail)
            s.stop()
            return
        actors = [w for w in status if w.role == "actor"]
        if not actors or not all(w.state in TERMINAL for w in actors):
            return
        if finished_at is None:
            finished_at = time.monotonic()
            failed = [w.name for w in actors if w.state != DONE]
            if failed:
                log.error("actors %s ended without finishing; the learner learns what it has, then stops",
                          ", ".join(failed))
            else:
                log.info("every actor finished its %d steps; the learner catches up, then stops",
                         train.steps_per_actor)
        # a failed actor's unacknowledged transitions may never arrive: wait only for what it had acked
        sent = sum(int(w.progress.get("seq", 0) if w.state == DONE
                       else w.progress.get("acked", w.progress.get("acked_seq", 0))) for w in actors)
        learned = max((int(w.progress.get("updates", 0)) for w in status if w.role == "learner"), default=0)
        if learned >= sent or time.monotonic() - finished_at > DRAIN_S:
            s.stop()

    with scheduler, Live(view(), refresh_per_second=2) as live:
        scheduler.start(placement, files)
        try:
            scheduler.run(on_poll=on_poll)
        except KeyboardInterrupt:
            log.warning("interrupted: stopping every worker (actors keep their spools, the learner "
                        "checkpoints)")
            scheduler.stop()
        finally:
            success.refresh()  # gathers from the workers' hosts once more
            ended = True
            shown.refresh()  # the workers as they ended, not as they were at the last redraw
        ok = not any(w.state == FAILED for w in scheduler.status())
    if not live.console.is_terminal:
        live.console.line()  # off a terminal, Live leaves its last line open: the summary goes below
    png = plot_run(run_dir, f"rill run {spec.name}")
    print_result(run_dir)
    log.info("run directory %s%s", run_dir, f"; learning curve {png}" if png else "")
    return run_dir, ok
