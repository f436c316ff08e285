"""Issue 13 #3: a forced prediction run killed while it replaces a day's predictions.

The day is first published by one champion; then another champion is promoted and a forced
run, a real `batch_predict` flow run in a subprocess (on the test's Prefect API), is killed
with SIGKILL right after it removed the day's earlier file. Before the fix the files were
removed before the marker was rewritten, so the marker named the deleted file and the next
run returned Completed with that URI. Now the day's marker must name one complete file that
exists, and the next (not forced) scheduled run must skip and return it: the forced run
is a manual one, whose marker keeps the day's scheduled slot (issue 14 #2). The other kill
points (before the marker changes) are covered without a subprocess in
tests/unit/test_publication.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pandas as pd
import pytest
from prefect import tags
from prefect.settings import get_current_settings

from flows.prediction import batch_predict
from seqcast.config import PipelineConfig
from seqcast.serving import publication, registry
from seqcast.windows.scaling import Scaler, Stats
from seqcast.windows.windowing import WindowLayout
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow

REPO = Path(__file__).resolve().parents[2]

KILLED_FORCED_RUN = """
import sys, time
import fsspec.implementations.local as local
from seqcast.config import PipelineConfig

config = PipelineConfig.model_validate_json(open(sys.argv[1]).read())


def day_file(path):
    return "/predictions/date=" in str(path) and str(path).endswith(".parquet")


def stop():
    print("WRITING", flush=True)
    time.sleep(600)


rm = local.LocalFileSystem.rm


def removing(self, path, *args, **options):  # killed right after an earlier file goes
    rm(self, path, *args, **options)
    if day_file(path):
        stop()


local.LocalFileSystem.rm = removing

from flows.prediction import batch_predict

sys.stdin.readline()  # imported (the slow part) while the test sets the day up: go
batch_predict(config, force=True)
print("FINISHED", flush=True)
"""


def last_value_champion(config: PipelineConfig, tmp_path: Path, tag: str) -> str:
    """Register and promote a last-value version for the tiny load data (no training)."""
    windows = tmp_path / f"windows-{tag}"
    windows.mkdir()
    layout = WindowLayout(
        task="forecast",
        lookback=24,
        horizon=6,
        stride=1,
        series_column="sensor",
        timestamp="ts",
        input_columns=["load"],
        target_columns=["load"],
        classes=[],
        step_seconds=3600.0,
        frequency="h",
    )
    scaler = Scaler(kind="none", columns=["load"], global_stats=Stats(mean=[0.0], std=[1.0]))
    (windows / "layout.json").write_text(json.dumps(dataclasses.asdict(layout)))
    (windows / "scaler.json").write_text(json.dumps(scaler.to_json()))
    version = registry.register_version(
        config.pipeline_root,
        None,
        str(windows),
        {"mae": 1.0},
        {"tag": tag},
        kind="last_value",
        params={"tag": tag},
    )
    registry.set_champion(config.pipeline_root, version, {"reason": tag})
    return version


def start_forced_run(config: PipelineConfig, tmp_path: Path, log: IO[str]) -> subprocess.Popen[str]:
    """The forced run's process; it imports, then waits for a line on stdin to start.
    Its stderr goes to ``log`` (a pipe could fill up and block it)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json())
    script = tmp_path / "forced.py"
    script.write_text(KILLED_FORCED_RUN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "PREFECT_API_URL": str(get_current_settings().api.url),  # the harness's server
    }
    return subprocess.Popen(
        [sys.executable, str(script), str(config_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=REPO,
    )


def kill_at_its_point(child: subprocess.Popen[str], log: Path) -> None:
    """Let the forced run start; SIGKILL it when it reports reaching the kill point."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write("go\n")
        child.stdin.close()
        line = child.stdout.readline().strip()
        if line != "WRITING":
            child.wait(timeout=60)
            raise AssertionError(f"no kill point reached: {line!r}\n{log.read_text()[-3000:]}")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        child.stdout.close()


def test_a_kill_while_replacing_a_day_leaves_one_published_file(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    config = tiny_config(tiny_load_csv, tmp_path / "root")
    log = tmp_path / "forced.log"
    with log.open("w") as handle:
        child = start_forced_run(config, tmp_path, handle)
    try:
        last_value_champion(config, tmp_path, "first")
        day = datetime.now(UTC).date()  # the logical date of a run started by hand
        with tags("backfill"):  # the day's scheduled run publishes it
            batch_predict(config)
        second = last_value_champion(config, tmp_path, "second")
        kill_at_its_point(child, log)
    finally:
        if child.poll() is None:  # the set-up failed: never leave it waiting
            child.kill()
            child.wait(timeout=60)

    # The marker names one complete file that exists: the forced run's, the only one left.
    published = publication.published_predictions(config.pipeline_root, day)
    marker = Path(publication.marker_uri(config.pipeline_root, day))
    assert published is not None, marker.read_text()
    assert published.model_version == second
    frame = pd.read_parquet(published.uri)
    assert len(frame) == published.rows == 3 * 6
    assert not frame.duplicated(["sensor", "step"]).any()
    assert set(frame["model_version"]) == {second}
    folder = Path(publication.day_folder(config.pipeline_root, day))
    assert [p.name for p in folder.glob("*.parquet")] == [Path(published.uri).name]

    # The next scheduled run for the day (not forced) skips and returns that file, which exists.
    with tags("backfill"):
        state = batch_predict(config, return_state=True)
    again = state.result()
    assert state.name == "Skipped"
    assert again == published and Path(again.uri).is_file()
