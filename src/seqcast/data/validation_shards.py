"""Shards of whole series for validation, cut from a raw snapshot in two streamed passes.

Validation's series rules (order, frequency, gaps, length, freshness) and the unique key
need every row of a series together, but a snapshot lays its rows out as the source files
did: one series may be spread over several files, and one file may hold many series. So:

1. `plan_shards` reads only the series column, row group by row group, and counts each
   series' rows (memory: one entry per series). Sorted by name, the series are cut into
   contiguous ranges of about ``rows_per_shard`` rows (a longer series is a shard alone).
2. `write_shards` reads the snapshot once more and appends each row to its shard's file,
   with the row's place in the snapshot (`POSITION`), so each shard's examples and
   quarantined rows sort back into one whole-table run's order. Rows held in memory stay
   under `HELD_ROWS` over all shards, whatever their number.

A snapshot that fits one shard is not copied: its one shard reads the snapshot itself. Nor
is one whose series already lie together in name order (a source sorted by series, the
common case, however many files): pass 1 sees it, and each shard reads its range of rows
from the snapshot (`read_shard`), which saves pass 2's read and write of every row (about
two thirds of the 3.2 s per million rows the two passes took, issue 18).
Shards are contiguous in name order, so their clean tables, each sorted by series and
time, concatenate into the one table a whole-table run writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqcast.data.findings import POSITION
from seqcast.data.parsing import parse_text
from seqcast.data.source_batches import SOURCE_FILE
from seqcast.io import row_groups, storage
from seqcast.records import ValidationShardRef

BATCH_ROWS = 64_000
"""Rows read from the snapshot at a time."""
HELD_ROWS = 128_000
"""Rows held in memory over all shard files being written (their row groups shrink as
the number of shards grows, so memory does not)."""


@contextmanager
def _parquet(uri: str) -> Iterator[pq.ParquetFile]:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        yield row_groups.streamed(handle)


def series_names(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """A raw series column's names as validation reads them (`parse_text`: stripped text,
    blank as null), so a shard holds every row its series has after parsing."""
    return parse_text(pd.Series(values.to_pandas(), dtype=object)).values


@dataclass(frozen=True)
class ShardPlan:
    """Pass 1's result: the series names of each shard, in name order, and, when every
    series' rows already lie together in the snapshot in name order, where each shard's
    rows start in it (so pass 2 need not copy them)."""

    names: list[list[str]]
    first_rows: list[int] | None = None
    files_with_rows: frozenset[str] = frozenset()
    """Source files rows came from, read in pass 1 when the copy is skipped."""


class _RunOrder:
    """Whether a column of series names, fed batch by batch, is one run per series in
    ascending name order (as a source sorted by series gives, however many files)."""

    def __init__(self) -> None:
        self.ordered = True
        self._last: str | None = None

    def feed(self, names: pd.Series) -> None:
        if not self.ordered or not len(names):
            return
        if names.isna().any():  # rows without a series go to shard 0: they must be copied
            self.ordered = False
            return
        values = names.to_numpy(dtype=object)
        starts = np.flatnonzero(values[1:] != values[:-1]) + 1
        runs = [values[0], *values[starts]]
        if self._last is not None and runs[0] == self._last:
            runs = runs[1:]  # the run of the previous batch goes on
        previous = self._last
        for name in runs:
            if previous is not None and not name > previous:
                self.ordered = False
                return
            previous = name
        self._last = values[-1]


def plan_shards(uri: str, series_id: str | None, rows_per_shard: int) -> ShardPlan:
    """Pass 1: the series names of each shard, in name order (one shard when the
    snapshot has no series column, or fits one shard), and where each shard's rows start
    when the snapshot already holds them together (`ShardPlan`)."""
    counts: Counter[str] = Counter()
    order = _RunOrder()
    files: set[str] = set()
    with _parquet(uri) as parquet:
        total = parquet.metadata.num_rows
        columns = parquet.schema_arrow.names
        if not series_id or series_id not in columns or total <= rows_per_shard:
            return ShardPlan([[]])
        read = [series_id, *([SOURCE_FILE] if SOURCE_FILE in columns else [])]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=read):
            names = series_names(batch.column(0))
            order.feed(names)
            if order.ordered and len(read) > 1:
                files.update(pc.unique(batch.column(1)).to_pylist())
            names = names.dropna()
            counts.update(names.value_counts(sort=False).to_dict())
    shards: list[list[str]] = [[]]
    held = 0
    for name in sorted(counts):
        if held and held + counts[name] > rows_per_shard:
            shards.append([])
            held = 0
        shards[-1].append(name)
        held += counts[name]
    if not order.ordered:
        return ShardPlan(shards)
    sizes = [sum(counts[name] for name in names) for names in shards]
    first_rows = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    return ShardPlan(shards, first_rows, frozenset(files))


def write_shards(
    uri: str, series_id: str | None, plan: ShardPlan, work: str
) -> tuple[list[ValidationShardRef], set[str]]:
    """Pass 2: each shard's rows (with `POSITION`) to ``{work}/shard-{k}.parquet``; rows
    with no series name go to shard 0. One shard: the snapshot itself, not copied; several
    shards whose rows the snapshot already holds together (``plan.first_rows``): ranges of
    the snapshot, not copied either (`read_shard`).

    Returns:
        The shards, and the source file names rows came from (several shards only: one
        shard checks its files itself).
    """
    shards = plan.names
    if len(shards) == 1:
        with _parquet(uri) as parquet:
            rows = parquet.metadata.num_rows
        return [ValidationShardRef(number=0, uri=uri, rows=rows, series=len(shards[0]))], set()
    if plan.first_rows is not None:
        with _parquet(uri) as parquet:
            total = parquet.metadata.num_rows
        ends = [*plan.first_rows[1:], total]
        refs = [
            ValidationShardRef(
                number=k, uri=uri, rows=end - first, series=len(shards[k]), first_row=first
            )
            for k, (first, end) in enumerate(zip(plan.first_rows, ends, strict=True))
        ]
        return refs, set(plan.files_with_rows)
    present: set[str] = set()
    shard_of = {name: k for k, names in enumerate(shards) for name in names}
    uris = [storage.join(work, f"shard-{k:05d}.parquet") for k in range(len(shards))]
    rows_written = [0] * len(shards)
    group_rows = max(1_000, min(row_groups.ROW_GROUP_ROWS, HELD_ROWS // len(shards)))
    start = 0
    with ExitStack() as stack:
        parquet = stack.enter_context(_parquet(uri))
        schema = parquet.schema_arrow.append(pa.field(POSITION, pa.int64()))
        writers = [
            stack.enter_context(row_groups.parquet_writer(u, schema, group_rows)) for u in uris
        ]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            table = pa.Table.from_batches([batch]).append_column(
                POSITION, pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64))
            )
            start += batch.num_rows
            if SOURCE_FILE in table.column_names:
                present.update(pc.unique(table.column(SOURCE_FILE)).to_pylist())
            names = series_names(table.column(series_id or ""))
            owner = names.map(shard_of).fillna(0).to_numpy(np.int64)
            order = np.argsort(owner, kind="stable")
            bounds = np.searchsorted(owner[order], np.arange(len(shards) + 1))
            for k in range(len(shards)):
                if bounds[k + 1] > bounds[k]:
                    writers[k].write(table.take(order[bounds[k] : bounds[k + 1]]))
                    rows_written[k] += int(bounds[k + 1] - bounds[k])
    refs = [
        ValidationShardRef(number=k, uri=uris[k], rows=rows_written[k], series=len(shards[k]))
        for k in range(len(shards))
    ]
    return refs, present


def read_shard(shard: ValidationShardRef) -> pd.DataFrame:
    """A shard's rows as the check reads them: its file, or its range of the snapshot with
    each row's snapshot position (`POSITION`), as a copied shard has it."""
    if shard.first_row is None:
        return storage.read_parquet(shard.uri).to_pandas()
    first, end = shard.first_row, shard.first_row + shard.rows
    with _parquet(shard.uri) as parquet:
        groups, starts, start = [], [], 0
        for number in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(number).num_rows
            if start < end and start + rows > first:
                groups.append(number)
                starts.append(start)
            start += rows
        table = parquet.read_row_groups(groups).slice(first - starts[0], shard.rows)
    position = pa.array(np.arange(first, end, dtype=np.int64))
    return table.append_column(POSITION, position).to_pandas()
