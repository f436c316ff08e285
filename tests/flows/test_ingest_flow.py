"""Issue 18: the ingest subflow maps one task per source file on the configured runner and
writes the serial snapshot; a failed file task leaves no snapshot and no parts. The flows
take that path on a Dask runner only (`flows.sharded.ingest_source`; on Dask:
tests/flows/test_runners.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import flows.sharded
from flows.runners import run_sharded
from flows.sharded import ingest_files, ingest_source
from seqcast.data.ingest import snapshot_source
from seqcast.data.snapshot_parts import WORK
from seqcast.errors import SourceError
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow


def test_ingest_maps_the_files_on_threads_and_writes_the_serial_snapshot(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    config = tiny_config(tiny_load_csv, tmp_path / "root", runner={"n_workers": 2})
    mapped = run_sharded(ingest_files, config)
    serial = snapshot_source(config.source, str(tmp_path / "serial"))
    assert len(mapped.files) == 3  # one CSV file per series
    assert Path(mapped.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert mapped.model_dump(exclude={"uri"}) == serial.model_dump(exclude={"uri"})
    assert run_sharded(ingest_files, config) == mapped  # unchanged files: reused
    work = Path(config.pipeline_root) / WORK
    assert work.is_dir() and not list(work.iterdir())  # the parts' folder, removed

    (tiny_load_csv / "sensor-x.csv").write_text("ts,sensor,load\na,x,1\nb,x,1,2,3\n")
    with pytest.raises(SourceError, match=r"sensor-x\.csv is not a well-formed CSV file"):
        run_sharded(ingest_files, config)
    raw = Path(config.pipeline_root) / "raw"
    assert len(list(raw.glob("*/manifest.json"))) == 1  # the first snapshot only
    kept = Path(mapped.uri).parent
    leftovers = [p for p in raw.rglob("*") if p.is_file() and kept not in p.parents]
    assert leftovers == []  # no data file or temporary of the failed run
    assert not list(work.iterdir())  # and no parts: its work folder was abandoned


@pytest.mark.parametrize(
    ("runner", "files"),
    [({"kind": "thread", "n_workers": 2}, "*.csv"), ({"kind": "dask"}, "sensor-1.csv")],
    ids=["threads, three files", "dask, one file"],
)
def test_the_flows_ingest_serially_on_threads_or_one_file(
    tiny_load_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runner: dict[str, Any],
    files: str,
) -> None:
    config = tiny_config(tiny_load_csv, tmp_path / "root", runner=runner)
    config = config.model_copy(
        update={"source": config.source.model_copy(update={"path": f"{tiny_load_csv}/{files}"})}
    )
    subflows: list[object] = []
    monkeypatch.setattr(flows.sharded, "run_sharded", lambda *args: subflows.append(args))

    snapshot = ingest_source(config)
    assert subflows == []  # the one `ingest` task, no subflow (and no Dask cluster)
    serial = snapshot_source(config.source, str(tmp_path / "serial"))
    assert Path(snapshot.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert not (Path(config.pipeline_root) / WORK).exists()
