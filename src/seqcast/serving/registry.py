"""A file-based model registry: immutable versions and an atomically swapped champion.

Layout under ``{pipeline_root}/registry/``::

    versions/{version}/model.keras, scaler.json, layout.json, metrics.json, manifest.json
    champion.json      pointer to the champion version, replaced by compare-and-swap
    audit.jsonl        one line per promotion decision

A version's files are written under its final (unique) name and its ``manifest.json``
last: the manifest is the commit point, on a local disk and on an object store alike
(where renaming a directory would be a copy, not atomic). A directory without one is an
unfinished write that every reader ignores. The manifest holds the sha256 of every file
and is checked before a model is loaded. The champion pointer changes only through
`seqcast.io.cas.swap`, so two promotions can never both win (see `seqcast.io.cas` for how on
each kind of store).
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import keras

import seqcast.modeling.networks  # noqa: F401 - registers the custom layers saved models use
from seqcast import __version__
from seqcast.errors import RegistryError
from seqcast.io import cas, storage
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowLayout

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
_PAYLOAD = (MODEL_FILE, "scaler.json", "layout.json", "metrics.json")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: keras.Model
    scaler: Scaler
    layout: WindowLayout
    metrics: dict[str, Any]


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
    model_file: str,
    windows_uri: str,
    metrics: dict[str, Any],
    info: dict[str, Any],
) -> str:
    """Copy a trained model and its windows' scaler and layout into a new immutable version.

    The payload is written first and the manifest last (the commit point): until it exists
    the version does not, for every reader.
    """
    model_sha = storage.sha256_of(model_file)
    version = new_version_id(model_sha)
    root = version_uri(pipeline_root, version)
    storage.write_bytes(storage.join(root, MODEL_FILE), storage.read_bytes(model_file))
    for name in ("scaler.json", "layout.json"):
        storage.write_bytes(
            storage.join(root, name), storage.read_bytes(storage.join(windows_uri, name))
        )
    storage.write_json(storage.join(root, "metrics.json"), metrics)
    manifest = {
        "version": version,
        "created": datetime.now(UTC).isoformat(),
        "sha256": {name: storage.sha256_of(storage.join(root, name)) for name in _PAYLOAD},
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
                "created": manifest["created"],
                "champion": version == champion,
                "metrics": metrics,
            }
        )
    return rows


def verify_version(pipeline_root: str, version: str) -> dict[str, Any]:
    """Check every file against the manifest's sha256; raise naming the file that differs."""
    manifest = read_manifest(pipeline_root, version)
    root = version_uri(pipeline_root, version)
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
    verify_version(pipeline_root, version)
    root = version_uri(pipeline_root, version)
    with storage.local_copy(storage.join(root, MODEL_FILE), suffix=".keras") as path:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    return LoadedModel(
        version=version,
        model=model,
        scaler=Scaler.from_json(storage.read_json(storage.join(root, "scaler.json"))),
        layout=WindowLayout(**storage.read_json(storage.join(root, "layout.json"))),
        metrics=storage.read_json(storage.join(root, "metrics.json")),
    )


def required_champion_version(pipeline_root: str) -> str:
    """The champion's version; raises `RegistryError` saying what to do when there is none."""
    version = champion_version(pipeline_root)
    if version is None:
        raise RegistryError(
            f"no champion model under {registry_root(pipeline_root)}: run `seqcast train` "
            "first (a model becomes champion only if it beats the baselines)"
        )
    return version


def load_champion(pipeline_root: str) -> LoadedModel:
    return load_version(pipeline_root, required_champion_version(pipeline_root))
