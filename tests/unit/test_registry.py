"""Versions are immutable and checked; the champion pointer only moves on promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqcast.config import ModelSpec
from seqcast.errors import RegistryError
from seqcast.io import storage
from seqcast.modeling.networks import build_model
from seqcast.serving import registry
from seqcast.windows.scaling import Scaler, Stats
from tests.conftest import forecast_layout

LAYOUT = forecast_layout(lookback=4, horizon=2)


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
        registry.set_champion(str(tmp_path), "20260101T000000000000Z-0123abcd", {})
    with pytest.raises(RegistryError, match="'nope' is not a model version id"):
        registry.set_champion(str(tmp_path), "nope", {})


def test_rollback_restores_earlier_champions_in_order(
    tmp_path: Path, trained: tuple[str, str]
) -> None:
    root = str(tmp_path / "pipe")
    first, second, third = (registry.register_version(root, *trained, {}, {}) for _ in range(3))
    for version in (first, second, third):
        registry.set_champion(root, version, {"reason": "better"})
    assert registry.rollback(root) == second
    assert registry.rollback(root) == first
    assert registry.champion_version(root) == first
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback(root)
    audit = registry.read_audit(root)
    assert [e["version"] for e in audit] == [first, second, third, second, first]
    assert audit[-1]["reason"] == f"rollback from {second}"


def test_nan_or_worse_networks_never_promote() -> None:
    from seqcast.records import EvaluationRef
    from tasks.register import promotion_decision

    def decide(challenger: float, champion: float | None = None) -> bool:
        ref = EvaluationRef(
            metrics_uri="m",
            primary_metric="mae",
            challenger=challenger,
            baselines={"last_value": 10.0},
            champion=champion,
            champion_version="v1" if champion is not None else None,
        )
        gate = promotion_decision(ref, margin=0.01)
        return gate.promote and gate.kind == "network"

    assert decide(5.0) and decide(5.0, champion=6.0)
    assert not decide(float("nan"))
    assert not decide(float("inf"))
    assert not decide(9.95)  # within the 1% margin of the baseline
    assert not decide(5.0, champion=5.0)
    assert not decide(5.0, champion=4.0)
