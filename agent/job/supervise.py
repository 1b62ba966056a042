"""``run_job``: place a prepared job, start its workers, show them live, stop when the work is done.

When every actor has taken its steps, the learner is given up to ``DRAIN_S`` to learn from what is
still in its cache, then stopped (it writes its checkpoint). Ctrl-C stops every worker: actors keep
their spools, the learner checkpoints.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from agent.job.prepare import prepare
from agent.job.summary import learning_line, plot_run, print_result

log = logging.getLogger(__name__)
DRAIN_S = 60.0  # how long the learner may take to learn from what is still in its cache


def run_job(config_path: Path) -> Path:
    """Run the job of ``config_path`` to its end; returns its run directory."""
    from rich.console import Group
    from rich.live import Live

    from agent.console import worker_table
    from hal.scheduler import DONE, Scheduler

    job = prepare(Path(config_path))
    spec, train = job.spec, job.train
    run_dir = spec.directory
    scheduler = Scheduler(spec)
    placement = scheduler.place()  # refuses an infeasible spec before anything starts
    job.write_worker_files()
    (run_dir / "config.yaml").write_text(Path(config_path).read_text())
    for note in getattr(placement, "notes", []):
        log.info("%s", note)

    def view():
        return Group(worker_table(scheduler.status(), title=f"rill run {spec.name}"), learning_line(run_dir))

    finished_at = None

    def on_poll(s) -> None:
        nonlocal finished_at
        live.update(view())
        status = s.status()
        actors = [w for w in status if w.role == "actor"]
        if not actors or not all(w.state == DONE for w in actors):
            return
        if finished_at is None:
            finished_at = time.monotonic()
            log.info("every actor finished its %d steps; the learner catches up, then stops",
                     train.steps_per_actor)
        sent = sum(int(w.progress.get("seq", 0)) for w in actors)
        learned = max((int(w.progress.get("updates", 0)) for w in status if w.role == "learner"), default=0)
        if learned >= sent or time.monotonic() - finished_at > DRAIN_S:
            s.stop()

    with scheduler, Live(view(), refresh_per_second=2) as live:
        scheduler.start(placement)
        try:
            scheduler.run(on_poll=on_poll)
        except KeyboardInterrupt:
            log.warning("interrupted: stopping every worker (actors keep their spools, the learner "
                        "checkpoints)")
            scheduler.stop()
    png = plot_run(run_dir, f"rill run {spec.name}")
    print_result(run_dir)
    log.info("run directory %s%s", run_dir, f"; learning curve {png}" if png else "")
    return run_dir
