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
