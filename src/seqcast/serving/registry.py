"""A file-based model registry: immutable versions and an atomically swapped champion.

Layout under ``{pipeline_root}/registry/``::

    versions/{version}/model.keras, scaler.json, layout.json, metrics.json, manifest.json
                       (+ test_forecasts.parquet, profile.json; params.json instead of
                       model.keras for a statistical kind, neighbours.npz for a
                       nearest_neighbour one)
    champion.json      pointer to the champion version, replaced by compare-and-swap
    audit.jsonl        one line per promotion decision

A version's files are written under its final (unique) name and its ``manifest.json``
last: the manifest is the commit point, on a local disk and on an object store alike
(where renaming a directory would be a copy, not atomic). A directory without one is an
unfinished write that every reader ignores. The manifest holds the sha256 of every file
and is checked before a model is loaded.

A version has a ``kind`` (manifest field; versions from before kinds are "network"): a
trained network (model.keras) or a statistical predictor - ``ets``, ``ar``, ``seasonal_naive``,
``last_value`` - whose ``params.json`` (season, per-series ETS or AR fits) is all it needs to
forecast from each series' history, or a whole-sequence classifier's 1-NN
(``nearest_neighbour``) whose ``neighbours.npz`` holds its scaled, resampled training
sequences and their class ids (`seqcast.modeling.nearest.Neighbours`). Every kind goes through
the same checks, promotion and rollback, so the champion can be whichever predictor won.

The champion pointer changes only through `seqcast.io.cas.swap`, so two promotions can
never both win (see `seqcast.io.cas` for how on each kind of store).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seqcast import __version__
from seqcast.errors import RegistryError
from seqcast.io import cas, row_groups, storage
from seqcast.modeling.gate import KINDS, NEAREST, NETWORK
from seqcast.modeling.nearest import Neighbours
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowLayout

if TYPE_CHECKING:  # Keras is imported where a model is loaded: listing versions needs none
    import keras

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
PARAMS_FILE = "params.json"
NEIGHBOURS_FILE = "neighbours.npz"
_PAYLOAD = {NETWORK: MODEL_FILE, NEAREST: NEIGHBOURS_FILE}
"""The payload file of the kinds that have one; every other kind holds params.json."""
FORECASTS_FILE = "test_forecasts.parquet"
PROFILE_FILE = "profile.json"
"""The training inputs' profile that prediction inputs are checked against for drift
(`seqcast.monitoring.drift`); versions registered before drift checks have none."""
_COMMON = ("scaler.json", "layout.json", "metrics.json")


def required_files(kind: str) -> tuple[str, ...]:
    """The payload every version of ``kind`` holds (its manifest must list each)."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    return (_PAYLOAD.get(kind, PARAMS_FILE), *_COMMON)


def kind_of(manifest: dict[str, Any]) -> str:
    """A version's kind; versions registered before kinds existed are networks."""
    return str(manifest.get("kind", NETWORK))


@dataclass(frozen=True)
class LoadedModel:
    """A verified version, ready to predict.

    ``model`` is the Keras network for kind "network" and None for a statistical kind,
    whose ``params`` (e.g. ``{"season": 7}``) say how it forecasts from history;
    ``neighbours`` is the 1-NN of a nearest_neighbour version.
    """

    version: str
    model: keras.Model | None
    scaler: Scaler
    layout: WindowLayout
    metrics: dict[str, Any]
    kind: str = NETWORK
    params: dict[str, Any] = field(default_factory=dict)
    neighbours: Neighbours | None = None


VERSION_PATTERN = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
"""What `new_version_id` makes: creation time (UTC, microseconds) and a fingerprint prefix."""


def check_version_id(version: object, source: str = "version") -> str:
    """``version`` if it is a version id; else `RegistryError` naming where it came from.

    Every id read from outside (a CLI argument, the champion pointer, the audit log) passes
    here before it becomes part of a path, so ``../../elsewhere/fakever`` can never point
    the registry, or a prediction file name, outside the registry.
    """
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise RegistryError(
            f"{source}: {version!r} is not a model version id (like "
            "20260101T000000000000Z-0123abcd); see `seqcast models list` for the versions"
        )
    return version


def registry_root(pipeline_root: str) -> str:
    return storage.join(pipeline_root, "registry")


def version_uri(pipeline_root: str, version: str) -> str:
    """Where ``version`` lives; refuses an id that is not one, or a path that resolves
    outside ``registry/versions`` (a symlinked version directory, on a local disk)."""
    check_version_id(version)
    versions = storage.join(registry_root(pipeline_root), "versions")
    uri = storage.join(versions, version)
    fs, path = storage.filesystem(uri)
    if storage.is_local(fs):
        base = os.path.realpath(storage.filesystem(versions)[1])
        if os.path.dirname(os.path.realpath(path)) != base:
            raise RegistryError(
                f"{path}: model version {version} resolves outside the registry ({base}); "
                "refusing it"
            )
    return uri


def library_versions() -> dict[str, str]:
    """The libraries a version was built with, for its manifest. Great Expectations' from
    its installed metadata: a process that did not validate (a search trial on a Dask
    worker) would otherwise import it, 2-3 s, for the string."""
    from importlib.metadata import version

    import keras
    import numpy
    import pandas
    import pyarrow
    import tensorflow

    return {
        "seqcast": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "great_expectations": version("great_expectations"),
    }


def new_version_id(fingerprint: str) -> str:
    """Sortable and unique: creation time (UTC) plus a fingerprint prefix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{fingerprint[:8]}"


def register_version(
    pipeline_root: str,
    model_file: str | None,
    windows_uri: str,
    metrics: dict[str, Any],
    info: dict[str, Any],
    kind: str = NETWORK,
    params: dict[str, Any] | None = None,
    forecasts_uri: str | None = None,
    profile: dict[str, Any] | None = None,
) -> str:
    """Copy a model (or a statistical predictor's parameters), its windows' scaler and
    layout into a new immutable version.

    The payload is written first and the manifest last (the commit point): until it exists
    the version does not, for every reader.

    Args:
        model_file: the trained ``.keras`` file, or a nearest_neighbour's ``.npz``; None for
            a statistical ``kind``.
        kind: one of `KINDS`.
        params: what a statistical kind forecasts with (written as ``params.json``).
        forecasts_uri: the run's ``test_forecasts.parquet``, kept with the version.
        profile: the training inputs' profile (`seqcast.monitoring.drift.Profile.to_json`),
            written as ``profile.json``.

    Idempotent per run: with a ``flow_run_id`` in ``info``, the manifest records a
    ``registration_key`` (the run, the kind and the sha256 of the model or parameters), and
    a retried call finds the version it already committed and returns it instead of
    registering the same model again under a new id.
    """
    files = list(required_files(kind))
    if (kind in _PAYLOAD) != (model_file is not None):
        raise ValueError(
            f"a {kind!r} version needs "
            f"{'a model file' if kind in _PAYLOAD else 'params and no model file'}. "
            f"Received: model_file={model_file!r}"
        )
    payload = (
        storage.read_bytes(model_file)
        if model_file is not None
        else storage.json_bytes({"kind": kind, **(params or {})})
    )
    digest = hashlib.sha256(payload).hexdigest()  # params name the kind
    key = registration_key(info.get("flow_run_id"), kind, digest)
    if key is not None:
        existing = find_registered(pipeline_root, key)
        if existing is not None:
            logger.info("version %s already registered by this run (a retry); reusing it", existing)
            return existing
    version = new_version_id(digest)
    root = version_uri(pipeline_root, version)
    storage.write_bytes(storage.join(root, files[0]), payload)
    for name in ("scaler.json", "layout.json"):
        storage.write_bytes(
            storage.join(root, name), storage.read_bytes(storage.join(windows_uri, name))
        )
    storage.write_json(storage.join(root, "metrics.json"), metrics)
    if forecasts_uri is not None:
        row_groups.copy_file(forecasts_uri, storage.join(root, FORECASTS_FILE))
        files.append(FORECASTS_FILE)
    if profile is not None:
        storage.write_json(storage.join(root, PROFILE_FILE), profile)
        files.append(PROFILE_FILE)
    manifest = {
        "version": version,
        "kind": kind,
        "created": datetime.now(UTC).isoformat(),
        "sha256": {name: storage.sha256_of(storage.join(root, name)) for name in files},
        "libraries": library_versions(),
        **info,
        **({"registration_key": key} if key is not None else {}),
    }
    storage.write_json(storage.join(root, "manifest.json"), manifest)
    return version


def registration_key(flow_run_id: object, kind: str, digest: str) -> str | None:
    """What makes a registration the same one: run, kind and payload hash (None: no run)."""
    if not flow_run_id:
        return None
    return f"{flow_run_id}:{kind}:{digest}"


def find_registered(pipeline_root: str, key: str) -> str | None:
    """The committed version whose manifest holds ``key``, if any (newest first)."""
    for version in reversed(_committed(pipeline_root)):
        if read_manifest(pipeline_root, version).get("registration_key") == key:
            return version
    return None


def _committed(pipeline_root: str) -> list[str]:
    """Version ids with a manifest (the commit point), oldest first; others are skipped."""
    versions = []
    for name in storage.listdir(storage.join(registry_root(pipeline_root), "versions")):
        if not VERSION_PATTERN.fullmatch(name):
            continue  # a hidden temporary, or something that is not a version
        try:
            root = version_uri(pipeline_root, name)
        except RegistryError as exc:
            logger.warning("%s; skipping it", exc)
            continue
        if storage.exists(storage.join(root, "manifest.json")):
            versions.append(name)
    return versions


def _pointer_uri(pipeline_root: str) -> str:
    return storage.join(registry_root(pipeline_root), "champion.json")


def _read_pointer(pipeline_root: str) -> dict[str, Any]:
    pointer = _pointer_uri(pipeline_root)
    return _pointer(storage.read_bytes(pointer), pointer) if storage.exists(pointer) else _EMPTY


def champion_version(pipeline_root: str) -> str | None:
    return _read_pointer(pipeline_root).get("version")


def champion_chain(pipeline_root: str) -> list[str]:
    """The champion and every earlier one, newest first, as the pointer records them.

    Raises:
        CorruptPointer: ``champion.json`` cannot be read.
    """
    pointer = _read_pointer(pipeline_root)
    return [v for v in [pointer.get("version"), *pointer["previous"]] if v]


class ChampionChanged(RegistryError):
    """The champion moved between a run's evaluation and its promotion."""


class CorruptPointer(RegistryError):
    """``champion.json`` cannot be read; `seqcast models promote`/`rollback` rewrite it."""


ANY_CHAMPION = object()
"""`set_champion(expected=ANY_CHAMPION)`: promote whatever the current champion is."""

_EMPTY: dict[str, Any] = {"previous": []}


def _pointer(data: bytes | None, uri: str) -> dict[str, Any]:
    """The pointer's contents, every version id in it checked; `CorruptPointer` naming
    the file and the repair when it is truncated, not JSON, or names no version id."""
    if data is None:
        return {"previous": []}
    try:
        pointer = json.loads(data)
        if not isinstance(pointer, dict) or not isinstance(pointer.get("previous", []), list):
            raise ValueError("not a champion pointer object")
        for version in [pointer.get("version"), *pointer.get("previous", [])]:
            check_version_id(version, uri)
    except (ValueError, RegistryError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptPointer(
            f"{uri} is corrupt ({exc}); `seqcast models promote VERSION` or `seqcast models "
            "rollback` rewrites it from the audit log"
        ) from exc
    return {"previous": [], **pointer}


def _history(pipeline_root: str) -> list[str]:
    """Champions as the audit log recorded them, newest first, each once, each a version
    that still exists: what a corrupt pointer is rebuilt from."""
    history: list[str] = []
    for entry in reversed(read_audit(pipeline_root)):
        version = entry.get("version")
        fresh = entry.get("promoted") and version not in history
        if fresh and exists_version(pipeline_root, version):
            history.append(version)
    return history


def _current_or_rebuilt(
    pipeline_root: str, data: bytes | None, uri: str
) -> tuple[dict[str, Any], bool]:
    """The pointer and True, or (when it is corrupt) the champion history from the audit
    log and False."""
    try:
        return _pointer(data, uri), True
    except CorruptPointer as exc:
        history = _history(pipeline_root)
        logger.warning(
            "%s; rebuilding it from the audit log (champion %s, earlier %s)",
            exc,
            history[0] if history else None,
            history[1:],
        )
        if not history:
            return {"previous": []}, False
        return {"version": history[0], "previous": history[1:]}, False


def exists_version(pipeline_root: str, version: object) -> bool:
    """Whether ``version`` is a committed version id (no exception for a bad one)."""
    try:
        read_manifest(pipeline_root, check_version_id(version))
    except RegistryError:
        return False
    return True


def _pointer_bytes(version: str, previous: list[str]) -> bytes:
    return storage.json_bytes(
        {"version": version, "since": datetime.now(UTC).isoformat(), "previous": previous}
    )


def set_champion(
    pipeline_root: str,
    version: str,
    decision: dict[str, Any],
    expected: str | None | object = ANY_CHAMPION,
) -> None:
    """Point the champion at ``version`` (one compare-and-swap) and audit the decision.

    ``expected`` makes it a conditional promotion: the version the challenger was compared
    with (None: there was no champion). If another run promoted a model since, nothing
    changes and `ChampionChanged` says so, so two runs can never both believe they won. The
    pointer keeps the earlier champions, newest first, so `rollback` can restore them.

    The audit line is appended under the pointer's lock, before the new pointer is
    visible (`seqcast.io.cas.swap`'s ``record``; on S3 right after the winning PUT): a
    crash in between leaves an audited promotion that did not land (the pointer still
    names the old champion), never a champion change with no audit record; the line's
    ``since`` matches the pointer's once the swap landed. A refused promotion changes
    nothing; its caller audits it (the register step does). If ``version`` already is the
    champion (a retried promotion), nothing changes and nothing is appended.

    A corrupt pointer is rebuilt from the audit log by a promotion with ``ANY_CHAMPION``
    (`seqcast models promote`); a conditional one refuses it (`CorruptPointer`).
    """
    check_version_id(version)
    read_manifest(pipeline_root, version)  # raises for an unknown version
    uri = _pointer_uri(pipeline_root)

    def promote(data: bytes | None) -> bytes:
        if expected is ANY_CHAMPION:
            pointer, intact = _current_or_rebuilt(pipeline_root, data, uri)
        else:
            pointer, intact = _pointer(data, uri), True
        current = pointer.get("version")
        if current == version and intact and data is not None:
            raise _Unchanged(version)
        if expected is not ANY_CHAMPION and current != expected:
            raise ChampionChanged(
                f"{uri}: the champion is now {current!r}, but version {version} was compared "
                f"with {expected!r}; it was not promoted. Run the training again to compare "
                "it with the new champion."
            )
        previous = [v for v in [current, *pointer["previous"]] if v and v != version]
        return _pointer_bytes(version, previous)

    def record(new: bytes) -> None:
        since = json.loads(new)["since"]
        append_audit(
            pipeline_root, {**decision, "version": version, "promoted": True, "since": since}
        )

    try:
        cas.swap(uri, promote, record)
    except _Unchanged:
        logger.info("version %s already is the champion; nothing to change", version)


class _Unchanged(Exception):
    """Raised inside a swap to write nothing (the pointer already says what was asked)."""


def rollback(pipeline_root: str) -> str:
    """Make the previous champion champion again; returns its version.

    A corrupt pointer is first rebuilt from the audit log, then rolled back as usual. The
    audit line is appended under the pointer's lock before the swap (see `set_champion`).

    Raises:
        RegistryError: there is no earlier champion to return to.
    """
    uri = _pointer_uri(pipeline_root)
    replaced: dict[str, Any] = {}

    def restore(data: bytes | None) -> bytes:
        pointer, _ = _current_or_rebuilt(pipeline_root, data, uri)
        if not pointer["previous"]:
            raise RegistryError(
                "no earlier champion to roll back to; `seqcast models promote VERSION` picks "
                "any version"
            )
        restored, *older = pointer["previous"]
        read_manifest(pipeline_root, restored)
        replaced.update(version=pointer.get("version"), restored=restored)
        return _pointer_bytes(restored, older)

    def record(new: bytes) -> None:
        entry = {
            "version": replaced["restored"],
            "promoted": True,
            "reason": f"rollback from {replaced['version']}",
            "since": json.loads(new)["since"],
        }
        append_audit(pipeline_root, entry)

    cas.swap(uri, restore, record)
    return str(replaced["restored"])


def append_audit(pipeline_root: str, entry: dict[str, Any]) -> None:
    """Add one decision to the audit log (no concurrent writer's line is lost; on a local
    disk the line is on disk, fsynced, before this returns)."""
    line = json.dumps({"at": datetime.now(UTC).isoformat(), **entry}, default=str)
    cas.append_line(storage.join(registry_root(pipeline_root), "audit.jsonl"), line)


def read_audit(pipeline_root: str) -> list[dict[str, Any]]:
    """Every promotion decision, oldest first.

    A line that is not JSON (a torn last line after a crash) is skipped with a warning
    naming the file and line; a ``version`` that is not a version id is refused.
    """
    uri = storage.join(registry_root(pipeline_root), "audit.jsonl")
    if not storage.exists(uri):
        return []
    entries = []
    for number, line in enumerate(storage.read_bytes(uri).decode().splitlines(), start=1):
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            logger.warning("%s line %d is not JSON (a torn write?); skipping it", uri, number)
            continue
        if entry.get("version") is not None:
            check_version_id(entry["version"], f"{uri} line {number}")
        entries.append(entry)
    return entries


def read_manifest(pipeline_root: str, version: str) -> dict[str, Any]:
    """A committed version's manifest; `RegistryError` for a bad id or an unknown version."""
    uri = storage.join(version_uri(pipeline_root, version), "manifest.json")
    if not storage.exists(uri):
        raise RegistryError(f"no model version {version!r}; see `seqcast models list`")
    return storage.read_json(uri)


def list_versions(pipeline_root: str) -> list[dict[str, Any]]:
    """Every version, oldest first: id, created, champion flag and test metrics."""
    champion = champion_version(pipeline_root)
    rows = []
    for version in _committed(pipeline_root):  # unfinished writes have no manifest yet
        root = version_uri(pipeline_root, version)
        manifest = read_manifest(pipeline_root, version)
        metrics = storage.read_json(storage.join(root, "metrics.json"))
        rows.append(
            {
                "version": version,
                "kind": kind_of(manifest),
                "predictor": manifest.get("predictor", "model"),
                "created": manifest["created"],
                "champion": version == champion,
                "metrics": metrics,
            }
        )
    return rows


def verify_version(pipeline_root: str, version: str) -> dict[str, Any]:
    """Check every file against the manifest's sha256; raise naming the file that differs.

    The manifest must also list every file its kind needs, so a version stripped of one
    (or claiming a kind it has no payload for) is refused too.
    """
    manifest = read_manifest(pipeline_root, version)
    root = version_uri(pipeline_root, version)
    kind = kind_of(manifest)
    if kind not in KINDS:
        raise RegistryError(
            f"model version {version}: unknown kind {kind!r} in its manifest (known: "
            f"{', '.join(KINDS)}); refusing to load it"
        )
    missing = [name for name in required_files(kind) if name not in manifest["sha256"]]
    if missing:
        raise RegistryError(
            f"model version {version} ({kind}): its manifest lists no {', '.join(missing)}; "
            "refusing to load an incomplete version"
        )
    for name, expected in manifest["sha256"].items():
        actual = storage.sha256_of(storage.join(root, name))
        if actual != expected:
            raise RegistryError(
                f"model version {version}: {name} does not match its manifest (sha256 "
                f"{actual[:12]}…, expected {expected[:12]}…); refusing to load a modified file"
            )
    return manifest


def load_version(pipeline_root: str, version: str) -> LoadedModel:
    """Load a version after checking its files (`.keras` only, Keras safe mode)."""
    manifest = verify_version(pipeline_root, version)
    kind = kind_of(manifest)
    root = version_uri(pipeline_root, version)
    model, params, neighbours = None, {}, None
    if kind == NEAREST:
        neighbours = Neighbours.from_bytes(storage.read_bytes(storage.join(root, NEIGHBOURS_FILE)))
    elif kind == NETWORK:
        import keras  # here: listing or checking versions needs no TensorFlow

        import seqcast.modeling.networks  # noqa: F401 - registers the custom layers saved models use

        with storage.local_copy(storage.join(root, MODEL_FILE), suffix=".keras") as path:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
    else:
        params = storage.read_json(storage.join(root, PARAMS_FILE))
        params.pop("kind", None)
    return LoadedModel(
        version=version,
        model=model,
        scaler=Scaler.from_json(storage.read_json(storage.join(root, "scaler.json"))),
        layout=WindowLayout(**storage.read_json(storage.join(root, "layout.json"))),
        metrics=storage.read_json(storage.join(root, "metrics.json")),
        kind=kind,
        params=params,
        neighbours=neighbours,
    )


def read_layout(pipeline_root: str, version: str) -> tuple[str, WindowLayout, dict[str, Any]]:
    """A version's kind, window layout and (statistical kinds) parameters, without loading
    or verifying the model: what the prediction check needs to know which rows are read."""
    kind = kind_of(read_manifest(pipeline_root, version))
    root = version_uri(pipeline_root, version)
    layout = WindowLayout(**storage.read_json(storage.join(root, "layout.json")))
    params = storage.read_json(storage.join(root, PARAMS_FILE)) if kind not in _PAYLOAD else {}
    return kind, layout, params


def read_profile(pipeline_root: str, version: str) -> dict[str, Any] | None:
    """A version's input profile (``profile.json``), checked against its manifest's
    sha256; None for a version registered without one."""
    manifest = read_manifest(pipeline_root, version)
    expected = manifest["sha256"].get(PROFILE_FILE)
    if expected is None:
        return None
    data = storage.read_bytes(storage.join(version_uri(pipeline_root, version), PROFILE_FILE))
    if hashlib.sha256(data).hexdigest() != expected:
        raise RegistryError(
            f"model version {version}: {PROFILE_FILE} does not match its manifest; refusing "
            "to compare inputs with a modified profile"
        )
    profile: dict[str, Any] = json.loads(data)
    return profile


def required_champion_version(pipeline_root: str) -> str:
    """The champion's version; raises `RegistryError` saying what to do when there is none."""
    version = champion_version(pipeline_root)
    if version is None:
        raise RegistryError(
            f"no champion model under {registry_root(pipeline_root)}: run `seqcast train` "
            "first (its first run always makes a champion: the best network or statistical "
            "predictor)"
        )
    return version


def load_champion(pipeline_root: str) -> LoadedModel:
    return load_version(pipeline_root, required_champion_version(pipeline_root))
