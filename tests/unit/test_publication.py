"""Issue 13 #3: a day's predictions change in one step, at the marker (the kill after an
earlier file was removed runs a real flow in tests/flows/test_publication_faults.py)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import fsspec.implementations.local as local
import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from seqcast.errors import SeqcastError
from seqcast.io import publications, storage
from seqcast.records import PredictionsRef
from seqcast.serving import publication
from tasks.common import already_published, trigger_of
from tests.conftest import tiny_config

DAY = date(2026, 3, 1)


def day_file(root: str, model: str) -> PredictionsRef:
    """A complete prediction file of ``model`` for `DAY`, not yet published."""
    uri = storage.join(publication.day_folder(root, DAY), f"origin=x__model={model}.parquet")
    frame = pd.DataFrame({"series": ["a", "b"], "step": [1, 1], "model_version": model})
    storage.write_frame(frame, uri)
    return PredictionsRef(uri=uri, rows=2, model_version=model)


def names(root: str) -> list[str]:
    return sorted(p.name for p in Path(publication.day_folder(root, DAY)).iterdir())


def test_the_marker_names_the_new_file_before_any_other_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path / "pipe")
    earlier = day_file(root, "a")
    publication.publish_day(root, DAY, earlier, "run-1", "scheduled")
    newer = day_file(root, "b")
    # Killed here (new file written, marker not yet changed): the earlier file is the day's.
    assert publication.published_predictions(root, DAY) == earlier

    named_at_removal = []
    rm = local.LocalFileSystem.rm

    def removing(self: local.LocalFileSystem, path: str, *args: object, **kw: object) -> None:
        named_at_removal.append(publication.published_predictions(root, DAY))
        rm(self, path, *args, **kw)

    monkeypatch.setattr(local.LocalFileSystem, "rm", removing)
    removed = publication.publish_day(root, DAY, newer, "run-2", "scheduled")
    assert removed == [Path(earlier.uri).name]
    assert named_at_removal == [newer]
    assert names(root) == [Path(newer.uri).name]
    marker = json.loads(Path(publication.marker_uri(root, DAY)).read_text())
    assert marker["flow_run_id"] == "run-2" and marker["predictions"]["uri"] == newer.uri


def test_a_file_left_by_a_run_killed_before_publishing_is_removed_next_time(
    tmp_path: Path,
) -> None:
    root = str(tmp_path / "pipe")
    publication.publish_day(root, DAY, day_file(root, "a"), "run-1", "scheduled")
    leftover = day_file(root, "b")  # its run died before the marker
    assert publication.published_predictions(root, DAY).model_version == "a"  # type: ignore[union-attr]
    third = day_file(root, "c")
    assert publication.publish_day(root, DAY, third, "run-3", "scheduled") == sorted(
        [Path(leftover.uri).name, "origin=x__model=a.parquet"]
    )
    assert names(root) == [Path(third.uri).name]


def test_a_file_removed_before_it_is_published_is_refused(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
    first = day_file(root, "a")
    publication.publish_day(root, DAY, first, "run-1", "scheduled")
    lost = day_file(root, "b")
    Path(lost.uri).unlink()  # a run publishing the same day removed it
    with pytest.raises(SeqcastError, match="was removed before it could be published"):
        publication.publish_day(root, DAY, lost, "run-2", "scheduled")
    assert publication.published_predictions(root, DAY) == first


def test_a_marker_naming_a_missing_file_is_no_publication(tmp_path: Path) -> None:
    # Before the fix a kill between removing the day's files and rewriting the marker left
    # this state, and the next run returned Completed with a URI that did not exist.
    config = tiny_config(tmp_path, tmp_path / "root")
    root = config.pipeline_root
    ref = day_file(root, "a")
    publication.publish_day(root, DAY, ref, "run-1", "scheduled")
    with disable_run_logger():
        assert already_published(config, "predictions", DAY, force=False) is not None
        Path(ref.uri).unlink()
        assert already_published(config, "predictions", DAY, force=False) is None
    assert publication.published_predictions(root, DAY) is None


def test_only_a_scheduled_publication_makes_the_next_run_of_the_day_skip(tmp_path: Path) -> None:
    """Issue 14 #2: `make demo`'s manual runs no longer take the night's scheduled slot."""
    config = tiny_config(tmp_path, tmp_path / "root")
    root = config.pipeline_root
    with disable_run_logger():
        manual = day_file(root, "a")
        publication.publish_day(root, DAY, manual, "cli-run", "manual")
        assert publication.published_predictions(root, DAY) == manual  # readers see it
        assert already_published(config, "predictions", DAY, force=False) is None

        publication.publish_day(root, DAY, day_file(root, "b"), "nightly-run", "scheduled")
        done = already_published(config, "predictions", DAY, force=False)
        assert done is not None and "scheduled flow run nightly-run" in done.reason
        assert already_published(config, "predictions", DAY, force=True) is None

        # A manual rerun replaces the day's file; the day stays done for scheduled runs.
        again = day_file(root, "c")
        publication.publish_day(root, DAY, again, "cli-run-2", "manual")
        done = already_published(config, "predictions", DAY, force=False)
        assert done is not None and done.record["predictions"]["uri"] == again.uri
        assert done.record["slot_flow_run_id"] == "nightly-run"
        assert done.record["flow_run_id"] == "cli-run-2" and done.record["trigger"] == "manual"


def test_a_marker_written_before_triggers_were_recorded_fills_the_slot(tmp_path: Path) -> None:
    """A re-run backfill over days published before the upgrade keeps skipping them."""
    config = tiny_config(tmp_path, tmp_path / "root")
    uri = publications.marker_uri(config.pipeline_root, "training", DAY)
    storage.write_json(uri, {"logical_date": DAY.isoformat(), "outcome": {}, "flow_run_id": "r0"})
    with disable_run_logger():
        done = already_published(config, "training", DAY, force=False)
    assert done is not None and "flow run r0" in done.reason


def test_a_bad_trigger_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
    with pytest.raises(ValueError, match="`trigger` must be one of"):
        publication.publish_day(root, DAY, day_file(root, "a"), "run-1", "nightly")
    assert not storage.exists(publication.marker_uri(root, DAY))


@pytest.mark.parametrize(
    ("tags", "auto_scheduled", "expected"),
    [
        ([], True, "scheduled"),  # the deployment's schedule
        (["seqcast", "backfill"], False, "scheduled"),  # `seqcast backfill`
        (["seqcast"], False, "manual"),  # `prefect deployment run`, the UI's Run
        ([], False, "manual"),  # `seqcast train`, `seqcast predict`
    ],
)
def test_what_started_a_run(tags: list[str], auto_scheduled: bool, expected: str) -> None:
    assert trigger_of(tags, auto_scheduled) == expected
