"""One source file as batches of text rows, each row with the file and line it came from.

Ingest reads a file batch by batch so that its memory follows the batch, not the file
(issue 18). A batch is exactly the slice of rows the whole-file read gave: the same columns,
text values and line numbers, so the raw snapshot does not change with the batch size.

CSV goes through pandas' chunked reader, not pyarrow's streaming one: it is the C tokenizer
the whole-file read used, so a repeated header (``a.1``), a blank one (``Unnamed: 2``), a
short row (missing values), a header shorter than its rows (the first column becomes the
index) and the error for a ragged row (``Expected 4 fields in line 5, saw 5``, counted over
the whole file) stay as they were; pyarrow's reader differs on each (it is about 5x faster).
The bytes come through `timed_reads` (every 1 MiB chunk within ``source.read_timeout_seconds``),
are decompressed when the name ends in ``.gz``, and are checked to be UTF-8 on their way to
the tokenizer, so a bad byte is still named by line and offset. Parquet goes through
`pyarrow.parquet.ParquetFile.iter_batches` over a `timed_reads.TimedFile`.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import zlib
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast.data import parsing, timed_reads
from seqcast.errors import SourceError

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
BATCH_ROWS = 64_000
"""Rows per batch: a few MB of text per batch for a table of a few columns."""
_PARQUET_BUFFER = 1 << 20
"""Parquet column chunks are read through a buffer of this size, not whole."""


def iter_batches(
    uri: str, timeout: float, batch_rows: int = BATCH_ROWS
) -> Generator[pd.DataFrame, None, None]:
    """The rows of one CSV or Parquet file as text, ``batch_rows`` at a time, in file order.

    Each frame has the file's columns (every value as the text it was written as; a Parquet
    value as the text a CSV would hold), then `SOURCE_FILE` (the file name) and `SOURCE_LINE`
    (line 2 onwards for CSV, whose line 1 is the header; row 1 onwards for Parquet, counted
    over the whole file, not the batch). The first frame may be empty and always comes: a
    header-only file gives its columns and no rows, a blank file only the two source columns.

    Raises:
        ValueError: ``batch_rows`` is not a positive integer.
        SourceError: the file is not UTF-8, not well-formed CSV, not readable gzip or Parquet;
            the message names the file (and the line where known). It may come after some
            batches: a fault near the end of a file is found when the read gets there.
        SourceTimeoutError: opening it or reading a chunk took over ``timeout`` seconds.
    """
    if batch_rows < 1:
        raise ValueError(
            f"`batch_rows` must be a positive integer. Received: batch_rows={batch_rows}"
        )
    name = uri.rsplit("/", 1)[-1]
    parquet = uri.lower().endswith((".parquet", ".pq"))
    frames = (
        _parquet_frames(uri, timeout, batch_rows)
        if parquet
        else _csv_frames(uri, timeout, batch_rows)
    )
    line = 1 if parquet else 2  # Parquet has no header line: rows count from 1
    first = True
    for frame in frames:
        frame[SOURCE_FILE] = pd.Series([name] * len(frame), index=frame.index, dtype="str")
        frame[SOURCE_LINE] = np.arange(line, line + len(frame), dtype=np.int64)
        line += len(frame)
        first = False
        yield frame
    if first:  # a blank CSV file: no header, no rows
        frame = pd.DataFrame()
        frame[SOURCE_FILE] = pd.Series([], index=frame.index, dtype="str")
        frame[SOURCE_LINE] = np.arange(line, line, dtype=np.int64)
        yield frame


def file_columns(uri: str, timeout: float) -> list[str]:
    """The columns `iter_batches` gives for ``uri`` (source columns included), reading as
    little of the file as it can: a CSV file's first row, a Parquet file's footer."""
    if uri.lower().endswith((".parquet", ".pq")):
        with _open_parquet(uri, timeout) as handle:
            try:
                empty = pq.ParquetFile(handle).schema_arrow.empty_table().to_pandas()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
                raise _not_parquet(uri, exc) from exc
        return [*empty.columns, SOURCE_FILE, SOURCE_LINE]
    batches = iter_batches(uri, timeout, batch_rows=1)
    try:
        return list(next(batches).columns)
    finally:
        batches.close()


# ---- CSV ---------------------------------------------------------------------------------


def _csv_frames(uri: str, timeout: float, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Every value as the text it was written as; blank stays blank (``""``), CRLF is fine.

    No type is guessed here: a number that arrived as ``"12,5"`` stays that text, so the
    validate step can report it with its line instead of a reader coercing it.
    """
    chunks = _source_chunks(uri, timeout)
    if uri.lower().endswith(".gz"):
        chunks = _gunzipped(chunks, uri)
    content = _unless_blank(_utf8(chunks, uri))
    if content is None:
        return
    try:
        with pd.read_csv(
            _ChunkReader(content),
            chunksize=batch_rows,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
        ) as reader:
            yield from reader
    except pd.errors.ParserError as exc:
        raise SourceError(f"{uri} is not a well-formed CSV file: {exc}") from exc


def _source_chunks(uri: str, timeout: float) -> Iterator[bytes]:
    try:
        yield from timed_reads.chunks(uri, timeout)
    except OSError as exc:
        raise SourceError(f"{uri} cannot be read: {exc}") from exc


def _gunzipped(chunks: Iterable[bytes], uri: str) -> Iterator[bytes]:
    """The decompressed bytes, 1 MiB at a time (several gzip members are read as one)."""
    stream = gzip.GzipFile(fileobj=_ChunkReader(chunks), mode="rb")
    try:
        while data := stream.read(timed_reads.CHUNK):
            yield data
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{uri} is not a readable gzip file: {exc}") from exc


def _utf8(chunks: Iterable[bytes], uri: str) -> Iterator[bytes]:
    """The bytes, checked to be UTF-8 on their way, without a leading byte-order mark.

    A byte that is not UTF-8 stops the read with the line and the offset (after any
    byte-order mark, as Python's ``utf-8-sig`` codec counts it) where it was found.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0  # bytes and newlines handed to the decoder so far
    head: bytes | None = b""  # the first bytes, until we know whether they are a BOM

    def check(data: bytes, final: bool = False) -> None:
        nonlocal offset, lines
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            held = decoder.getstate()[0]  # the tail of an earlier chunk: part of a character
            seen = held + data
            line = lines + seen[: exc.start].count(b"\n") + 1
            raise SourceError(
                f"{uri} is not UTF-8 text: byte 0x{seen[exc.start : exc.start + 1].hex()} at "
                f"line {line} (byte offset {offset - len(held) + exc.start}) cannot be decoded."
                " Re-export the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
            ) from exc
        offset += len(data)
        lines += data.count(b"\n")

    for chunk in chunks:
        if head is not None:
            head += chunk
            if len(head) < len(codecs.BOM_UTF8):
                continue
            chunk = head.removeprefix(codecs.BOM_UTF8)
            head = None
        check(chunk)
        if chunk:
            yield chunk
    if head:  # fewer bytes in all than a BOM
        check(head)
        yield head
    check(b"", final=True)


def _unless_blank(chunks: Iterator[bytes]) -> Iterator[bytes] | None:
    """``chunks`` again, or None when they hold nothing but whitespace: a blank file has no
    header, so it has no columns and no rows (pandas would refuse it)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    held: list[bytes] = []
    for chunk in chunks:
        held.append(chunk)
        text = decoder.decode(chunk)
        if text and not text.isspace():
            return itertools.chain(held, chunks)
    return None


class _ChunkReader(io.RawIOBase):
    """A readable binary file over an iterator of byte chunks (what pandas and gzip read)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


# ---- Parquet -----------------------------------------------------------------------------


def _open_parquet(uri: str, timeout: float) -> timed_reads.TimedFile:
    try:
        return timed_reads.TimedFile(uri, timeout)
    except OSError as exc:
        raise SourceError(f"{uri} cannot be read: {exc}") from exc


def _not_parquet(uri: str, exc: Exception) -> SourceError:
    return SourceError(
        f"{uri} is not a readable Parquet file (truncated or corrupt?): {exc}. "
        "Re-export it; the snapshot keeps the files read so far."
    )


def _parquet_frames(uri: str, timeout: float, batch_rows: int) -> Iterator[pd.DataFrame]:
    """A typed (Parquet) file as text, like a CSV: ISO 8601 timestamps, exact floats."""
    with _open_parquet(uri, timeout) as handle:
        try:
            parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
            widen = _integers_with_nulls(parquet)
            empty = True
            for batch in parquet.iter_batches(batch_size=batch_rows):
                empty = False
                yield _as_text(batch.to_pandas(), widen)
            if empty:
                yield _as_text(parquet.schema_arrow.empty_table().to_pandas(), widen)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise _not_parquet(uri, exc) from exc


def _integers_with_nulls(parquet: pq.ParquetFile) -> set[str]:
    """Integer columns with a null anywhere in the file.

    pandas holds such a column as floats, so the whole-file read wrote ``1.0`` for each of
    its values; a batch without a null would come out as ints (``1``). Every batch of these
    columns is made float, so the text does not depend on where the batches fall. The row
    groups' null counts answer without reading data; a file without them is scanned, one
    such column at a time.
    """
    metadata = parquet.metadata
    leaves = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    found = set()
    for field in parquet.schema_arrow:
        if not pa.types.is_integer(field.type) or field.name not in leaves:
            continue
        column = leaves[field.name]
        stats = [
            metadata.row_group(g).column(column).statistics for g in range(metadata.num_row_groups)
        ]
        if all(s is not None and s.has_null_count for s in stats):
            nulls = sum(s.null_count for s in stats)
        else:
            nulls = sum(b.column(0).null_count for b in parquet.iter_batches(columns=[field.name]))
        if nulls:
            found.add(field.name)
    return found


def _as_text(frame: pd.DataFrame, widen: set[str]) -> pd.DataFrame:
    columns = {}
    for column in frame.columns:
        values = frame[column]
        if column in widen and isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
            values = values.astype(np.float64)
        columns[column] = parsing.as_text(values)
    return pd.DataFrame(columns, index=frame.index)
