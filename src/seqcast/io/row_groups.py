"""A Parquet file written batch by batch, published only when it is complete.

For outputs too large to hold as one table (the raw snapshot of a large source, issue 18):
batches of any size go in, row groups of a fixed size come out, the way
`storage.write_parquet` lays out one table, so a reader sees the same row groups whether
the file was written whole or streamed. Memory holds one row group and the batch being
added, never the file.

Atomic like `storage.atomic_writer`: on a local disk the file is written under a temporary
name and renamed; on an object store it is written to a local temporary file first and
uploaded in one call after the block succeeds (not assembled in memory, as
`storage.atomic_writer` does for small files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from seqcast.io import storage

ROW_GROUP_ROWS = 64_000
"""`storage.write_parquet`'s row group size."""
READ_BUFFER = 1 << 20
"""Bytes read at a time by `streamed`."""


def streamed(handle: BinaryIO) -> pq.ParquetFile:
    """A Parquet file to read batch by batch in bounded memory.

    Without ``pre_buffer=False``, pyarrow keeps the pre-buffered column chunks of every
    row group `ParquetFile.iter_batches` has passed until the reader is closed: reading a
    10-million-row snapshot so grew the process by 160 MiB (about 1 MiB per 64,000-row
    group), so memory followed the file, not the batch (issue 18).
    """
    return pq.ParquetFile(handle, pre_buffer=False, buffer_size=READ_BUFFER)


class RowGroupWriter:
    """Collects tables and writes them as row groups of ``row_group_rows`` rows each (the
    last one may be shorter), whatever the sizes of the tables written."""

    def __init__(self, writer: pq.ParquetWriter, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        if row_group_rows < 1:
            raise ValueError(
                "`row_group_rows` must be a positive integer. "
                f"Received: row_group_rows={row_group_rows}"
            )
        self._writer = writer
        self._size = row_group_rows
        self._held: list[pa.Table] = []
        self._held_rows = 0
        self.rows = 0
        """Rows written so far (held ones included)."""

    def write(self, table: pa.Table) -> None:
        """Add ``table``'s rows; full row groups go to the file at once."""
        if table.num_rows == 0:
            return
        self._held.append(table)
        self._held_rows += table.num_rows
        self.rows += table.num_rows
        if self._held_rows < self._size:
            return
        held = pa.concat_tables(self._held)
        start = 0
        while held.num_rows - start >= self._size:
            self._write_group(held.slice(start, self._size))
            start += self._size
        rest = held.slice(start)
        self._held = [rest] if rest.num_rows else []
        self._held_rows = rest.num_rows

    def flush(self) -> None:
        """Write the rows held back (the last, shorter row group)."""
        if self._held_rows:
            self._write_group(pa.concat_tables(self._held))
        self._held, self._held_rows = [], 0

    def _write_group(self, table: pa.Table) -> None:
        # One chunk per column: the pages then fall as they would for a table written whole.
        self._writer.write_table(table.combine_chunks(), row_group_size=self._size)


@contextmanager
def parquet_writer(
    uri: str, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS
) -> Iterator[RowGroupWriter]:
    """A `RowGroupWriter` whose file replaces ``uri`` only if the block succeeds.

    ``schema`` (with its metadata, such as pandas') is the file's; every table written must
    have its fields. Compressed with zstd, like `storage.write_parquet`.

    Raises:
        StorageError: a local write failed for good (disk full, read-only, no permission).
    """
    with atomic_file(uri) as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        groups = RowGroupWriter(writer, row_group_rows)
        yield groups
        groups.flush()


@contextmanager
def atomic_file(uri: str) -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``uri`` only if the block succeeds, never held
    in memory: a temporary file renamed (local disk) or uploaded in one call (object store).
    """
    fs, path = storage.filesystem(uri)
    if storage.is_local(fs):
        with storage.atomic_writer(uri) as handle:
            yield handle
        return
    local, name = tempfile.mkstemp(prefix="seqcast-", suffix=".parquet")
    try:
        with os.fdopen(local, "wb") as handle:
            yield handle
        fs.put_file(name, path)
    finally:
        os.remove(name)


def copy_file(source: str, target: str) -> None:
    """Copy ``source`` to ``target`` through `atomic_file`, `READ_BUFFER` bytes at a time: a
    file that grows with the data (a run's test forecasts, copied into a registered
    version) is never held in memory."""
    fs, path = storage.filesystem(source)
    with fs.open(path, "rb") as reader, atomic_file(target) as writer:
        shutil.copyfileobj(reader, writer, READ_BUFFER)
