"""Series one at a time from the validated table, so the window step's memory stays bounded.

The validated Parquet table is sorted by (series, timestamp). `ParquetSeries` reads it in
record batches of a fixed size and yields each series as soon as its last row has been
read: memory holds one batch plus the series being assembled, never the table. A shard
of series is a row range of that table (`ParquetSeries.rows`): only the row groups that
overlap it are read.
`FrameSeries` does the same over an in-memory frame (tests, small data).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqcast.config import PipelineConfig
from seqcast.errors import DataContractError
from seqcast.frequency import TIME_UNIT
from seqcast.io import storage
from seqcast.records import ShardRef
from seqcast.windows.grid import SeriesRows

_READ_BUFFER = 1 << 20
TEST_MARKER = "_source_test"
"""`seqcast.data.ingest.SOURCE_TEST`, spelled here: the window stage never imports ingest."""


@dataclass(frozen=True)
class ColumnRoles:
    """Which columns of the validated table the window step reads, by role."""

    series: str
    timestamp: str
    inputs: list[str]
    label: str | None
    future: list[str]
    static: list[str]
    split: str | None = None
    """The split column (``split.by: column``)."""
    test_marker: str | None = None
    """The column marking rows of ``source.test_path`` (`seqcast.data.ingest.SOURCE_TEST`)."""

    def columns(self, light: bool = False) -> list[str]:
        """Columns to read; ``light``: series, timestamp, label and split column (a survey
        pass: the split of series is drawn within classes)."""
        label = [self.label] if self.label else []
        split = [c for c in (self.split, self.test_marker) if c]
        if light:
            return [self.series, self.timestamp, *label, *split]
        return [
            self.series,
            self.timestamp,
            *self.inputs,
            *label,
            *self.future,
            *self.static,
            *split,
        ]


def column_roles(config: PipelineConfig, series_column: str) -> ColumnRoles:
    source = config.source
    classify = config.task == "classify"
    return ColumnRoles(
        series=series_column,
        timestamp=source.timestamp,
        inputs=list(source.features) if classify else source.value_columns,
        label=source.target[0] if classify else None,
        future=list(source.future_features),
        static=list(source.static_features),
        split=config.split.column,
        test_marker=TEST_MARKER if config.source.test_path else None,
    )


def _matrix(columns: dict[str, np.ndarray], names: list[str], rows: int) -> np.ndarray:
    if not names:
        return np.zeros((rows, 0), np.float64)
    return np.column_stack([columns[n].astype(np.float64, copy=False) for n in names])


def series_rows(series: str, columns: dict[str, np.ndarray], roles: ColumnRoles) -> SeriesRows:
    """Arrange one series' column arrays by role (columns absent in a light read are empty)."""
    stamps = columns[roles.timestamp]
    n = len(stamps)
    return SeriesRows(
        series=series,
        stamps=stamps,
        values=_matrix(columns, [c for c in roles.inputs if c in columns], n),
        labels=columns[roles.label] if roles.label and roles.label in columns else None,
        future=_matrix(columns, [c for c in roles.future if c in columns], n),
        static=_matrix(columns, [c for c in roles.static if c in columns], n),
        split=columns[roles.split] if roles.split and roles.split in columns else None,
        from_test=(
            columns[roles.test_marker]
            if roles.test_marker and roles.test_marker in columns
            else None
        ),
    )


def _arrow_to_numpy(array: pa.ChunkedArray | pa.Array, timestamp: bool) -> np.ndarray:
    if timestamp:
        return array.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array.to_numpy(zero_copy_only=False).astype(object)
    return array.to_numpy(zero_copy_only=False)


class _Assembler:
    """Cuts a stream of column batches into whole series; checks each series is contiguous."""

    def __init__(self, roles: ColumnRoles, where: str) -> None:
        self.roles = roles
        self.where = where
        self.pending: list[dict[str, np.ndarray]] = []
        self.pending_id: str | None = None
        self.seen: set[str] = set()

    def _finish(self) -> SeriesRows | None:
        if self.pending_id is None:
            return None
        parts = self.pending
        columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        series = self.pending_id
        self.pending, self.pending_id = [], None
        return series_rows(series, columns, self.roles)

    def add(self, columns: dict[str, np.ndarray]) -> Iterator[SeriesRows]:
        ids = columns[self.roles.series]
        if len(ids) == 0:
            return
        cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(ids)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            series = str(ids[lo])
            if series != self.pending_id:
                finished = self._finish()
                if finished is not None:
                    yield finished
                if series in self.seen:
                    raise DataContractError(
                        f"{self.where}: the rows of series {series!r} are not contiguous; the "
                        f"validated table must be sorted by ({self.roles.series}, "
                        f"{self.roles.timestamp})."
                    )
                self.seen.add(series)
                self.pending_id = series
            self.pending.append({k: v[lo:hi] for k, v in columns.items()})

    def close(self) -> Iterator[SeriesRows]:
        finished = self._finish()
        if finished is not None:
            yield finished


def row_range_batches(
    table: pq.ParquetFile, lo: int, hi: int, columns: list[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of rows ``[lo, hi)``: only the row groups that overlap them, trimmed."""
    groups, position, start = [], 0, -1
    for group in range(table.metadata.num_row_groups):
        size = table.metadata.row_group(group).num_rows
        if position < hi and position + size > lo:
            groups.append(group)
            start = position if start < 0 else start
        position += size
    if not groups:
        return
    for batch in table.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns):
        begin, end = max(lo - start, 0), min(hi - start, batch.num_rows)
        if end > begin:
            yield batch.slice(begin, end - begin)
        start += batch.num_rows


def read_rows(uri: str, first: int, count: int, columns: list[str] | None = None) -> pa.Table:
    """Rows ``[first, first + count)`` of a Parquet file, reading only their row groups."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        table = pq.ParquetFile(handle, pre_buffer=False, buffer_size=_READ_BUFFER)
        batches = list(row_range_batches(table, first, first + count, columns, 65_536))
        if not batches:
            return table.schema_arrow.empty_table()
        return pa.Table.from_batches(batches)


def series_row_counts(uri: str, series_column: str) -> list[int]:
    """Rows of each series of a table sorted by series, in table order (reads one column).

    Run boundaries are found by Arrow's vectorised compare: no Python object per row.
    """
    fs, path = storage.filesystem(uri)
    counts: list[int] = []
    last = None
    with fs.open(path, "rb") as handle:
        table = pq.ParquetFile(handle, pre_buffer=False, buffer_size=_READ_BUFFER)
        for batch in table.iter_batches(batch_size=65_536, columns=[series_column]):
            ids = batch.column(0).cast(pa.string())
            n = len(ids)
            if n == 0:
                continue
            changed = pc.not_equal(ids.slice(1), ids.slice(0, n - 1))
            starts = np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1
            lengths = np.diff([0, *starts.tolist(), n]).tolist()
            if counts and ids[0].as_py() == last:
                counts[-1] += lengths.pop(0)
            counts.extend(lengths)
            last = ids[n - 1].as_py()
    return counts


def make_shards(rows: list[int], series_per_shard: int) -> list[ShardRef]:
    """Contiguous shards of ``series_per_shard`` series, from each series' row count.

    A shard is a row range of the sorted table, so a task reads only its own row groups;
    it depends on the data and the shard size only, never on where the shards run.
    """
    if series_per_shard <= 0:
        raise ValueError(
            f"`series_per_shard` must be positive. Received: series_per_shard={series_per_shard}"
        )
    shards, first = [], 0
    for number, lo in enumerate(range(0, len(rows), series_per_shard)):
        counts = rows[lo : lo + series_per_shard]
        shards.append(
            ShardRef(number=number, first_row=first, rows=sum(counts), series=len(counts))
        )
        first += sum(counts)
    return shards


class ParquetSeries:
    """Re-iterable source of the series of a sorted Parquet table, read in bounded batches."""

    def __init__(self, uri: str, roles: ColumnRoles, batch_rows: int = 65_536) -> None:
        if batch_rows <= 0:
            raise ValueError(f"`batch_rows` must be positive. Received: batch_rows={batch_rows}")
        self.uri = uri
        self.roles = roles
        self.batch_rows = batch_rows
        self.row_range: tuple[int, int] | None = None

    def rows(self, first: int, count: int) -> ParquetSeries:
        """The same source limited to table rows ``[first, first + count)`` (whole series)."""
        if first < 0 or count < 0:
            raise ValueError(
                f"`first` and `count` must not be negative. Received: first={first}, count={count}"
            )
        limited = copy.copy(self)
        limited.row_range = (first, first + count)
        return limited

    @property
    def time_unit(self) -> str | None:
        """``year``/``step`` if validation read the time column as integers, else None."""
        fs, path = storage.filesystem(self.uri)
        with fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).schema_arrow.metadata or {}
        unit = metadata.get(TIME_UNIT.encode())
        return unit.decode() if unit else None

    def _batches(self, table: pq.ParquetFile, names: list[str]) -> Iterator[pa.RecordBatch]:
        if self.row_range is None:
            yield from table.iter_batches(batch_size=self.batch_rows, columns=names)
        else:
            yield from row_range_batches(table, *self.row_range, names, self.batch_rows)

    def __call__(self, light: bool = False) -> Iterator[SeriesRows]:
        names = self.roles.columns(light)
        assembler = _Assembler(self.roles, self.uri)
        fs, path = storage.filesystem(self.uri)
        with fs.open(path, "rb") as handle:
            # No pre-buffering: it would read many row groups ahead, so memory would grow
            # with the file; 1 MiB buffered reads keep it to one batch.
            table = pq.ParquetFile(handle, pre_buffer=False, buffer_size=_READ_BUFFER)
            missing = sorted(set(names) - set(table.schema_arrow.names))
            if missing:
                raise DataContractError(
                    f"{self.uri} lacks the column(s) {missing} that the window step reads; "
                    f"check source.* in the config against the validated table."
                )
            for batch in self._batches(table, names):
                columns = {
                    name: _arrow_to_numpy(batch.column(name), name == self.roles.timestamp)
                    for name in names
                }
                yield from assembler.add(columns)
        yield from assembler.close()


class FrameSeries:
    """Re-iterable source of the series of an in-memory frame (sorted here by series, time)."""

    def __init__(self, frame: pd.DataFrame, roles: ColumnRoles) -> None:
        self.frame = frame.sort_values([roles.series, roles.timestamp], kind="stable")
        self.roles = roles
        self.time_unit: str | None = frame.attrs.get(TIME_UNIT)

    def __call__(self, light: bool = False) -> Iterator[SeriesRows]:
        names = self.roles.columns(light)
        stamps = pd.to_datetime(self.frame[self.roles.timestamp], utc=True)
        ns = pd.DatetimeIndex(stamps).as_unit("ns").asi8
        columns = {
            name: ns if name == self.roles.timestamp else self.frame[name].to_numpy()
            for name in names
        }
        columns[self.roles.series] = self.frame[self.roles.series].astype(str).to_numpy(object)
        assembler = _Assembler(self.roles, "frame")
        yield from assembler.add(columns)
        yield from assembler.close()
