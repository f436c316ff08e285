"""Issue 13 #13: a source that never answers (a FIFO no writer opens: the local stand-in
for a hung network mount or a stalled object store) fails the ingest step after
``source.read_timeout_seconds`` with an error naming the file, instead of hanging for good;
the step's retry condition (`tasks.common.retry_only_transient`) retries it.

The ingest step's library call (`snapshot_source`) runs in a subprocess: before the fix it
blocked in the kernel's open() forever, which no in-process test could interrupt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_bad_inputs import make_config, two_sensors

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys, time
from prefect.states import Failed
from seqcast.config import load_config
from seqcast.data.ingest import snapshot_source
from tasks.common import retry_only_transient

config = load_config(sys.argv[1], [])
source = config.source.model_copy(update={"read_timeout_seconds": 0.5})
started = time.monotonic()
try:
    snapshot_source(source, config.pipeline_root)
except Exception as exc:
    print(json.dumps({
        "type": type(exc).__name__,
        "message": str(exc),
        "retried": retry_only_transient(None, None, Failed(data=exc)),
        "seconds": time.monotonic() - started,
    }))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_a_source_that_never_answers_fails_named_and_is_retried(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    stalled = tmp_path / "c.csv"
    os.mkfifo(stalled)  # matched by *.csv; no writer ever opens it
    config = make_config(tmp_path)
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # before the fix it never returned; now it takes seconds
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert failed["type"] == "SourceTimeoutError"
    assert failed["retried"] is True
    message = failed["message"]
    assert f"{stalled} did not answer within 0.5 s (source.read_timeout_seconds)" in message
    assert "raise source.read_timeout_seconds" in message, message
    assert failed["seconds"] < 60  # prompt: the timeout, not a hang (generous on a busy CPU)
    assert not (tmp_path / "data/feed/raw").exists()  # no snapshot of a partial source
