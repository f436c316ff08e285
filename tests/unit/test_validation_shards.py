"""Validation shard by shard gives what one whole-table run gives (issue 18): the same
rule table, examples, quarantined rows and clean table, however the series are laid out
over the source files. Library functions only: no Prefect, no Keras.

The feed (`tests.unit.test_bad_inputs`): eight sensors of 40 hourly rows in three files,
sensor-4 split over two of them, with bad values spread over every shard.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seqcast.config import PipelineConfig
from seqcast.data.contracts import contract_for
from seqcast.data.ingest import snapshot_source
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import (
    ValidationReport,
    effective_contract,
    validate_shard,
    validate_table,
)
from seqcast.data.validation_merge import merge, summary
from seqcast.data.validation_report import artifact_rows, summary_markdown
from seqcast.data.validation_shards import plan_shards, read_shard, write_shards
from seqcast.io import storage
from tests.unit.test_bad_inputs import make_config, rows, write

SENSORS = range(1, 9)


def feed(tmp_path: Path, naive_from: int | None = None, scattered: bool = False) -> None:
    """Three files; sensor-4's rows split between a.csv and b.csv (``scattered``: a.csv and
    c.csv, after sensor-7 and sensor-8, so the snapshot does not hold each series together
    and the shards are copied); bad values in most sensors (seven unparsable loads, a null,
    a range breach, a repeated key, a gap, a short series), and an empty file.
    ``naive_from``: sensors from it on have timestamps without an offset (mixed timezones
    across shards)."""
    series = {s: rows(s) for s in SENSORS}
    if naive_from is not None:
        for s in SENSORS:
            if s >= naive_from:
                series[s] = [line.replace("+00:00", "", 1) for line in series[s]]
    for s, i in [(1, 3), (2, 5), (3, 30), (5, 7), (6, 2), (7, 12), (8, 1)]:
        ts, sensor, _load, temp = series[s][i].split(",")
        series[s][i] = f"{ts},{sensor},abc,{temp}"
    series[5][20] = series[5][20].split(",")[0] + ",sensor-5,,11.0"
    ts, sensor, load, _temp = series[7][25].split(",")
    series[7][25] = f"{ts},{sensor},{load},999.0"
    series[3].insert(10, series[3][9])  # a repeated key
    del series[6][14:19]  # a 6-hour gap
    series[8] = series[8][:5]  # shorter than 6 rows
    a = series[1] + series[2] + series[3] + series[4][:20]
    b = series[4][20:] + series[5] + series[6]
    c = series[7] + series[8]
    if scattered:
        b, c = series[5] + series[6], series[7] + series[8] + series[4][20:]
    write(tmp_path / "a.csv", a)
    write(tmp_path / "b.csv", b)
    write(tmp_path / "c.csv", c)
    write(tmp_path / "d.csv", [])


def sharded(
    config: PipelineConfig,
    snapshot_uri: str,
    files: list[str],
    rows_per_shard: int,
    scope: PredictionScope | None = None,
) -> tuple[ValidationReport, pd.DataFrame, int]:
    """What the validate subflow does, without Prefect: shards, their checks, the merge.
    Returns the merged report, the clean parts concatenated in shard order, the shards."""
    contract = contract_for(config)
    work = storage.join(config.pipeline_root, "work")
    plan = plan_shards(snapshot_uri, "sensor", rows_per_shard)
    shards, present = write_shards(snapshot_uri, "sensor", plan, work)
    summaries, quarantined, clean = [], [], []
    for shard in shards:
        raw = read_shard(shard)
        check = validate_shard(raw, contract, config.source, [], scope=scope)
        summaries.append(summary(check, "sensor"))
        if len(check.report.quarantined):
            quarantined.append(check.report.quarantined)
        clean.append(check.report.clean)
    report = merge(
        summaries,
        effective_contract(contract, scope),
        files,
        present,
        scope,
        pd.concat(quarantined, ignore_index=True),
        config.source.timezone,
    )
    return report, pd.concat(clean, ignore_index=True), len(shards)


def one_run(
    config: PipelineConfig, snapshot_uri: str, files: list[str], **kw: object
) -> ValidationReport:
    raw = storage.read_parquet(snapshot_uri).to_pandas()
    return validate_table(raw, contract_for(config), config.source, files, **kw)  # type: ignore[arg-type]


def assert_same_report(merged: ValidationReport, whole: ValidationReport) -> None:
    assert merged.results == whole.results
    assert artifact_rows(merged) == artifact_rows(whole)
    assert summary_markdown(merged, "R", "Q", None) == summary_markdown(whole, "R", "Q", None)
    pd.testing.assert_frame_equal(merged.quarantined, whole.quarantined)
    assert merged.set_aside == whole.set_aside
    assert merged.clean_rows == whole.clean_rows


@pytest.fixture(params=["together", "scattered"])
def snapshot(
    tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[PipelineConfig, str, list[str]]:
    """The feed's snapshot: each series' rows together in name order (shards are ranges of
    it), or sensor-4 split around other series (shards are copied)."""
    feed(tmp_path, scattered=request.param == "scattered")
    config = make_config(tmp_path, severity={"unique_key": "quarantine"})
    shot = snapshot_source(config.source, config.pipeline_root)
    return config, shot.uri, shot.files


def test_shards_of_whole_series_give_the_report_quarantine_and_table_of_one_run(
    snapshot: tuple[PipelineConfig, str, list[str]],
) -> None:
    config, uri, files = snapshot
    whole = one_run(config, uri, files)
    merged, clean, shards = sharded(config, uri, files, rows_per_shard=85)
    assert shards == 4  # two series per shard; sensor-4 (two files) with sensor-3
    assert whole.outcome == "quarantine"
    # every kind of finding is exercised, and the rules failing in several shards with
    # more than five examples show the first five in snapshot order, then a count
    failed = {(r.rule, r.outcome) for r in whole.results if r.outcome != "pass"}
    assert {("type", "quarantine"), ("not_null", "quarantine"), ("range", "quarantine")} <= failed
    assert {("unique_key", "quarantine"), ("gaps", "warn"), ("empty_file", "warn")} <= failed
    assert next(r for r in whole.results if r.rule == "type").examples.endswith("(+2 more)")
    assert_same_report(merged, whole)
    pd.testing.assert_frame_equal(clean, whole.clean)


def test_the_quarantine_share_is_judged_on_the_whole_table(
    snapshot: tuple[PipelineConfig, str, list[str]], tmp_path: Path
) -> None:
    config, uri, files = snapshot
    strict = make_config(
        tmp_path,
        severity={"unique_key": "quarantine"},
        quarantine_limit=0.02,
    )
    whole = one_run(strict, uri, files)
    merged, _clean, _shards = sharded(strict, uri, files, rows_per_shard=85)
    assert whole.outcome == "fail"
    assert next(r for r in whole.results if r.rule == "quarantine_share").outcome == "fail"
    assert_same_report(merged, whole)
    assert merged.clean_rows == 0


def test_timezones_mixed_across_shards_fail_like_one_run(tmp_path: Path) -> None:
    feed(tmp_path, naive_from=5)  # sensors 1-4 with an offset, 5-8 without
    config = make_config(tmp_path)
    shot = snapshot_source(config.source, config.pipeline_root)
    whole = one_run(config, shot.uri, shot.files)
    merged, _clean, _shards = sharded(config, shot.uri, shot.files, rows_per_shard=85)
    timezone = next(r for r in whole.results if r.rule == "timezone")
    assert timezone.outcome == "fail"
    assert next(r for r in merged.results if r.rule == "timezone") == timezone
    assert merged.outcome == "fail"


def test_prediction_scope_sets_the_same_series_aside(
    snapshot: tuple[PipelineConfig, str, list[str]], tmp_path: Path
) -> None:
    _config, uri, files = snapshot
    config = make_config(tmp_path, series_quarantine_limit=0.6)
    scope = PredictionScope(rows=12, min_rows=6, gap_free=6, frequency="1h")
    whole = one_run(config, uri, files, scope=scope)
    merged, clean, _shards = sharded(config, uri, files, rows_per_shard=85, scope=scope)
    assert whole.outcome == "quarantine" and list(whole.set_aside) == ["sensor-3", "sensor-8"]
    assert_same_report(merged, whole)
    assert merged.checked_rows == whole.checked_rows
    pd.testing.assert_frame_equal(clean, whole.clean)


def test_a_series_spread_over_files_lands_in_one_shard(
    snapshot: tuple[PipelineConfig, str, list[str]],
) -> None:
    config, uri, _files = snapshot
    work = storage.join(config.pipeline_root, "w")
    plan = plan_shards(uri, "sensor", 85)
    shards, present = write_shards(uri, "sensor", plan, work)
    owners: dict[str, set[int]] = {}
    frames = [read_shard(shard) for shard in shards]
    for shard, frame in zip(shards, frames, strict=True):
        for name in frame["sensor"].unique():
            owners.setdefault(name, set()).add(shard.number)
        assert frame["_source_position"].is_monotonic_increasing  # read order kept
        assert len(frame) == shard.rows
    assert all(len(s) == 1 for s in owners.values()) and len(owners) == 8
    assert {f for f in present} == {"a.csv", "b.csv", "c.csv"}
    sensor_4 = frames[1].loc[frames[1]["sensor"] == "sensor-4", "_source_file"]
    together = plan.first_rows is not None
    assert set(sensor_4) == ({"a.csv", "b.csv"} if together else {"a.csv", "c.csv"})
    # Together: each shard is a range of the snapshot, nothing copied; else shard files.
    assert all((shard.first_row is not None) == together for shard in shards)
    assert storage.exists(work) != together
    positions = pd.concat(frames)["_source_position"].sort_values().to_numpy()
    assert (positions == range(len(positions))).all()  # every row once


def test_the_copy_is_skipped_only_when_each_series_is_one_run_in_name_order(
    tmp_path: Path,
) -> None:
    from seqcast.data.validation_shards import _RunOrder

    def ordered(*batches: list[str | None]) -> bool:
        order = _RunOrder()
        for batch in batches:
            order.feed(pd.Series(batch, dtype=object))
        return order.ordered

    assert ordered(["a", "a", "b"], ["b", "c"], [], ["d"])  # runs go on across batches
    assert not ordered(["a", "b"], ["a"])  # a series comes back
    assert not ordered(["b", "b"], ["a"])  # one run each, but not in name order
    assert not ordered(["a", None, "b"])  # a row without a series goes to shard 0
    assert ordered(["sensor-1", "sensor-10", "sensor-2"])  # name order is text order
