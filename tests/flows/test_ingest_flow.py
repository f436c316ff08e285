"""Issue 18: the ingest subflow maps one task per source file on the configured runner and
writes the serial snapshot; a failed file task leaves no snapshot and no parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.runners import run_sharded
from flows.sharded import ingest_files
from seqcast.data.ingest import snapshot_source
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

    (tiny_load_csv / "sensor-x.csv").write_text("ts,sensor,load\na,x,1\nb,x,1,2,3\n")
    with pytest.raises(SourceError, match=r"sensor-x\.csv is not a well-formed CSV file"):
        run_sharded(ingest_files, config)
    raw = Path(config.pipeline_root) / "raw"
    assert len(list(raw.glob("*/manifest.json"))) == 1  # the first snapshot only
    kept = Path(mapped.uri).parent
    leftovers = [p for p in raw.rglob("*") if p.is_file() and kept not in p.parents]
    assert leftovers == []  # no data file, part or temporary of the failed run
