"""A second process, started with the command, for the steps that need no TensorFlow.

On a small series `seqcast train` spent 3.5 s in the validate-shard task, 2.3 s of it
importing Great Expectations, then 2.6 s importing TensorFlow for the train step and 0.6 s
importing statsmodels for the ETS fits: one after the other on one of two cores, since an
import holds the GIL (two threads importing GX and TensorFlow gained nothing;
benchmarks/README.md, "Start-up"). So `seqcast train`, `validate` and `predict` on the
thread runner call `start` first thing: this process imports GX (`IMPORTS`) on the other
core while the command imports Prefect and ingests. A snapshot of one shard is then checked
here (`run`, from the validate-shard task), and while it is, the command's own process
imports what its next steps need (``meanwhile``: Keras); then this process imports
statsmodels and fits the ETS challengers (`run`, from the fit-challengers task).

A snapshot of several shards is checked on the runner, as before: there the checks take
longer than the import, and they are the step whose memory issue 18 bounds; its plan stops
this process (`stop`) before they start, and the ETS fits run in the command's process.
Without `start` (flows run by a worker, Dask workers, tests) `run` calls the function here.

The process ends with the command: it is a daemon, which `multiprocessing` terminates at
exit, and a killed command takes it along (`seqcast.lifetime`: the kernel's parent-death
signal, so a check in progress writes no part after its command is gone; start it from the
main thread). If it dies, the work runs in the command's process instead.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from seqcast.errors import SeqcastError
from seqcast.lifetime import parent_death_hook

R = TypeVar("R")

IMPORTS = (
    "great_expectations",
    "statsmodels.tsa.exponential_smoothing.ets",
    "statsmodels.tsa.ar_model",
)
"""What this process imports so that the command need not: GX at once, statsmodels (for
the ETS and AR fits) once the first call is answered and nothing waits."""

logger = logging.getLogger(__name__)


class _Helper:
    """The process and the command's end of its pipe; one call at a time."""

    def __init__(self, meanwhile: Sequence[str]) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads forked
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, os.getpid()), name="seqcast-side", daemon=True
        )
        self.process.start()
        child.close()
        self.meanwhile = tuple(meanwhile)
        self.lock = threading.Lock()

    def call(self, function: Callable[..., R], args: tuple[Any, ...]) -> R:
        """``function(*args)`` there; its exception raised here. While it runs, import
        ``meanwhile`` here. Raises EOFError or OSError when the process is gone."""
        with self.lock:
            self.connection.send((function, args))
            try:
                for module in self.meanwhile:
                    importlib.import_module(module)
            finally:  # the reply is read even if an import failed: the next call's is its own
                done, value = self.connection.recv()
        if done:
            return value
        raise value

    def stop(self) -> None:
        self.connection.close()  # the process sees the end of its pipe and returns
        self.process.join(timeout=0.5)
        if self.process.is_alive():
            self.process.terminate()


_helper: _Helper | None = None


def start(meanwhile: Sequence[str] = ()) -> None:
    """Start the process (it imports GX at once); ``meanwhile``: modules this process
    imports while a shard is checked there. A no-op once started."""
    global _helper
    if _helper is None:
        _helper = _Helper(meanwhile)


def stop() -> None:
    """Stop the process, if started (its memory is not needed: checks run on the runner)."""
    global _helper
    if _helper is not None:
        _helper.stop()
        _helper = None


def run(function: Callable[..., R], *args: Any) -> R:
    """``function(*args)`` in the process if one was started, else here; ``function``
    and its arguments must pickle (a module-level function, records)."""
    if _helper is None:
        return function(*args)
    try:
        return _helper.call(function, args)
    except (EOFError, OSError):  # it died (killed, out of memory): check here instead
        logger.warning("The side process ended unexpectedly; running its work in this one")
        stop()
        return function(*args)


def _serve(connection: Connection, command: int) -> None:
    """The process: die with ``command`` (its pid), import GX, then run each call that
    arrives until the pipe closes, importing the rest of `IMPORTS` while no call waits."""
    parent_death_hook(signal.SIGKILL, parent=command)()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
    first, *later = IMPORTS
    importlib.import_module(first)  # the seconds this process exists to spend
    from tqdm import tqdm

    # tqdm's default lock (GX makes bars, even hidden ones) is a multiprocessing semaphore,
    # which this process, terminated at the command's exit, would leak with a warning.
    tqdm.set_lock(threading.RLock())

    while True:
        while later and not connection.poll():
            importlib.import_module(later.pop(0))
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, function(*args))
        except Exception as exc:  # noqa: BLE001 - sent back, raised in the command
            reply = (False, _portable(exc))
        try:
            connection.send(reply)
        except (OSError, ValueError):  # the command is gone
            return


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (seqcast's errors do), else its text as a
    `SeqcastError`, so that the command reports what went wrong, not a pickling error."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return SeqcastError(f"{type(exc).__name__}: {exc}")
    return exc
