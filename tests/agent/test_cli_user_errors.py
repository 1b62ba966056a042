"""Mistakes a user makes on the command line end in one line naming the thing and the problem (exit
code 2), not a traceback, and nothing is written."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from agent.cli import main

REPO = Path(__file__).resolve().parents[2]


def _demos_config(tmp_path: Path, policy: dict) -> Path:
    config = yaml.safe_load((REPO / "config" / "demos_tabletop_reach.yaml").read_text())
    config.update(policy=policy, out=str(tmp_path / "demos"), episodes=1)
    config["robot"]["params"].update(image_height=32, image_width=32)
    path = tmp_path / "demos.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_bad_policy_argument_or_vla_for_demos_record_is_one_line(tmp_path, caplog):
    cases = [({"type": "tabletop-expert", "args": {"chunk_size": "two"}}, "policy 'tabletop-expert': cannot "
              "build it with args {'chunk_size': 'two'}"),
             ({"type": "vla", "args": {"checkpoint": str(tmp_path / "nowhere")}}, "nowhere")]
    for policy, said in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert main(["demos", "record", str(_demos_config(tmp_path, policy))]) == 2
        assert said in caplog.text and "Traceback" not in caplog.text, caplog.text
        assert not (tmp_path / "demos").exists()


def test_a_file_where_a_directory_belongs_is_one_line(tmp_path, caplog):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with caplog.at_level(logging.ERROR):
        assert main(["hal", "list", "--lease-dir", str(afile)]) == 2
    assert str(afile) in caplog.text and "Traceback" not in caplog.text
