"""Issue 18: ingest reads each source file in batches and writes the raw snapshot as it
reads, yet the snapshot is the one the whole-file read gave (same columns and order, text
values, lines, schema and pandas metadata). `whole_read` below is that read, as ingest did
it before: each file whole, joined with pandas.
"""

from __future__ import annotations

import codecs
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqcast.config import SourceSpec
from seqcast.data import parsing, source_batches, timed_reads
from seqcast.data.ingest import (
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_TEST,
    read_source_file,
    snapshot_source,
)
from seqcast.errors import SourceError
from seqcast.io import storage
from seqcast.io.row_groups import RowGroupWriter
from tests.unit.test_bad_inputs import HEADER, rows, write


def whole_read(paths: list[Path], marks: list[dict[str, str]] | None = None) -> pa.Table:
    """The snapshot table as ingest built it before issue 18: every file read whole."""
    frames = []
    for i, path in enumerate(paths):
        data = path.read_bytes()
        if path.name.endswith(".parquet"):
            typed = pq.read_table(io.BytesIO(data)).to_pandas()
            frame = pd.DataFrame({c: parsing.as_text(typed[c]) for c in typed.columns})
            first = 1
        else:
            text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode(
                "utf-8-sig"
            )
            options = {"dtype": str, "keep_default_na": False, "na_filter": False}
            frame = pd.read_csv(io.StringIO(text), **options) if text.strip() else pd.DataFrame()
            first = 2
        frame[SOURCE_FILE] = pd.Series([path.name] * len(frame), index=frame.index, dtype="str")
        frame[SOURCE_LINE] = np.arange(first, first + len(frame), dtype=np.int64)
        frames.append(frame.assign(**(marks[i] if marks else {})))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.astype({c: "str" for c in frame.columns if c != SOURCE_LINE})
    fields = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_LINE)]
    schema = pa.schema(
        [*(pa.field(c, pa.string()) for c in fields)]
        + [pa.field(SOURCE_FILE, pa.string()), pa.field(SOURCE_LINE, pa.int64())]
    )
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def source(path: Path, **options: object) -> SourceSpec:
    return SourceSpec.model_validate({"path": str(path), "target": ["load"], **options})


def snapshot(tmp_path: Path, pattern: str, batch_rows: int, **options: object) -> pa.Table:
    spec = source(tmp_path / pattern, series_id="sensor", **options)
    ref = snapshot_source(spec, str(tmp_path / f"root-{batch_rows}"), batch_rows=batch_rows)
    table = pq.read_table(ref.uri)
    assert ref.rows == table.num_rows
    return table


def assert_same(streamed: pa.Table, whole: pa.Table) -> None:
    assert streamed.schema.names == whole.schema.names
    assert streamed.to_pandas().equals(whole.to_pandas())
    assert streamed.equals(whole, check_metadata=True)  # pandas metadata included


def test_csv_files_larger_than_the_batch_give_the_whole_read_snapshot(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", rows(1, steps=10))
    # Quoted fields (a comma, a doubled quote, a newline), blank lines, CRLF, a column of its own.
    (tmp_path / "b.csv").write_bytes(
        b"ts,sensor,load,note\r\n"
        b'2024-01-01T00:00:00Z,sensor-2,1.5,"a,b"\r\n\r\n'
        b'2024-01-01T01:00:00Z,sensor-2,,"say ""hi"""\r\n'
        b'2024-01-01T02:00:00Z,sensor-2,3.5,"two\nlines"\r\n'
        b"2024-01-01T03:00:00Z,sensor-2,4.5,\r\n\r\n\r\n"
        b"2024-01-01T04:00:00Z,sensor-2,5.5,e\r\n"
    )
    write(tmp_path / "c.csv", [])  # header only
    (tmp_path / "d.csv").write_bytes(b" \n\n")  # blank: no header, no rows
    files = sorted(tmp_path.glob("*.csv"))

    streamed = snapshot(tmp_path, "*.csv", batch_rows=3)
    assert_same(streamed, whole_read(files))
    assert_same(snapshot(tmp_path, "*.csv", batch_rows=1000), whole_read(files))  # one batch
    frame = streamed.to_pandas()
    assert frame.columns.tolist() == [*HEADER.split(","), "note", SOURCE_FILE, SOURCE_LINE]
    # Lines run on across the batches of 3 rows (each file's count starts after its header).
    assert frame[SOURCE_LINE].tolist() == [*range(2, 12), *range(2, 7)]
    stamps = [r.split(",")[0] for r in rows(1)]
    assert frame.loc[2:3, ["ts", SOURCE_LINE]].values.tolist() == [[stamps[2], 4], [stamps[3], 5]]
    b = frame[frame[SOURCE_FILE] == "b.csv"]
    assert b["note"].tolist() == ["a,b", 'say "hi"', "two\nlines", "", "e"]
    assert b["load"].tolist()[:2] == ["1.5", ""]  # blank stays blank text
    assert frame["note"].isna().sum() == 10  # a.csv has no such column: null, not ""


def test_parquet_larger_than_the_batch_gives_the_whole_read_snapshot(tmp_path: Path) -> None:
    count = pa.array([*range(9), None], pa.int64())  # one null, in the last row group
    table = pa.table(
        {
            "ts": pa.array(pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")),
            "sensor": ["sensor-1"] * 10,
            "load": [0.1 * i for i in range(9)] + [None],
            "count": count,
        }
    )
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=4)
    pq.write_table(table.slice(6), tmp_path / "b.parquet", write_statistics=False)
    files = sorted(tmp_path.glob("*.parquet"))

    streamed = snapshot(tmp_path, "*.parquet", batch_rows=3)
    assert_same(streamed, whole_read(files))
    frame = streamed.to_pandas()
    assert frame[SOURCE_LINE].tolist() == [*range(1, 11), *range(1, 5)]
    assert frame["ts"].iloc[4] == "2024-01-01T04:00:00+00:00"
    assert frame["load"].iloc[3] == "0.30000000000000004"  # floats exactly, as text
    # pandas read the whole column as floats (it has a null), so every batch says "1.0",
    # also the batches without a null, and also where the file has no null counts.
    assert streamed.column("count").to_pylist()[8:11] == ["8.0", None, "6.0"]
    assert frame["count"].iloc[1] == "1.0"


def test_gzip_csv_with_a_bom_streams_like_the_whole_read(tmp_path: Path) -> None:
    text = "\ufeff" + "\n".join([HEADER, *rows(1, steps=7)]) + "\n"
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text.encode()))
    streamed = snapshot(tmp_path, "*.csv.gz", batch_rows=2)
    assert_same(streamed, whole_read([tmp_path / "a.csv.gz"]))
    assert streamed.column("ts").to_pylist()[0] == rows(1)[0].split(",")[0]  # no BOM left
    assert streamed.column(SOURCE_LINE).to_pylist() == list(range(2, 9))


def test_test_and_train_files_keep_their_marks_and_column_order(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", rows(1, steps=5))
    write(tmp_path / "test.csv", [r + ",x" for r in rows(2, steps=4)], header=HEADER + ",extra")
    streamed = snapshot(tmp_path, "train.csv", batch_rows=2, test_path=str(tmp_path / "test.csv"))
    whole = whole_read(
        [tmp_path / "train.csv", tmp_path / "test.csv"],
        [{SOURCE_TEST: "0"}, {SOURCE_TEST: "1"}],
    )
    assert_same(streamed, whole)
    assert streamed.column(SOURCE_TEST).to_pylist() == ["0"] * 5 + ["1"] * 4


def test_chunk_boundaries_keep_bytes_lines_and_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2-byte chunks split the BOM and every two-byte character ("ü") across chunks.
    monkeypatch.setattr(timed_reads, "CHUNK", 2)
    good = "\ufeff" + "\n".join([HEADER, *rows(1, steps=3)]).replace("sensor-1", "Zürich")
    (tmp_path / "a.csv").write_bytes(good.encode())
    frame = read_source_file(str(tmp_path / "a.csv"))
    assert frame.columns[0] == "ts" and frame["sensor"].tolist() == ["Zürich"] * 3

    lines = [HEADER, *rows(1, steps=5)]
    lines[4] = lines[4].replace("sensor-1", "Zürich")
    data = codecs.BOM_UTF8 + "\n".join(lines).encode("latin-1")
    (tmp_path / "a.csv").write_bytes(data)
    offset = data.index(b"\xfc") - len(codecs.BOM_UTF8)  # counted after the BOM, as before
    with pytest.raises(SourceError, match=rf"byte 0xfc at line 5 \(byte offset {offset}\)"):
        read_source_file(str(tmp_path / "a.csv"))

    (tmp_path / "a.csv").write_bytes(codecs.BOM_UTF8)  # a BOM and nothing else: a blank file
    assert read_source_file(str(tmp_path / "a.csv")).columns.tolist() == [SOURCE_FILE, SOURCE_LINE]


def test_a_fault_after_some_batches_publishes_no_snapshot(tmp_path: Path) -> None:
    ragged = [*rows(1, steps=8), "2024-01-02T00:00:00Z,sensor-1,1,2,3"]
    write(tmp_path / "a.csv", ragged)
    spec = source(tmp_path / "a.csv")
    with pytest.raises(SourceError, match=r"a\.csv is not a well-formed CSV file: .*line 10"):
        snapshot_source(spec, str(tmp_path / "root"), batch_rows=2)
    (snapshot_dir,) = (tmp_path / "root" / "raw").iterdir()
    assert list(snapshot_dir.iterdir()) == []  # no data file, no temporary, no manifest


def test_the_batches_become_row_groups_of_a_fixed_size(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("i", pa.int64())])
    path = tmp_path / "out.parquet"
    with pq.ParquetWriter(path, schema) as writer:
        groups = RowGroupWriter(writer, row_group_rows=4)
        for start in (0, 5, 10):
            groups.write(pa.table({"i": range(start, start + 5)}, schema=schema))
        groups.write(pa.table({"i": pa.array([], pa.int64())}))
        groups.flush()
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == [4, 4, 4, 3]
    assert pq.read_table(path).column("i").to_pylist() == list(range(15))
    assert groups.rows == 15


def test_a_snapshot_on_an_object_store_is_the_same(tmp_path: Path, memory_root: str) -> None:
    write(tmp_path / "a.csv", rows(1, steps=7))
    spec = source(tmp_path / "a.csv")
    ref = snapshot_source(spec, memory_root, batch_rows=3)
    assert ref.uri.startswith("memory://")
    assert_same(storage.read_parquet(ref.uri), whole_read([tmp_path / "a.csv"]))


def test_the_batch_size_must_be_positive(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", rows(1, steps=2))
    with pytest.raises(ValueError, match="batch_rows=0"):
        next(source_batches.iter_batches(str(tmp_path / "a.csv"), 5.0, batch_rows=0))
