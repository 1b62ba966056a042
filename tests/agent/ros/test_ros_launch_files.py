"""The launch files, checked by structure (``launch`` / ``launch_ros`` cannot be installed here):
each parses, defines ``generate_launch_description``, starts only rill nodes that setup.py
installs, and references only config files that exist and are installed."""

from __future__ import annotations

import ast
import glob
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def _setup() -> ast.Module:
    return ast.parse((REPO / "setup.py").read_text())


def _installed_executables() -> set[str]:
    """Console scripts named in setup.py (setup.cfg installs them under lib/rill)."""
    for node in ast.walk(_setup()):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return {elt.value.split("=")[0].strip() for elt in value.elts}
    raise AssertionError("setup.py has no console_scripts")


def _installed_files(directory: str) -> set[str]:
    """Files setup.py's data_files put in share/rill/<directory> (globs expanded here)."""
    text = (REPO / "setup.py").read_text()
    patterns = re.findall(rf'\(f"share/{{PACKAGE}}/{directory}", glob\("([^"]+)"\)\)', text)
    assert patterns, f"setup.py installs nothing to share/rill/{directory}"
    return {Path(p).name for pattern in patterns for p in glob.glob(str(REPO / pattern))}


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_the_three_launch_files_exist_and_are_installed():
    names = {p.name for p in LAUNCH_FILES}
    assert {"agent.launch.py", "sim.launch.py", "learner.launch.py"} <= names
    assert names <= _installed_files("launch")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_structure(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert not functions["generate_launch_description"].args.args
    assert ast.get_docstring(tree), "a launch file says how to use it"
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"launch", "launch.actions", "launch.substitutions", "launch_ros.actions",
                        "launch_ros.substitutions", "launch.conditions"}, imported
    nodes = _calls(tree, "Node")
    assert nodes, "the launch file starts no node"
    executables = _installed_executables()
    for call in nodes:
        package, executable = _keyword(call, "package"), _keyword(call, "executable")
        assert isinstance(package, ast.Constant) and package.value == "rill"
        assert isinstance(executable, ast.Constant) and executable.value in executables, executable.value
        assert _keyword(call, "parameters") is not None, "every node gets its parameter file"
    installed = _installed_files("config")
    referenced = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and n.value.endswith((".yaml", ".yml"))}
    assert referenced, "the launch file references no config file"
    for name in referenced:
        assert (REPO / "config" / name).is_file(), f"{path.name} references config/{name}, which is missing"
        assert name in installed, f"config/{name} is not installed to share/rill/config"
    for call in _calls(tree, "PathJoinSubstitution"):
        parts = call.args[0].elts
        if any(isinstance(p, ast.Constant) and p.value == "config" for p in parts):
            # config paths are found in the installed package: FindPackageShare("rill")
            assert isinstance(parts[0], ast.Call) and parts[0].args[0].value == "rill"


@pytest.mark.parametrize("name, node", [
    ("ros_agent.yaml", "agent_node"), ("ros_sim_agent.yaml", "agent_node"), ("ros_sim.yaml", "sim_node"),
    ("ros_learner.yaml", "learner_node"),
])
def test_parameter_files_name_their_node_and_only_known_parameters(name, node):
    from agent.ros.agent_config import DERIVED, AgentNodeConfig
    from agent.ros.learner_node import LearnerNodeConfig
    from agent.ros.params import param_fields
    from agent.ros.sim_node import SimNodeConfig

    doc = yaml.safe_load((REPO / "config" / name).read_text())
    assert list(doc) == [node] and list(doc[node]) == ["ros__parameters"]
    configs = {"agent_node": AgentNodeConfig, "sim_node": SimNodeConfig, "learner_node": LearnerNodeConfig}
    config = configs[node]
    fields = {f.name: f for f in param_fields(config, exclude=DERIVED)}

    def flatten(tree, prefix=""):
        for key, value in tree.items():
            name = prefix + key
            if isinstance(value, dict) and not (name in fields and fields[name].kind == "mapping"):
                yield from flatten(value, name + ".")
            else:
                yield name
    unknown = [n for n in flatten(doc[node]["ros__parameters"]) if n not in fields]
    assert not unknown, f"{name}: unknown parameters {unknown}"


def _agent_launch_overrides():
    """agent.launch.py's ``PARAMETERS`` and ``parameter_overrides``, run without ``launch``."""
    tree = ast.parse((REPO / "launch" / "agent.launch.py").read_text())
    keep = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name == "parameter_overrides")
            or (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PARAMETERS")]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "agent.launch.py", "exec"), namespace)
    return namespace["PARAMETERS"], namespace["parameter_overrides"]


def _agent_config(overrides: dict):
    from agent.ros.agent_config import DERIVED, AgentNodeConfig
    from agent.ros.params import build_config

    def flatten(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flatten(value, prefix + key + ".")
            else:
                yield prefix + key, value
    doc = yaml.safe_load((REPO / "config" / "ros_agent.yaml").read_text())
    values = dict(flatten(doc["agent_node"]["ros__parameters"]))
    return build_config(AgentNodeConfig, {**values, **overrides}, exclude=DERIVED,
                        fixed={"loop.control_hz": 50.0})


def test_agent_launch_arguments_become_agent_node_parameters(tmp_path):
    parameters, overrides = _agent_launch_overrides()
    source = (REPO / "launch" / "agent.launch.py").read_text()
    for name in parameters:  # every argument is declared, with an empty default: the config's value
        assert f'DeclareLaunchArgument("{name}", default_value=""' in source, name
    assert overrides({name: "" for name in parameters}) == {}
    got = overrides({"operator": "true", "time_limit": "30", "home_pose": "[0.0, 0.5]",
                     "teleop": "/spacemouse/command", "teleop_active": "/spacemouse/active",
                     "reward_model": str(tmp_path / "reward"), "policy": "streamx", "joints": "[j0, j1]"})
    assert got == {"operator.enabled": True, "operator.time_limit_s": 30.0, "operator.home_pose": [0.0, 0.5],
                   "intervention.topic": "/spacemouse/command",
                   "intervention.active_topic": "/spacemouse/active",
                   "reward.model": str(tmp_path / "reward"), "policy.type": "streamx",
                   "robot.joints": ["j0", "j1"]}
    config = _agent_config(got)  # agent_node's own parameter parsing takes them
    assert config.operator.enabled and config.operator.time_limit_s == 30.0
    assert config.operator.home_pose == [0.0, 0.5] and config.robot.joints == ["j0", "j1"]
    assert config.intervention.topic == "/spacemouse/command"
    assert config.reward.model == str(tmp_path / "reward") and config.policy.type == "streamx"


@pytest.mark.parametrize("argument, text", [("operator", "yes"), ("time_limit", "half a minute"),
                                             ("home_pose", "[0.0, up]")])
def test_agent_launch_refuses_a_bad_argument_by_name(argument, text):
    _, overrides = _agent_launch_overrides()
    with pytest.raises(ValueError, match=f"launch argument {argument}:="):
        overrides({argument: text})
