"""`seqcast contract init` and `seqcast validate` as a user runs them (a subprocess each)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from seqcast.data.contracts import load_contract
from seqcast.data.sample import write_samples
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def seqcast(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`seqcast ARGS` run in ``cwd`` with no Prefect home set: the CLI puts it under
    ``cwd/.seqcast``."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_HOME", None)
    return run_cli(*args, env=env, cwd=cwd)


def project(tmp_path: Path, contract: str | None = None) -> Path:
    """The sample-load config and sample data in ``tmp_path`` (paths relative to it)."""
    write_samples(tmp_path / "data/sample")
    config = yaml.safe_load((ROOT / "configs/sample-load.yaml").read_text())
    config["contract"] = contract
    config["data_root"] = ".seqcast/data"  # relative to the config's folder, tmp_path
    config["source"]["path"] = "data/sample/load/*.csv"
    config["model"] = {"units": [8], "epochs": 1}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_contract_init_drafts_a_contract_and_will_not_overwrite(tmp_path: Path) -> None:
    project(tmp_path)
    done = seqcast(tmp_path, "contract", "init", "--config", "pipeline.yaml", "--rows", "500")
    assert done.returncode == 0, done.stderr
    assert "contract drafted from 500 rows of 1 file(s): schemas/sample-load.yaml" in done.stdout
    assert "contract: schemas/sample-load.yaml" in done.stdout  # how to use it
    drafted = load_contract(tmp_path / "schemas/sample-load.yaml")
    assert drafted.frequency == "1h" and drafted.columns["load"].type == "float"
    again = seqcast(tmp_path, "contract", "init", "--config", "pipeline.yaml")
    assert again.returncode == 1 and "exists; review it, or pass --force" in again.stderr


def one_null_load(tmp_path: Path) -> tuple[Path, list[str]]:
    """The project with the contract, sensor-1's load on its line 6 NaN (a quarantined
    row); returns that file and its lines."""
    project(tmp_path, contract=str(ROOT / "schemas/sample-load.yaml"))
    one = tmp_path / "data/sample/load/sensor-1.csv"
    lines = one.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[2], "NaN")
    one.write_text("\n".join(lines) + "\n")
    return one, lines


def assert_passed_with_one_row_quarantined(
    tmp_path: Path, passed: subprocess.CompletedProcess[str]
) -> None:
    """`seqcast validate` of `one_null_load`'s project: exit 0, the summary, the report."""
    assert passed.returncode == 0, passed.stderr[-2000:]
    assert "PASSED with rows quarantined" in passed.stdout
    assert "| not_null | load | quarantine | 1 | quarantine |" in passed.stdout
    report = passed.stdout.rsplit("report: ", 1)[1].strip()
    assert (tmp_path / report).is_file()
    assert list((tmp_path / ".seqcast/data/sample-load/quarantine").glob("*.parquet"))
    assert list((tmp_path / ".seqcast/data/sample-load/data_docs/validations").rglob("*.html"))


@pytest.mark.flow
def test_validate_exit_codes_summary_and_report(tmp_path: Path) -> None:
    # The passing run of this project (exit 0, a row quarantined, the reports) is checked
    # by tests/unit/test_startup.py::test_commands_use_the_running_seqcast_server, on its
    # running server: each `validate` here starts a temporary server of its own. This one
    # is the suite's command that runs to its end on such a server.
    one, lines = one_null_load(tmp_path)
    lines[6] = lines[6].replace("+00:00", "")
    one.write_text("\n".join(lines) + "\n")
    failed = seqcast(tmp_path, "validate", "--config", "pipeline.yaml")
    assert failed.returncode == 1
    assert "error: data contract 'sample-load' failed on sensor-1.csv" in failed.stderr
    assert "rule timezone on column 'ts'" in failed.stderr
    assert "without sensor-1.csv:7 ts='2024-01-01T05:00:00'" in failed.stderr
    assert f"Report: {tmp_path}/.seqcast/data/sample-load/validation/" in failed.stderr
    assert "Traceback" not in failed.stderr
