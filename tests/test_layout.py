"""The package layout and the one-way import rules of docs/design.md ("Rooms")."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "hal", "policies", "learners", "sim")
# What each package may import among rill's own packages (docs/design.md, "Rooms"): imports go one
# way; hal.errors and hal.config (plain Python: the one ConfigError and the typed-config helpers)
# are the foundation every package may use; sim may use the numpy-only normalizers of policies.
FOUNDATION = {"hal.errors", "hal.config"}
ALLOWED = {
    "agent": {"agent", "hal", "policies", "learners", "sim"},
    "sim": {"sim", "hal", "policies.streamx.normalization"},
    "learners": {"learners", "policies"} | FOUNDATION,
    "policies": {"policies"} | FOUNDATION,
    "hal": {"hal"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _allowed(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package):
    bad = []
    for path in (REPO / package).rglob("*.py"):
        for name in _imports(path):
            if name.split(".")[0] in PACKAGES and not _allowed(name, ALLOWED[package]):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    assert not bad, "\n".join(bad)


def test_top_level_packages_import_without_side_effects():
    code = "import agent, hal, policies, learners, sim; import sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # importing the packages does not drag torch in


def test_the_learner_and_actor_commands_start_without_the_vla():
    """The CLI, its error list and the learner's and stream-x actor's modules leave transformers
    unimported: it is the VLA's (a second or three of every process start of `rill learner` and
    `rill actor` when the error list once pulled it in)."""
    code = ("import agent.cli, agent.errors, agent.link_cli, agent.actor, learners.service; import sys; "
            "print(sorted(m for m in ('transformers', 'policies.vla.model') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ament_python_package_files():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "rill"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "std_msgs", "sensor_msgs", "trajectory_msgs", "launch", "launch_ros"} <= deps
    assert (REPO / "resource" / "rill").is_file()
    cfg = (REPO / "setup.cfg").read_text()
    assert "script_dir=$base/lib/rill" in cfg and "install_scripts=$base/lib/rill" in cfg
    setup = (REPO / "setup.py").read_text()
    for needle in ("share/ament_index/resource_index/packages", "launch/*.launch.py", "config/*.yaml",
                   "rill = agent.cli:main"):
        assert needle in setup


# The design documents are in the repository, and nothing cites the notes they replaced, which
# lived outside it (their upper-case names, built here so that this file does not cite them).
OLD_NOTES = tuple(f"{name}.md".encode() for name in ("DESIGN", "STREAMX"))
NOT_SOURCES = {".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
OUTPUTS = {"runs", "build", "install", "log"}  # run directories and colcon's, at the top


def test_the_design_documents_are_in_the_repository_and_cited_from_there():
    assert (REPO / "docs" / "design.md").is_file() and (REPO / "docs" / "streamx.md").is_file()
    bad = []
    for root, dirs, files in os.walk(REPO):
        top = Path(root) == REPO
        dirs[:] = [d for d in dirs if d not in NOT_SOURCES and not d.startswith(".venv")
                   and not (top and d in OUTPUTS)]
        for name in files:
            path = Path(root, name)
            if not path.is_file() or path.stat().st_size > 8 * 1024 * 1024:
                continue
            data = path.read_bytes()
            bad += [f"{path.relative_to(REPO)} cites {n.decode()}" for n in OLD_NOTES if n in data]
    assert not bad, "cite docs/design.md or docs/streamx.md instead:\n" + "\n".join(bad)
