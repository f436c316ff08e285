"""Reads of the source that give up when the source stops answering.

A source can block a reader for good: opening a FIFO with no writer waits in the kernel,
and so do a stat or read on a hung network mount or a stalled object store (issue 13 #13).
No Python timeout interrupts such a call, so each one runs in a daemon worker thread and
the caller waits at most ``timeout`` seconds for it to answer: for the listing, the open
and each 1 MiB chunk (each read and seek of a `TimedFile`), so a large file that keeps
arriving, however slowly, is never cut off. A call that never returns leaves its worker
thread blocked until the process exits (a daemon thread: it keeps no process alive); a
retried step may leave one per attempt.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

from seqcast.errors import SourceTimeoutError
from seqcast.io import storage

T = TypeVar("T")

CHUNK = 1 << 20
_END = object()


def stalled(what: str, timeout: float) -> SourceTimeoutError:
    """The error for ``what`` (a file or a listing) that did not answer in ``timeout`` s."""
    return SourceTimeoutError(
        f"{what} did not answer within {timeout:g} s (source.read_timeout_seconds): the "
        "source is stalled (a FIFO no writer opens, a hung network mount or object store). "
        "The step retries it; if it keeps failing, check that the file is complete and its "
        "mount or store responds, or raise source.read_timeout_seconds for a slow source"
    )


def call_within(action: Callable[[], T], timeout: float, what: str) -> T:
    """``action()``, or `SourceTimeoutError` naming ``what`` after ``timeout`` seconds."""
    outcome: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            outcome.put((True, action()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            outcome.put((False, exc))

    threading.Thread(target=work, name=f"seqcast-source {what}", daemon=True).start()
    try:
        ok, value = outcome.get(timeout=timeout)
    except queue.Empty:
        raise stalled(what, timeout) from None
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def chunks(uri: str, timeout: float) -> Iterator[bytes]:
    """The bytes of ``uri`` in chunks of up to 1 MiB; the open and each chunk must come
    within ``timeout`` seconds, else `SourceTimeoutError` names the file."""
    ready: queue.Queue[object] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller gave up: stop reading

    def read() -> None:
        try:
            fs, path = storage.filesystem(uri)
            with fs.open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    if not hand_over(chunk):
                        return
            hand_over(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            hand_over(exc)

    threading.Thread(target=read, name=f"seqcast-read {uri}", daemon=True).start()
    try:
        while True:
            try:
                item = ready.get(timeout=timeout)
            except queue.Empty:
                raise stalled(uri, timeout) from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()


def read_bytes(uri: str, timeout: float) -> bytes:
    """The whole of ``uri``, each step within ``timeout`` seconds (see `chunks`)."""
    return b"".join(chunks(uri, timeout))


class TimedFile(io.RawIOBase):
    """``uri`` as a seekable binary file whose open, each read and each seek must answer
    within ``timeout`` seconds, else `SourceTimeoutError` names the file.

    For readers that jump around a file (a Parquet reader goes to the footer, then to each
    column chunk), where `chunks`' one forward pass does not fit. Each call runs in a worker
    thread of its own (`call_within`): reads are large (the reader's buffer), so that costs
    little.
    """

    def __init__(self, uri: str, timeout: float) -> None:
        super().__init__()
        self._uri = uri
        self._timeout = timeout

        def open_file() -> BinaryIO:
            fs, path = storage.filesystem(uri)
            return fs.open(path, "rb")

        self._handle = call_within(open_file, timeout, uri)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return call_within(lambda: self._handle.read(size), self._timeout, self._uri)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return call_within(lambda: self._handle.seek(offset, whence), self._timeout, self._uri)

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()
