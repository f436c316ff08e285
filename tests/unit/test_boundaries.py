"""Imports go one way: flows -> tasks -> seqcast; the library never imports Prefect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import seqcast

LIBRARY = Path(seqcast.__file__).parent


def test_library_never_imports_prefect() -> None:
    modules = sorted(p.stem for p in LIBRARY.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('seqcast.' + m)\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_library_source_names_no_prefect_import() -> None:
    offenders = [
        p.name
        for p in LIBRARY.glob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []
