"""The training flow's retention step, run as the flow runs it (`collect_garbage`): it
deletes what `retention:` does not keep, and a failing GC does not fail the run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prefect import flow

from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.records import RetentionRef
from seqcast.serving import registry, retention
from tasks.retention import collect_garbage
from tests.conftest import tiny_config
from tests.unit.test_retention import SPEC, files, simulate

pytestmark = pytest.mark.flow


@flow
def last_step(config: PipelineConfig) -> RetentionRef | None:
    return collect_garbage(config)


def config_with_nights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **retention_settings: object
) -> PipelineConfig:
    config = tiny_config(
        tmp_path / "source",
        tmp_path / "root",
        retention={**SPEC.model_dump(), **retention_settings},
    )
    simulate(config.pipeline_root, monkeypatch)
    return config


def test_the_retention_step_deletes_what_the_settings_do_not_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_with_nights(tmp_path, monkeypatch)
    expected = retention.plan(config.pipeline_root, config.retention)

    state = last_step(config, return_state=True)

    assert state.is_completed()
    result = state.result()
    assert result is not None
    assert result.deleted == {kind: n for kind, (n, _) in expected.by_kind().items()}
    assert sum(result.freed_bytes.values()) == expected.bytes
    assert retention.plan(config.pipeline_root, config.retention).delete == []
    assert registry.load_champion(config.pipeline_root).version  # the champion still loads


def test_a_failing_gc_warns_and_the_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_with_nights(tmp_path, monkeypatch)

    def refused(uri: str, recursive: bool = False) -> None:
        raise PermissionError(f"{uri}: permission denied")

    monkeypatch.setattr(storage, "remove", refused)
    with caplog.at_level(logging.WARNING):
        state = last_step(config, return_state=True)

    assert state.is_completed() and state.result() is None
    assert any("Retention failed (PermissionError" in r.getMessage() for r in caplog.records)


def test_retention_disabled_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_with_nights(tmp_path, monkeypatch, enabled=False)
    before = files(config.pipeline_root)

    assert last_step(config) is None
    assert files(config.pipeline_root) == before
