"""Imports go one way: flows -> tasks -> seqcast; the library never imports Prefect; and
inside the library a stage imports only itself and the stages before it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import seqcast

LIBRARY = Path(seqcast.__file__).parent

STAGES = ["", "io", "data", "windows", "modeling", "serving", "monitoring"]
"""The library's layers in DAG order; "" is the top level (config, records, errors)."""


def _modules() -> list[Path]:
    return sorted(p for p in LIBRARY.rglob("*.py"))


def _stage(module: str) -> str:
    """``seqcast.windows.store`` or ``seqcast.windows`` -> ``windows``; else ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (LIBRARY / parts[1]).is_dir() else ""


def _seqcast_imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("seqcast.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqcast"):
            if node.module == "seqcast":
                found += [f"seqcast.{a.name}" for a in node.names if a.name != "__version__"]
            else:
                found.append(node.module)
    return found


def test_library_never_imports_prefect() -> None:
    modules = [
        "seqcast." + ".".join(p.relative_to(LIBRARY).with_suffix("").parts)
        for p in _modules()
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_library_source_names_no_prefect_import() -> None:
    offenders = [
        str(p.relative_to(LIBRARY))
        for p in _modules()
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []


def test_every_subpackage_is_a_known_stage() -> None:
    stages = {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    assert stages == set(STAGES) - {""}, "a new subpackage needs its place in STAGES"


def test_no_stage_imports_a_later_stage() -> None:
    upward = []
    for path in _modules():
        own = _stage("seqcast." + ".".join(path.relative_to(LIBRARY).with_suffix("").parts))
        for target in _seqcast_imports(path):
            if STAGES.index(_stage(target)) > STAGES.index(own):
                upward.append(f"{path.relative_to(LIBRARY)} imports {target}")
    assert upward == []


def test_stage_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a data module importing the window store is reported."""
    module = tmp_path / "bad.py"
    module.write_text("from seqcast.windows import store\nimport seqcast.serving.registry\n")
    targets = _seqcast_imports(module)
    assert [_stage(t) for t in targets] == ["windows", "serving"]
    assert all(STAGES.index(_stage(t)) > STAGES.index("data") for t in targets)
