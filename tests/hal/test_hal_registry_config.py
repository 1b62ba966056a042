"""Robot registry, third-party plugins, and run spec validation: errors name the problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hal.config import RobotConfig
from hal.errors import ConfigError, DuplicateRobotError, UnknownRobotTypeError
from hal.registry import discover_robots, make_robot, robot_types
from hal.runspec import RunSpec

REPO = Path(__file__).resolve().parents[2]


def _spec(**over) -> dict:
    spec = {
        "name": "t",
        "robots": [{"name": "hopper-0", "type": "sim-mujoco", "params": {"env_id": "Hopper-v5"}}],
        "learner": {"gpu_memory_gb": 1},
        "actors": [{"name": "actor", "robot_type": "sim-mujoco"}],
    }
    spec.update(over)
    return spec


def test_unknown_robot_type_lists_the_registered_types():
    with pytest.raises(
        UnknownRobotTypeError,
        match=r"unknown robot type 'sim-mujocoo' \(did you mean "
        r"'sim-mujoco'\?\); registered types: .*sim-mujoco",
    ):
        make_robot(RobotConfig("r", "sim-mujocoo"))
    bad = _spec(robots=[{"name": "arm", "type": "ur5e"}])
    with pytest.raises(UnknownRobotTypeError, match=r"registered types: .*sim-mujoco"):
        RunSpec.from_dict(bad)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learnr": {}}, r"run spec: unknown field 'learnr'; did you mean 'learner'\?"),
        (
            {"actors": [{"name": "a", "robot_typ": "sim-mujoco"}]},
            r"run spec actors\[0\]: unknown field 'robot_typ'; did you mean 'robot_type'\?",
        ),
        (
            {"learner": {"gpu_memory": 2}},
            r"run spec learner: unknown field 'gpu_memory'; did you mean 'gpu_memory_gb'",
        ),
        (
            {"restart": {"max_restart": 2}},
            r"restart: unknown field 'max_restart'; did you mean 'max_restarts'",
        ),
        ({"heartbeat": {"interval": 1}}, r"heartbeat: unknown field 'interval'; did you mean 'interval_s'"),
        (
            {"robots": [{"name": "h", "typ": "sim-mujoco"}]},
            r"robots\[0\]: unknown field 'typ'; did you mean 'type'",
        ),
        (
            {"robots": [{"name": "h", "type": "sim-mujoco", "params": {"contrl_hz": 5}}]},
            r"robot 'h' \(sim-mujoco\) params: unknown field 'contrl_hz'; did you mean 'control_hz'",
        ),
        ({"backend": "rey"}, r"run.backend must be one of embedded, ray, got 'rey'; did you mean 'ray'"),
        ({"learner": {"cpus": -1}}, r"learner.cpus must be >= 0, got -1"),
        ({"actors": [{"name": "a", "robot_type": "x", "robot": "y"}]}, r"set exactly one of robot_type"),
        ({"heartbeat": {"interval_s": 2, "timeout_s": 1}}, r"heartbeat.timeout_s \(1\) must exceed"),
        ({"actors": [{"name": "a", "robot_type": "x", "count": 0}]}, r"count must be >= 1"),
    ],
)
def test_run_spec_typo_or_bad_value_names_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        RunSpec.from_dict(_spec(**values))


def test_a_key_that_another_part_of_the_run_config_reads_is_offered_for_a_typo():
    # rill run's config holds train: and link: beside the run spec; a typo of them is named as such
    with pytest.raises(ConfigError, match=r"run spec: unknown field 'trian'; did you mean 'train'\?"):
        RunSpec.from_dict({**_spec(), "trian": {}}, ignore=("train", "link"))
    with pytest.raises(ConfigError, match=r"valid fields: name, .*run_dir, train, link$"):
        RunSpec.from_dict({**_spec(), "zzzz": {}}, ignore=("train", "link"))


def test_two_robots_with_one_name_are_refused():
    robots = [
        {"name": "hopper-0", "type": "sim-mujoco"},
        {"name": "hopper-1", "type": "sim-mujoco"},
        {"name": "hopper-0", "type": "sim-mujoco"},
    ]
    with pytest.raises(
        DuplicateRobotError, match=r"two robots named 'hopper-0' \(robots\[0\] and robots\[2\]\)"
    ):
        RunSpec.from_dict(_spec(robots=robots))


def test_shipped_run_specs_load(tmp_path):
    one = RunSpec.from_yaml(REPO / "config" / "sim_hopper.yaml", ignore=("train",))
    two = RunSpec.from_yaml(REPO / "config" / "sim_hopper_2actors.yaml", ignore=("train",))
    assert [r.name for r in one.robots] == ["hopper-0"] and one.actors[0].count == 1
    assert len(two.robots) == 3 and two.actors[0].count == 2 and two.learner.allow_cpu
    # Sections that belong to the learner and actors are skipped when asked, refused otherwise.
    (tmp_path / "run.yaml").write_text(
        (REPO / "config" / "sim_hopper.yaml").read_text().split("\ntrain:")[0] + "\ntrain: {algo: x}\n"
    )
    assert RunSpec.from_yaml(tmp_path / "run.yaml", ignore=("train",)).name == "sim-hopper"
    with pytest.raises(ConfigError, match="unknown field 'train'"):
        RunSpec.from_yaml(tmp_path / "run.yaml")


def test_third_party_robot_plugs_in_through_the_entry_point_group(tmp_path):
    """A package that is not rill declares a robot in its metadata; rill finds it without edits."""
    site = tmp_path / "site"
    (site / "acme_robots").mkdir(parents=True)
    (site / "acme_robots" / "__init__.py").write_text(
        textwrap.dedent("""
        import numpy as np
        from hal.robot import Robot
        from hal.specs import ActionSpec, FeatureSpec

        class AcmeArm(Robot):
            type_name = "acme-arm"
            observation_spec = {"state": FeatureSpec((2,), "float32")}
            action_spec = ActionSpec(("j0", "j1"), [-1, -1], [1, 1])
            control_hz = 50.0
            def _connect(self): self.q = np.zeros(2, np.float32)
            def _disconnect(self): pass
            def _observe(self): return {"state": self.q.copy()}
            def _send(self, command): self.q = command.copy()
            def _hold_command(self): return self.q

        def discover():
            from hal.config import RobotConfig
            return [RobotConfig("acme-1", "acme-arm")]
    """)
    )
    dist = site / "acme_robots-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-robots\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[rill.robots]\nacme-arm = acme_robots:AcmeArm\n\n[rill.discovery]\nacme = acme_robots:discover\n"
    )
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from hal.registry import discover_robots, make_robot, robot_types
        found = [r for r in discover_robots() if r.type == "acme-arm"]
        with make_robot(found[0]) as robot:
            sent = robot.act([2.0, 0.5])
        print(",".join(robot_types()), found[0].name, sent.tolist())
    """)
    out = subprocess.run(
        [sys.executable, "-c", code, str(site)], capture_output=True, text=True, check=True, timeout=60
    )
    types, name, sent = out.stdout.strip().split(" ", 2)
    assert "acme-arm" in types.split(",") and name == "acme-1" and sent == "[1.0, 0.5]"


def test_registry_knows_sim_robots_and_their_discovery():
    assert "sim-mujoco" in robot_types()
    assert any(r.type == "sim-mujoco" for r in discover_robots())


def test_setup_py_declares_rills_own_robot_and_discovery_entry_points():
    import ast
    from importlib.metadata import EntryPoint

    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    entry_points = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "entry_points"))
    extras = next(k.value for k in call.keywords if k.arg == "extras_require")
    assert "ray" in [k.value for k in extras.keys]  # ray stays optional
    loaded = {}
    for group in ("rill.robots", "rill.discovery"):
        for line in entry_points[group]:
            name, _, value = (part.strip() for part in line.partition("="))
            loaded[group, name] = EntryPoint(name, value, group).load()
    assert loaded["rill.robots", "sim-mujoco"].type_name == "sim-mujoco"
    assert all(r.type == "sim-mujoco" for r in loaded["rill.discovery", "sim"]())
