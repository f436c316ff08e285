"""Versions are immutable and checked; the champion pointer only moves on promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqcast import registry, storage
from seqcast.config import ModelSpec
from seqcast.errors import RegistryError
from seqcast.models import build_model
from seqcast.scaling import Scaler, Stats
from seqcast.windowing import WindowLayout

LAYOUT = WindowLayout(
    task="forecast",
    lookback=4,
    horizon=2,
    stride=1,
    series_column="id",
    timestamp="ts",
    input_columns=["y"],
    target_columns=["y"],
    classes=[],
    step_seconds=60.0,
)


@pytest.fixture
def trained(tmp_path: Path) -> tuple[str, str]:
    """A saved tiny model and a windows directory holding its scaler and layout."""
    model = build_model(LAYOUT, ModelSpec(units=[2], epochs=1))
    model_file = tmp_path / "run" / "model.keras"
    model_file.parent.mkdir()
    model.save(model_file)
    windows = tmp_path / "windows"
    storage.write_json(
        str(windows / "scaler.json"), Scaler("global", ["y"], Stats([0.0], [1.0])).to_json()
    )
    import dataclasses

    storage.write_json(str(windows / "layout.json"), dataclasses.asdict(LAYOUT))
    return str(model_file), str(windows)


def test_register_load_and_promote(tmp_path: Path, trained: tuple[str, str]) -> None:
    root = str(tmp_path / "pipe")
    version = registry.register_version(root, *trained, {"primary_metric": "mae"}, {})
    assert registry.champion_version(root) is None
    with pytest.raises(RegistryError, match="no champion"):
        registry.load_champion(root)
    registry.set_champion(root, version, {"reason": "test"})
    loaded = registry.load_champion(root)
    assert loaded.version == version and loaded.layout == LAYOUT
    rows = registry.list_versions(root)
    assert [(r["version"], r["champion"]) for r in rows] == [(version, True)]


def test_tampered_model_is_refused(tmp_path: Path, trained: tuple[str, str]) -> None:
    root = str(tmp_path / "pipe")
    version = registry.register_version(root, *trained, {}, {})
    model_file = Path(registry.version_uri(root, version)) / registry.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    with pytest.raises(RegistryError, match="model.keras does not match its manifest"):
        registry.load_version(root, version)


def test_unknown_version_cannot_be_champion(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no model version"):
        registry.set_champion(str(tmp_path), "nope", {})
