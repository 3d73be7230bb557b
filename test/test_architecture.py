"""The architecture rules are checked, and the checks catch what they are for.

``lint-imports`` (import-linter, contracts in ``.importlinter``) runs in ``make lint``; here it also
runs on a copy of the sources with one deliberate violation per contract, which must break exactly
that contract. The function-length rule is an ``ast`` walk.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qdr_core.paths import source_root

ROOT = source_root()
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_FUNCTION_LINES = 80
LONG_FUNCTION_ALLOWLIST: set[tuple[str, str]] = set()


def _lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    for contract in contracts:
        args += ["--contract", contract]
    # PYTHONPATH first: the copy's packages shadow the editable install's.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


pytestmark = pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is not installed")


def test_the_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture()
def source_copy(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("qdr_core", "qdr_ros"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


VIOLATIONS = {
    # contract id: (file in the copy, line appended, text of the report)
    "layers": (
        "qdr_core/models/efm.py",
        "from qdr_core.runtime import load_runtime  # noqa",
        "qdr_core.models.efm -> qdr_core.runtime",
    ),
    "ros-free": (
        "qdr_core/data/imageio.py",
        "import sensor_msgs.msg  # noqa",
        "qdr_core.data.imageio -> sensor_msgs",
    ),
    "torch-free-runtimes": (
        "qdr_core/runtime/onnxruntime_backend.py",
        "from qdr_core.models.checkpoint import read_checkpoint  # noqa",
        "qdr_core.models.checkpoint -> torch",
    ),
    "acyclic": (
        "qdr_core/bench/memory.py",
        "from qdr_core.bench.worker import RESULT_PREFIX  # noqa",
        "allowed in qdr_core.bench",
    ),
    "packages": (
        "qdr_core/frame_restore.py",
        "import qdr_ros.qos  # noqa",
        "qdr_core.frame_restore -> qdr_ros.qos",
    ),
}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_deliberate_violation_breaks_its_contract(source_copy: Path, contract: str) -> None:
    relative, line, evidence = VIOLATIONS[contract]
    path = source_copy / relative
    path.write_text(path.read_text() + "\n" + line + "\n")
    result = _lint_imports(source_copy, contract)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout
    assert evidence in result.stdout


def test_an_unlisted_package_breaks_the_layers(source_copy: Path) -> None:
    # exhaustive = True: a new top-level module must be placed in the layer list (and the picture).
    (source_copy / "qdr_core" / "newcomer.py").write_text('"""Not in any layer."""\n')
    result = _lint_imports(source_copy, "layers")
    assert result.returncode != 0 and "newcomer" in result.stdout


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_is_over_80_lines() -> None:
    long = []
    for path in sorted([*ROOT.glob("qdr_core/**/*.py"), *ROOT.glob("qdr_ros/**/*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        for name, lines in _functions(path):
            if lines > MAX_FUNCTION_LINES and (relative, name) not in LONG_FUNCTION_ALLOWLIST:
                long.append(f"{relative}:{name} ({lines} lines)")
    assert not long, "split these functions: " + ", ".join(long)


def test_the_length_check_sees_functions(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(90))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n\n\nclass A:\n    def short(self):\n        return 1\n")
    assert dict(_functions(sample)) == {"long": 91, "short": 2}


def test_the_picture_lists_every_layer() -> None:
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    names = {n.strip(" ()") for line in layers.split("\n") for n in line.replace(":", "|").split("|")}
    picture = (ROOT / "docs" / "architecture.md").read_text().split("## The layers")[1].split("```")[1]
    assert {n for n in names if n} <= set(picture.replace("|", " ").replace(":", " ").split())


def test_setup_installs_every_model_file_including_the_opt_in_folders():
    """`colcon build` must install models/<task>/ and its realistic/ and stream/ variants: a node
    pointed at `model_path: models/noise/stream/int8_cpu.onnx` finds it in the share dir."""
    root = source_root()
    source = (root / "setup.py").read_text()
    namespace = {"__file__": str(root / "setup.py")}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        exec(compile(source.split("\nsetup(")[0], "setup.py", "exec"), namespace)
        installed = {str(Path(f)) for _, files in namespace["_data_files"]() for f in files}
    finally:
        os.chdir(cwd)
    wanted = {str(p.relative_to(root)) for p in root.glob("models/**/*.onnx")}
    assert wanted and "models/noise/stream/int8_cpu.onnx" in wanted
    assert wanted <= installed, sorted(wanted - installed)
