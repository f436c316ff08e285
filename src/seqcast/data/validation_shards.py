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

A snapshot that fits one shard is not copied: its one shard reads the snapshot itself.
Shards are contiguous in name order, so their clean tables, each sorted by series and
time, concatenate into the one table a whole-table run writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

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


def plan_shards(uri: str, series_id: str | None, rows_per_shard: int) -> list[list[str]]:
    """Pass 1: the series names of each shard, in name order (one shard when the
    snapshot has no series column, or fits one shard)."""
    counts: Counter[str] = Counter()
    with _parquet(uri) as parquet:
        total = parquet.metadata.num_rows
        if not series_id or series_id not in parquet.schema_arrow.names or total <= rows_per_shard:
            return [[]]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[series_id]):
            names = series_names(batch.column(0)).dropna()
            counts.update(names.value_counts(sort=False).to_dict())
    shards: list[list[str]] = [[]]
    held = 0
    for name in sorted(counts):
        if held and held + counts[name] > rows_per_shard:
            shards.append([])
            held = 0
        shards[-1].append(name)
        held += counts[name]
    return shards


def write_shards(
    uri: str, series_id: str | None, shards: list[list[str]], work: str
) -> tuple[list[ValidationShardRef], set[str]]:
    """Pass 2: each shard's rows (with `POSITION`) to ``{work}/shard-{k}.parquet``; rows
    with no series name go to shard 0. One shard: the snapshot itself, not copied.

    Returns:
        The shards, and the source file names rows came from (several shards only: one
        shard checks its files itself).
    """
    if len(shards) == 1:
        with _parquet(uri) as parquet:
            rows = parquet.metadata.num_rows
        return [ValidationShardRef(number=0, uri=uri, rows=rows, series=len(shards[0]))], set()
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
