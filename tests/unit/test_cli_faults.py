"""Faults of issue 13 tried as a user runs the CLI (a subprocess each)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_contracts_cli import project, seqcast


def test_predict_without_a_champion_fails_before_reading_the_source(tmp_path: Path) -> None:
    # Issue 13 #16: it ingested (snapshotted) the whole source before saying there is no
    # champion; now it says so at once and writes nothing under the data root.
    project(tmp_path)
    done = seqcast(tmp_path, "predict", "--config", "pipeline.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: no champion model under" in done.stderr
    assert "run `seqcast train` first" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".seqcast/data/sample-load/raw").exists()
