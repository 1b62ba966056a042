"""The ``rill`` command line. Thin: it builds configs and hands over to the packages."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("rill")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rill", description="rill: embodied agents that learn online with stream-x"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    from agent.cache_cli import add_cache_commands
    from agent.demos_cli import add_demos_commands
    from agent.hal_cli import add_hal_commands
    from agent.link_cli import add_link_commands
    from agent.pretrain_cli import add_pretrain_commands
    from agent.reward_cli import add_reward_commands
    from agent.run_cli import add_run_commands
    from agent.train_cli import add_train_commands
    from agent.watch_cli import add_watch_commands

    add_train_commands(sub)
    add_cache_commands(sub)
    add_demos_commands(sub)
    add_pretrain_commands(sub)
    add_reward_commands(sub)
    add_link_commands(sub)
    add_hal_commands(sub)
    add_run_commands(sub)
    add_watch_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    args = build_parser().parse_args(argv)
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # chatty at import under MUJOCO_GL=egl
    from hal.errors import HalError

    try:
        from agent.errors import USER_ERRORS
    except HalError as e:  # e.g. MuJoCo cannot load the MUJOCO_GL backend (sim.RenderingUnavailable)
        log.error("%s", e)
        return 2
    try:
        handler = getattr(args, "func", None) or args.handler
        return int(handler(args) or 0)
    except USER_ERRORS as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        log.warning("interrupted; the last checkpoint is intact (resume with --resume)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
