"""Issue 13 #6: a data root that refuses writes for good (read-only, disk full, no
permission) fails the step at once with the path and the cause, and is not retried.

Each case runs the ingest step's library call (`snapshot_source`) in a subprocess whose data
root really refuses writes: as root, a tmpfs mounted read-only (or 8 KiB small, for disk
full) in a private mount namespace (`unshare -m`); as another user, a directory without
write permission. The step's retry condition (`tasks.common.retry_only_transient`) then
judges the real exception.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_bad_inputs import make_config, two_sensors

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from prefect.states import Failed
from seqcast.config import load_config
from seqcast.data.ingest import snapshot_source
from tasks.common import retry_only_transient

config = load_config(sys.argv[1], [])
try:
    snapshot_source(config.source, config.pipeline_root)
except Exception as exc:
    retried = retry_only_transient(None, None, Failed(data=exc))
    print(json.dumps({"type": type(exc).__name__, "message": str(exc), "retried": retried}))
"""


def can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


def run_on(root: Path, config: Path, mount: str | None) -> dict[str, object]:
    """Run SCRIPT with ``root`` mounted as ``mount`` (tmpfs options), or not writable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    python = [sys.executable, "-c", SCRIPT, str(config)]
    if mount is None:
        root.chmod(0o555)
        command = python
    else:
        shell = f'mount -t tmpfs -o {mount} tmpfs "{root}" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", shell, "sh", *python]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    root.chmod(0o755)
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def project(tmp_path: Path) -> tuple[Path, Path]:
    two_sensors(tmp_path)
    config = make_config(tmp_path)
    root = Path(config.data_root)
    root.mkdir(parents=True)
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return root, path


@pytest.mark.parametrize(
    ("mount", "cause"),
    [("ro", "read-only file system"), ("size=8k", "no space left on the device (disk full)")],
)
def test_a_data_root_that_refuses_writes_is_not_retried(
    tmp_path: Path, mount: str, cause: str
) -> None:
    if not can_mount():
        if mount != "ro":
            pytest.skip("filling a disk needs a private tmpfs mount (root and unshare)")
        mount_option: str | None = None
        cause = "permission denied"
    else:
        mount_option = mount
    root, config = project(tmp_path)
    failed = run_on(root, config, mount_option)
    assert failed["type"] == "StorageError"
    assert failed["retried"] is False
    message = str(failed["message"])
    assert f"cannot write {root}/feed/raw/" in message and cause in message, message
    assert "point `data_root` at a writable place" in message
