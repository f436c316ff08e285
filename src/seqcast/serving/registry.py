"""A file-based model registry: immutable versions and an atomically swapped champion.

Layout under ``{pipeline_root}/registry/``::

    versions/{version}/model.keras, scaler.json, layout.json, metrics.json, manifest.json
                       (+ test_forecasts.parquet; params.json instead of model.keras for a
                       statistical kind)
    champion.json      pointer to the champion version, replaced by compare-and-swap
    audit.jsonl        one line per promotion decision

A version's files are written under its final (unique) name and its ``manifest.json``
last: the manifest is the commit point, on a local disk and on an object store alike
(where renaming a directory would be a copy, not atomic). A directory without one is an
unfinished write that every reader ignores. The manifest holds the sha256 of every file
and is checked before a model is loaded.

A version has a ``kind`` (manifest field; versions from before kinds are "network"): a
trained network (model.keras) or a statistical predictor - ``ets``, ``seasonal_naive``,
``last_value`` - whose ``params.json`` (season, per-series ETS fits) is all it needs to
forecast from each series' history. Every kind goes through the same checks, promotion
and rollback, so the champion can be whichever predictor won.

The champion pointer changes only through `seqcast.io.cas.swap`, so two promotions can
never both win (see `seqcast.io.cas` for how on each kind of store).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import keras

import seqcast.modeling.networks  # noqa: F401 - registers the custom layers saved models use
from seqcast import __version__
from seqcast.errors import RegistryError
from seqcast.io import cas, storage
from seqcast.modeling.gate import KINDS, NETWORK
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowLayout

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
PARAMS_FILE = "params.json"
FORECASTS_FILE = "test_forecasts.parquet"
_COMMON = ("scaler.json", "layout.json", "metrics.json")


def required_files(kind: str) -> tuple[str, ...]:
    """The payload every version of ``kind`` holds (its manifest must list each)."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    return (MODEL_FILE if kind == NETWORK else PARAMS_FILE, *_COMMON)


def kind_of(manifest: dict[str, Any]) -> str:
    """A version's kind; versions registered before kinds existed are networks."""
    return str(manifest.get("kind", NETWORK))


@dataclass(frozen=True)
class LoadedModel:
    """A verified version, ready to predict.

    ``model`` is the Keras network for kind "network" and None for a statistical kind,
    whose ``params`` (e.g. ``{"season": 7}``) say how it forecasts from history.
    """

    version: str
    model: keras.Model | None
    scaler: Scaler
    layout: WindowLayout
    metrics: dict[str, Any]
    kind: str = NETWORK
    params: dict[str, Any] = field(default_factory=dict)


def registry_root(pipeline_root: str) -> str:
    return storage.join(pipeline_root, "registry")


def version_uri(pipeline_root: str, version: str) -> str:
    return storage.join(registry_root(pipeline_root), "versions", version)


def library_versions() -> dict[str, str]:
    import great_expectations
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
        "great_expectations": great_expectations.__version__,
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
) -> str:
    """Copy a model (or a statistical predictor's parameters), its windows' scaler and
    layout into a new immutable version.

    The payload is written first and the manifest last (the commit point): until it exists
    the version does not, for every reader.

    Args:
        model_file: the trained ``.keras`` file; None for a statistical ``kind``.
        kind: one of `KINDS`.
        params: what a statistical kind forecasts with (written as ``params.json``).
        forecasts_uri: the run's ``test_forecasts.parquet``, kept with the version.
    """
    files = list(required_files(kind))
    if (kind == NETWORK) != (model_file is not None):
        raise ValueError(
            f"a {kind!r} version needs "
            f"{'a model file' if kind == NETWORK else 'params and no model file'}. "
            f"Received: model_file={model_file!r}"
        )
    payload = (
        storage.read_bytes(model_file)
        if model_file is not None
        else storage.json_bytes({"kind": kind, **(params or {})})
    )
    version = new_version_id(hashlib.sha256(payload).hexdigest())  # params name the kind
    root = version_uri(pipeline_root, version)
    storage.write_bytes(storage.join(root, files[0]), payload)
    for name in ("scaler.json", "layout.json"):
        storage.write_bytes(
            storage.join(root, name), storage.read_bytes(storage.join(windows_uri, name))
        )
    storage.write_json(storage.join(root, "metrics.json"), metrics)
    if forecasts_uri is not None:
        storage.write_bytes(storage.join(root, FORECASTS_FILE), storage.read_bytes(forecasts_uri))
        files.append(FORECASTS_FILE)
    manifest = {
        "version": version,
        "kind": kind,
        "created": datetime.now(UTC).isoformat(),
        "sha256": {name: storage.sha256_of(storage.join(root, name)) for name in files},
        "libraries": library_versions(),
        **info,
    }
    storage.write_json(storage.join(root, "manifest.json"), manifest)
    return version


def _pointer_uri(pipeline_root: str) -> str:
    return storage.join(registry_root(pipeline_root), "champion.json")


def _read_pointer(pipeline_root: str) -> dict[str, Any]:
    pointer = _pointer_uri(pipeline_root)
    return storage.read_json(pointer) if storage.exists(pointer) else {"previous": []}


def champion_version(pipeline_root: str) -> str | None:
    return _read_pointer(pipeline_root).get("version")


class ChampionChanged(RegistryError):
    """The champion moved between a run's evaluation and its promotion."""


ANY_CHAMPION = object()
"""`set_champion(expected=ANY_CHAMPION)`: promote whatever the current champion is."""


def _pointer(data: bytes | None) -> dict[str, Any]:
    return json.loads(data) if data is not None else {"previous": []}


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
    """
    read_manifest(pipeline_root, version)  # raises for an unknown version
    uri = _pointer_uri(pipeline_root)

    def promote(data: bytes | None) -> bytes:
        pointer = _pointer(data)
        current = pointer.get("version")
        if expected is not ANY_CHAMPION and current != expected:
            raise ChampionChanged(
                f"{uri}: the champion is now {current!r}, but version {version} was compared "
                f"with {expected!r}; it was not promoted. Run the training again to compare "
                "it with the new champion."
            )
        previous = [v for v in [current, *pointer["previous"]] if v and v != version]
        return _pointer_bytes(version, previous)

    cas.swap(uri, promote)
    append_audit(pipeline_root, {**decision, "version": version, "promoted": True})


def rollback(pipeline_root: str) -> str:
    """Make the previous champion champion again; returns its version.

    Raises:
        RegistryError: there is no earlier champion to return to.
    """
    uri = _pointer_uri(pipeline_root)
    replaced: dict[str, Any] = {}

    def restore(data: bytes | None) -> bytes:
        pointer = _pointer(data)
        if not pointer["previous"]:
            raise RegistryError(
                "no earlier champion to roll back to; `seqcast models promote VERSION` picks "
                "any version"
            )
        restored, *older = pointer["previous"]
        read_manifest(pipeline_root, restored)
        replaced.update(version=pointer.get("version"), restored=restored)
        return _pointer_bytes(restored, older)

    cas.swap(uri, restore)
    append_audit(
        pipeline_root,
        {
            "version": replaced["restored"],
            "promoted": True,
            "reason": f"rollback from {replaced['version']}",
        },
    )
    return str(replaced["restored"])


def append_audit(pipeline_root: str, entry: dict[str, Any]) -> None:
    """Add one decision to the audit log (no concurrent writer's line is lost)."""
    line = json.dumps({"at": datetime.now(UTC).isoformat(), **entry}, default=str)
    cas.append_line(storage.join(registry_root(pipeline_root), "audit.jsonl"), line)


def read_audit(pipeline_root: str) -> list[dict[str, Any]]:
    """Every promotion decision, oldest first."""
    uri = storage.join(registry_root(pipeline_root), "audit.jsonl")
    if not storage.exists(uri):
        return []
    return [json.loads(line) for line in storage.read_bytes(uri).decode().splitlines() if line]


def read_manifest(pipeline_root: str, version: str) -> dict[str, Any]:
    uri = storage.join(version_uri(pipeline_root, version), "manifest.json")
    if not storage.exists(uri):
        raise RegistryError(f"no model version {version!r}; see `seqcast models list`")
    return storage.read_json(uri)


def list_versions(pipeline_root: str) -> list[dict[str, Any]]:
    """Every version, oldest first: id, created, champion flag and test metrics."""
    champion = champion_version(pipeline_root)
    rows = []
    for version in storage.listdir(storage.join(registry_root(pipeline_root), "versions")):
        root = version_uri(pipeline_root, version)
        if version.startswith(".") or not storage.exists(storage.join(root, "manifest.json")):
            continue  # unfinished: its writer died before the manifest (or is writing now)
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
    model, params = None, {}
    if kind == NETWORK:
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
    )


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
