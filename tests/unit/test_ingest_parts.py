"""Issue 18: many source files ingested as one task per file (`seqcast.data.snapshot_parts`)
give the very file the serial `snapshot_source` writes; a run that fails or dies midway
leaves no snapshot and the next run clears what it left; two runs of the same new source
at once both succeed, with the same bytes."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqcast.config import SourceSpec
from seqcast.data import ingest as ingest_module
from seqcast.data.ingest import SOURCE_FILE, SOURCE_TEST, plan_snapshot, snapshot_source
from seqcast.data.snapshot_parts import (
    WORK,
    combine_parts,
    plan_parts,
    snapshot_in_parts,
    write_part,
)
from seqcast.errors import SourceError
from seqcast.io import work_dirs
from tests.conftest import kill_when_writing
from tests.unit.test_bad_inputs import HEADER, rows, write

BATCH = 7_000
"""Batches that end neither at a file's end nor at a row group's (64,000 rows)."""


def source(path: Path, **options: object) -> SourceSpec:
    return SourceSpec.model_validate(
        {"path": str(path), "target": ["load"], "series_id": "sensor", **options}
    )


def many_files(folder: Path, steps: int = 30_000) -> None:
    """Four files of ``3 * steps + 100`` rows in all (by default two row groups, the first
    across three files): CSV with a column of its own, a header-only CSV, a Parquet file."""
    folder.mkdir()
    write(folder / "a.csv", rows(1, steps=steps))
    write(
        folder / "b.csv",
        [f"{r},n{i}" for i, r in enumerate(rows(2, steps=steps))],
        HEADER + ",note",
    )
    write(folder / "c.csv", [])
    typed = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=steps + 100, freq="h", tz="UTC"),
            "sensor": "sensor-3",
            "load": [0.5 * i for i in range(steps + 100)],
        }
    )
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), folder / "d.parquet")


def snapshot_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "raw").rglob("*") if p.is_file())


def work_folders(root: Path) -> list[Path]:
    """The mapped ingests' work folders under the pipeline root ``root``."""
    return sorted((root / WORK).iterdir()) if (root / WORK).exists() else []


def test_files_ingested_in_parts_give_the_serial_snapshot_byte_for_byte(tmp_path: Path) -> None:
    many_files(tmp_path / "src")
    spec = source(tmp_path / "src")
    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=BATCH)
    mapped = snapshot_in_parts(spec, str(tmp_path / "mapped"), batch_rows=BATCH)

    assert Path(mapped.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert mapped.model_dump(exclude={"uri"}) == serial.model_dump(exclude={"uri"})
    assert mapped.rows == 90_100 and len(mapped.files) == 4
    metadata = pq.ParquetFile(mapped.uri).metadata
    assert [metadata.row_group(g).num_rows for g in range(2)] == [64_000, 26_100]
    table = pq.read_table(mapped.uri, columns=[SOURCE_FILE])
    assert table.column(SOURCE_FILE)[59_999:60_001].to_pylist() == ["b.csv", "d.parquet"]
    # Committed: the data file and the manifest, the work folder of the parts removed.
    assert [p.name for p in snapshot_files(tmp_path / "mapped")] == [
        "data.parquet",
        "manifest.json",
    ]
    assert (tmp_path / "mapped" / WORK).is_dir() and work_folders(tmp_path / "mapped") == []


def test_test_files_in_parts_keep_marks_and_refuse_a_shared_series(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", rows(1, steps=50))
    write(tmp_path / "test.csv", [r + ",x" for r in rows(2, steps=40)], header=HEADER + ",extra")
    spec = source(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv"))
    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=16)
    mapped = snapshot_in_parts(spec, str(tmp_path / "mapped"), batch_rows=16)
    assert Path(mapped.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert pq.read_table(mapped.uri).column(SOURCE_TEST).to_pylist() == ["0"] * 50 + ["1"] * 40

    write(tmp_path / "test.csv", rows(1, steps=5, start=60))  # sensor-1 again: refused
    with pytest.raises(SourceError, match=r"1 sensor value\(s\) appear both .*\(sensor-1\)"):
        snapshot_in_parts(spec, str(tmp_path / "mapped"))
    assert len(list((tmp_path / "mapped" / "raw").glob("*/manifest.json"))) == 1  # the first
    assert work_folders(tmp_path / "mapped") == []


def test_a_part_failing_midway_leaves_no_snapshot_and_the_next_run_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many_files(tmp_path / "src", steps=300)
    spec = source(tmp_path / "src")
    iter_batches = ingest_module.source_batches.iter_batches

    def mount_drops_in_d(
        uri: str, *args: Any, **kwargs: Any
    ) -> Generator[pd.DataFrame, None, None]:
        batches = iter_batches(uri, *args, **kwargs)
        if uri.endswith("d.parquet"):
            yield next(batches)
            raise OSError("the mount went away")  # after a batch of the last file
        yield from batches

    monkeypatch.setattr(ingest_module.source_batches, "iter_batches", mount_drops_in_d)
    root = tmp_path / "root"
    with pytest.raises(OSError, match="the mount went away"):
        snapshot_in_parts(spec, str(root), batch_rows=70)
    assert snapshot_files(root) == []  # no data file, no manifest, no temporaries
    assert work_folders(root) == []  # no parts

    monkeypatch.setattr(ingest_module.source_batches, "iter_batches", iter_batches)
    ref = snapshot_in_parts(spec, str(root), batch_rows=70)
    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=70)
    assert Path(ref.uri).read_bytes() == Path(serial.uri).read_bytes()


# Plans the mapped ingest of argv[1] into argv[2], writes two of its four parts, says
# WRITING and waits to be killed (SIGKILL: no clean-up code runs).
DYING_INGEST = """
import sys, time
from seqcast.config import SourceSpec
from seqcast.data.snapshot_parts import plan_parts, write_part

spec = SourceSpec(path=sys.argv[1], target=["load"], series_id="sensor")
plan = plan_parts(spec, sys.argv[2])
for index in (0, 1):
    write_part(spec, plan, index, batch_rows=70)
print("WRITING", flush=True)
time.sleep(600)
"""


def test_the_leftovers_of_a_run_that_died_are_cleared_by_the_next(tmp_path: Path) -> None:
    many_files(tmp_path / "src", steps=300)
    spec = source(tmp_path / "src")
    root = tmp_path / "root"
    kill_when_writing(DYING_INGEST, tmp_path, str(tmp_path / "src"), str(root))
    (dead,) = work_folders(root)
    assert sorted(p.name for p in dead.glob("part-*")) == ["part-00000.arrow", "part-00001.arrow"]
    # What else a dead run can leave in the snapshot folder: temporary files (the data file
    # and manifest are renamed into place whole). An old one is a dead run's; a young one
    # may be a live run's, and stays.
    folder = root / "raw" / Path(plan_snapshot(spec, str(root)).uri).name
    folder.mkdir(parents=True)
    old, young = folder / ".tmp-0a-data.parquet", folder / ".tmp-0b-data.parquet"
    old.write_bytes(b"half a file")
    young.write_bytes(b"a file being written")
    long_ago = time.time() - work_dirs.LEFTOVER_GRACE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))

    again = plan_parts(spec, str(root))
    assert again.reused is None and again.work is not None  # not taken for a snapshot
    assert work_folders(root) == [Path(again.work)]  # the dead run's parts are gone
    assert not old.exists() and young.exists()
    parts = [write_part(spec, again, i, batch_rows=70) for i in range(4)]
    ref = combine_parts(spec, again, parts)
    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=70)
    assert Path(ref.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert work_folders(root) == []


def test_two_runs_of_the_same_new_source_at_once_both_succeed(tmp_path: Path) -> None:
    many_files(tmp_path / "src", steps=300)
    spec = source(tmp_path / "src")
    root = str(tmp_path / "root")
    first = plan_parts(spec, root)
    second = plan_parts(spec, root)  # before the first has written anything
    assert first.uri == second.uri  # one content-addressed snapshot folder for both
    assert first.work is not None and second.work is not None and first.work != second.work

    # Their file tasks and combines interleaved: neither run's plan or commit touches the
    # other's parts, and the later commit replaces the snapshot with the same bytes.
    firsts = [write_part(spec, first, 0, batch_rows=70)]
    seconds = [write_part(spec, second, i, batch_rows=70) for i in range(4)]
    third = plan_parts(spec, root)  # a third run starts while both are midway: no harm
    firsts += [write_part(spec, first, i, batch_rows=70) for i in range(1, 4)]
    assert work_folders(Path(root)) == sorted(Path(p.work or "") for p in (first, second, third))
    by_second = combine_parts(spec, second, seconds)
    committed = Path(by_second.uri).read_bytes()
    by_first = combine_parts(spec, first, firsts)

    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=70)
    assert by_first == by_second
    assert committed == Path(by_first.uri).read_bytes() == Path(serial.uri).read_bytes()
    assert plan_parts(spec, root).reused == by_first
    assert work_folders(Path(root)) == [Path(third.work or "")]  # the third run's, still live


def test_a_plan_leaves_the_data_file_a_live_run_wrote_before_its_commit(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", rows(1, steps=30))
    spec = source(tmp_path / "a.csv")
    root = str(tmp_path / "root")
    first = plan_parts(spec, root)
    written = write_part(spec, first, 0)  # one file: straight into the snapshot folder
    assert plan_parts(spec, root).reused is None  # not committed yet, so not reused...
    assert Path(written.uri).exists()  # ...and not removed either
    ref = combine_parts(spec, first, [written])
    assert pq.read_table(ref.uri).num_rows == 30


def test_a_snapshot_that_exists_is_reused_without_reading_a_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.csv", rows(1, steps=20))
    write(tmp_path / "b.csv", rows(2, steps=20))
    spec = source(tmp_path / "*.csv")
    first = snapshot_in_parts(spec, str(tmp_path / "root"))

    def no_reads(*args: object) -> None:
        raise AssertionError("a file was parsed although its snapshot exists")

    monkeypatch.setattr(ingest_module.source_batches, "iter_batches", no_reads)
    monkeypatch.setattr(ingest_module.source_batches, "file_columns", no_reads)
    plan = plan_snapshot(spec, str(tmp_path / "root"))
    assert plan.reused == first and plan.files == []
    assert snapshot_source(spec, str(tmp_path / "root")) == first


def test_one_file_is_written_straight_into_the_snapshot(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", rows(1, steps=30))
    spec = source(tmp_path / "a.csv")
    plan = plan_parts(spec, str(tmp_path / "root"))
    part = write_part(spec, plan, 0, batch_rows=8)
    assert part.uri.endswith("data.parquet") and plan.work is None
    assert work_folders(tmp_path / "root") == []
    mapped = snapshot_in_parts(spec, str(tmp_path / "root"))  # commits the written file
    serial = snapshot_source(spec, str(tmp_path / "serial"), batch_rows=8)
    assert Path(mapped.uri).read_bytes() == Path(serial.uri).read_bytes()


def test_a_bad_file_among_many_is_named(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", rows(1, steps=20))
    write(tmp_path / "b.csv", [*rows(2, steps=20), "2024-01-02T00:00:00Z,sensor-2,1,2,3"])
    spec = source(tmp_path / "*.csv")
    with pytest.raises(SourceError, match=r"b\.csv is not a well-formed CSV file: .*line 22"):
        snapshot_in_parts(spec, str(tmp_path / "root"), batch_rows=8)
    assert snapshot_files(tmp_path / "root") == []
