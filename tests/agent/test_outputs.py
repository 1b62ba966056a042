"""A command that writes a model (rill reward train, rill locator) writes it only into a new or
empty directory, or over an earlier model of its kind when asked to: never over a VLA or someone's
files, and it says so before any training."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.outputs import OutputExistsError, claim_output_dir

REPO = Path(__file__).resolve().parents[2]


def test_an_output_directory_is_claimed_only_when_nothing_else_is_there(tmp_path):
    assert claim_output_dir(tmp_path / "new", "reward_model.json", "reward model") == tmp_path / "new"
    vla = tmp_path / "vla"
    vla.mkdir()
    for name in ("config.json", "model.safetensors"):
        (vla / name).write_text("{}")
    for overwrite in (False, True):  # not even when asked: it is not a reward model
        said = r"it holds other files \(config.json, model.safetensors\), not a reward model"
        with pytest.raises(OutputExistsError, match=said):
            claim_output_dir(vla, "reward_model.json", "reward model", overwrite=overwrite)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "reward_model.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="holds a reward model already; pass --overwrite"):
        claim_output_dir(earlier, "reward_model.json", "reward model")
    assert claim_output_dir(earlier, "reward_model.json", "reward model", overwrite=True) == earlier
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputExistsError, match="a file is there, not a directory"):
        claim_output_dir(tmp_path / "afile", "reward_model.json", "reward model")


def test_rill_locator_refuses_before_collecting_anything(tmp_path, caplog):
    out = tmp_path / "vla"
    out.mkdir()
    (out / "config.json").write_text("{}")
    config = yaml.safe_load((REPO / "config" / "locator_metaworld_reach.yaml").read_text())
    config["out"] = str(out)
    path = tmp_path / "locator.yaml"
    path.write_text(yaml.safe_dump(config))
    with caplog.at_level(logging.ERROR):
        assert main(["locator", str(path)]) == 2
    assert "it holds other files (config.json), not a locator" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
