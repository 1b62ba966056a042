"""The ``link:`` section of a ``rill run`` config, and the endpoint a placement gives the link: one
host stays on loopback; hosts apart need CurveZMQ keys (or an explicit ``insecure``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.job.config import RunLinkConfig, read_worker_config
from agent.job.prepare import prepare
from hal.backends.embedded import EmbeddedBackend
from hal.errors import ConfigError
from hal.leases import LeaseStore
from hal.placement import Assignment, Placement

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"port": 70000}, r"link.port must be an integer in 0..65535 \(0: any free port\), got 70000"),
        ({"port": "5555"}, r"link.port must be an integer"),
        ({"learner_secret": "k/learner.key_secret"},
         r"link: CurveZMQ needs all four key paths; missing link.allow_dir, link.actor_secret, "
         r"link.learner_public"),
        ({"curve": True}, "curve"),  # an unknown key is named
        ({"insecure": "false"}, r"link.insecure must be true or false, got 'false'"),
        ({"spool": "later"}, r"link.spool must be one of fsync, os-buffered, none, behind, got 'later'"),
        ({"learner_secret": 3, "allow_dir": "a", "actor_secret": "b", "learner_public": "c"},
         r"link.learner_secret must be a path \(a string\), got 3"),
    ],
)
def test_bad_link_values_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        RunLinkConfig.from_dict(values)


def _job(tmp_path: Path, link: dict | None = None):
    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec["run_dir"] = str(tmp_path / "run")
    if link is not None:
        spec["link"] = link
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    return prepare(path)


def _placement(learner_host: str, actor_host: str) -> Placement:
    return Placement("sim-hopper", [], {"learner": Assignment("learner", "learner", learner_host),
                                        "actor-0": Assignment("actor-0", "actor", actor_host, "hopper-0")})


def test_one_host_keeps_the_link_on_loopback_without_keys(tmp_path):
    job = _job(tmp_path)
    files = job.worker_files(_placement("here", "here"), EmbeddedBackend(LeaseStore(tmp_path / "leases")))
    learner = yaml.safe_load(files["learner"]["workers/learner.yaml"])["learner"]
    actor = yaml.safe_load(files["actor"]["workers/actors.actor.yaml"])["actor"]
    assert learner["bind"].startswith("tcp://127.0.0.1:") and actor["learner"] == learner["bind"]
    assert learner["curve_secret"] == "" and actor["curve_secret"] == "" and not learner["insecure"]
    assert actor["spool"] == "fsync"  # every batch synced before it is sent, unless link.spool says
    written = tmp_path / "learner.yaml"
    written.write_text(files["learner"]["workers/learner.yaml"])
    assert read_worker_config(written).bind == learner["bind"]  # what the worker reads back


def test_hosts_apart_without_keys_are_refused_before_anything_starts(tmp_path):
    job = _job(tmp_path)
    apart = r"placed on different hosts \(gpu-host, robot-host\).*link.learner_secret"
    with pytest.raises(ConfigError, match=apart):
        job.worker_files(_placement("gpu-host", "robot-host"), EmbeddedBackend(LeaseStore(tmp_path / "l")))


def test_an_actor_moves_across_hosts_only_when_the_link_already_does(tmp_path):
    job = _job(tmp_path)
    on_one = job.move_check(_placement("gpu-host", "gpu-host"))
    assert on_one("actor-0", "gpu-host") == ""
    assert "stays on loopback on gpu-host, so actor-0 cannot reach the learner from robot-host" in on_one(
        "actor-0", "robot-host")
    apart = job.move_check(_placement("gpu-host", "robot-host"))  # endpoint already off loopback
    assert apart("actor-0", "other-host") == "" and apart("actor-0", "gpu-host") == ""


def test_hosts_apart_get_each_side_its_own_keys(tmp_path):
    link = {"learner_secret": "/keys/learner.key_secret", "allow_dir": "/keys/actors",
            "actor_secret": "/keys/{name}.key_secret", "learner_public": "/keys/learner.key", "port": 5555}
    job = _job(tmp_path, link)
    backend = EmbeddedBackend(LeaseStore(tmp_path / "l"))
    files = job.worker_files(_placement("gpu-host", "robot-host"), backend)
    learner = yaml.safe_load(files["learner"]["workers/learner.yaml"])["learner"]
    actor = yaml.safe_load(files["actor"]["workers/actors.actor.yaml"])["actor"]
    assert learner["bind"].endswith(":5555") and actor["learner"] == learner["bind"]
    assert (learner["curve_secret"], learner["allow_dir"]) == ("/keys/learner.key_secret", "/keys/actors")
    assert (actor["curve_secret"], actor["learner_key"]) == ("/keys/{name}.key_secret", "/keys/learner.key")
    assert "/keys/learner.key_secret" not in files["actor"]["workers/actors.actor.yaml"]  # no secret travels


def test_the_spool_mode_reaches_every_actor(tmp_path):
    job = _job(tmp_path, {"spool": "behind"})
    files = job.worker_files(_placement("here", "here"), EmbeddedBackend(LeaseStore(tmp_path / "l")))
    written = tmp_path / "actor.yaml"
    written.write_text(files["actor"]["workers/actors.actor.yaml"])
    assert read_worker_config(written).spool == "behind"


def test_a_malformed_standin_gpu_is_named():
    from hal.accelerators import standin_accelerators

    assert [(a.name, a.memory_total_gb, a.device) for a in standin_accelerators("a:16, b:8")] == [
        ("a", 16.0, "standin:0"), ("b", 8.0, "standin:1")]
    with pytest.raises(ValueError, match=r"RILL_STANDIN_GPUS: entry 'gpu' is not NAME:MEMORY_GB"):
        standin_accelerators("gpu")


def test_a_run_config_that_is_not_yaml_or_names_no_listed_robot_is_refused_by_name(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("robots: [\n")
    with pytest.raises(ConfigError, match=r"run config .*broken.yaml: not valid YAML"):
        prepare(broken)
    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec["actors"][0]["robot_type"] = "sim-mujuco"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    # before: "the actors' robots must share one observation/action shape, found []"
    with pytest.raises(ConfigError, match=r"actors group 'actor': no robot of type 'sim-mujuco' among the "
                                          r"run's robots; did you mean 'sim-mujoco'\?"):
        prepare(path)
    spec["actors"][0] = {"name": "actor", "robot": "hopper-9"}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"no robot named 'hopper-9' among the run's robots"):
        prepare(path)


def test_a_robot_without_the_vlas_camera_is_refused_before_anything_starts(tmp_path):
    spec = yaml.safe_load((REPO / "config" / "sim_tabletop_vla.yaml").read_text())
    spec["robots"][0]["params"]["cameras"] = ["top"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    # before: the actor refused every observation, and the run ended with nothing learned, exit 0
    said = r"robot 'tabletop-0' \(sim-tabletop\) renders cameras \['top'\], but the VLA "
    with pytest.raises(ConfigError, match=said + r"\(pretrained:tabletop-reach\) reads \['front'\]"):
        prepare(path)
