"""The package layout and the one-way import rule of DESIGN.md."""

from __future__ import annotations

import ast
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
