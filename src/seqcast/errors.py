"""Pipeline failures users can act on. Bad arguments use the built-in exceptions instead.

Tasks do not retry these (see `tasks/common.py`): retrying a broken contract or config
cannot succeed, so only transient faults (I/O, network, a stalled source: the errors
marked ``transient``) are retried.
"""

from __future__ import annotations

import errno


class SeqcastError(Exception):
    """A pipeline failure whose message says what went wrong and what to do."""

    transient = False
    """True for the few that a retry moments later may not meet (a stalled source)."""


class ConfigError(SeqcastError):
    """The config, a parameter or an override is invalid."""


class SourceError(SeqcastError):
    """The source data cannot be found or read."""


class SourceTimeoutError(SourceError):
    """The source did not answer within ``source.read_timeout_seconds``: a FIFO with no
    writer, a hung network mount or object store. Transient: the step retries it."""

    transient = True


class DataContractError(SeqcastError):
    """The data breaks its contract; the message names file, column, rule and rows."""


class RegistryError(SeqcastError):
    """The model registry has no usable model, or a stored model fails its checks."""


class StorageError(SeqcastError):
    """Storage refused a write for good (disk full, read-only, no permission); the message
    names the path and the cause. Not retried: the next attempt would fail the same way."""


PERMANENT_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
"""OS errors a retry seconds later cannot fix, with the words a user recognises."""


def permanent_os_error(exc: BaseException) -> OSError | None:
    """The OSError of `PERMANENT_OS_ERRORS` that ``exc`` is or was raised from, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in PERMANENT_OS_ERRORS:
            return current
        current = current.__cause__ or current.__context__
    return None


def storage_error(exc: OSError, uri: str) -> StorageError:
    """A `StorageError` for a permanent ``exc`` while writing ``uri``: path, cause, fix."""
    cause = PERMANENT_OS_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in uri else ""
    return StorageError(
        f"cannot write {uri}{where}: {cause} [errno {exc.errno}]. Free space or fix the "
        "permissions there, or point `data_root` at a writable place; not retried, as "
        "retrying cannot help"
    )
