"""The window store: same windows as in memory, cached by its inputs, published atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from seqcast.config import PipelineConfig
from seqcast.data.sample import activity_series, load_series
from seqcast.errors import DataContractError
from seqcast.io import storage
from seqcast.windows import store as window_store
from seqcast.windows.build import build_windows
from seqcast.windows.publish import WindowStore, verify
from seqcast.windows.series_source import (
    ParquetSeries,
    column_roles,
    make_shards,
    series_row_counts,
)
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import read_split
from seqcast.windows.windowing import SPLITS
from tests.conftest import kill_writer_midway, tiny_config


def validated(tmp_path: Path, frame: pd.DataFrame, name: str = "validated.parquet") -> str:
    uri = str(tmp_path / name)
    storage.write_frame(frame.sort_values(["sensor", "ts"], kind="stable"), uri)
    return uri


def load_frame(n_series: int = 4, n_steps: int = 200, seed: int = 1) -> pd.DataFrame:
    frame = load_series(n_series=n_series, n_steps=n_steps, seed=seed)
    frame["holiday"] = (frame["ts"].dt.day_of_week >= 5).astype(float)
    frame["capacity"] = frame["sensor"].str[-1].astype(float)
    return frame


def load_config(root: Path, **overrides: object) -> PipelineConfig:
    base: dict[str, object] = {
        "source": {
            "path": "unused",
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": ["temperature"],
            "future_features": ["holiday"],
            "static_features": ["capacity"],
        },
        "window__lookback": 12,
        "window__horizon": 4,
        "window__calendar": ["hour_of_day"],
    }
    return tiny_config(root, root / "root", **{**base, **overrides})


def assert_same_windows(stored: object, expected: object) -> None:
    for field in ("x", "y", "future", "static", "origin"):
        np.testing.assert_array_equal(getattr(stored, field), getattr(expected, field))
    assert list(stored.series) == list(expected.series)  # type: ignore[attr-defined]


def test_store_holds_the_same_windows_as_memory_across_blocks_and_batches(
    tmp_path: Path,
) -> None:
    frame = load_frame()
    config = load_config(tmp_path)
    uri = validated(tmp_path, frame)
    # Tiny read batches and blocks: series are stitched across batches, split across blocks.
    source = ParquetSeries(uri, column_roles(config, "sensor"), batch_rows=37)
    built = build_or_reuse(config, uri, "fp", "sensor", block_rows=250, source=source)
    assert [b["series"] for b in window_store.read_manifest(built.uri)["blocks"]] == [2, 2]
    expected, _, _ = build_windows(frame, config, "sensor")
    for split in SPLITS:
        assert built.counts[split] == len(expected[split])
        assert_same_windows(read_split(built.uri, split), expected[split])


def test_shards_write_the_same_windows_and_statistics_as_one_pass(tmp_path: Path) -> None:
    frame = load_frame(n_series=5).sort_values(["sensor", "ts"], kind="stable")
    uri = str(tmp_path / "validated.parquet")
    # Row groups of 130 rows: a shard's rows start and end inside row groups.
    storage.write_parquet(pa.Table.from_pandas(frame, preserve_index=False), uri, 130)
    whole = build_or_reuse(load_config(tmp_path / "a"), uri, "fp", "sensor")
    config = load_config(tmp_path / "b", runner__series_per_shard=2)
    # Tiny batches too: a shard's row range starts and ends inside read batches.
    source = ParquetSeries(uri, column_roles(config, "sensor"), batch_rows=37)
    sharded = build_or_reuse(config, uri, "fp", "sensor", block_rows=250, source=source)
    blocks = window_store.read_manifest(sharded.uri)["blocks"]
    assert [(b["part"], b["series"]) for b in blocks] == [(0, 2), (1, 2), (2, 1)]
    for name in ("scaler.json", "layout.json"):  # moments merged in order: bit-identical
        assert (Path(sharded.uri) / name).read_bytes() == (Path(whole.uri) / name).read_bytes()
    expected, _, _ = build_windows(frame, config, "sensor")
    for split in SPLITS:
        assert sharded.counts[split] == whole.counts[split] == len(expected[split])
        assert_same_windows(read_split(sharded.uri, split), expected[split])
    assert not (Path(sharded.uri) / "_shards").exists()
    assert series_row_counts(uri, "sensor") == [200] * 5  # runs that span row groups
    assert verify(sharded.uri) == []


def test_shards_are_contiguous_row_ranges_of_whole_series() -> None:
    shards = make_shards([3, 5, 2, 4, 1], series_per_shard=2)
    assert [(s.first_row, s.rows, s.series) for s in shards] == [(0, 8, 2), (8, 6, 2), (14, 1, 1)]
    assert [s.number for s in shards] == [0, 1, 2]
    with pytest.raises(ValueError, match="series_per_shard"):
        make_shards([3], series_per_shard=0)


def test_classify_windows_round_trip(tmp_path: Path) -> None:
    frame = activity_series(n_series=2, n_steps=400, seed=3).rename(columns={"device": "sensor"})
    config = tiny_config(
        tmp_path,
        tmp_path / "root",
        task="classify",
        source={"path": "u", "series_id": "sensor", "target": ["activity"], "features": ["accel"]},
        window={"lookback": 16, "horizon": 2, "stride": 4},
    )
    built = build_or_reuse(config, validated(tmp_path, frame), "fp", "sensor", block_rows=300)
    expected, _, layout = build_windows(frame, config, "sensor")
    for split in SPLITS:
        assert_same_windows(read_split(built.uri, split), expected[split])
    counts = window_store.label_counts(built.uri, "train")
    np.testing.assert_array_equal(
        counts, np.bincount(expected["train"].y, minlength=len(layout.classes))
    )


def test_manifest_lists_every_file_with_rows_schema_and_checksum(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    built = build_or_reuse(config, validated(tmp_path, load_frame()), "fp-1", "sensor")
    manifest = window_store.read_manifest(built.uri)
    assert set(manifest["files"]) == set(window_store.payload_files(manifest["blocks"]))
    assert {"scaler.json", "layout.json", "series-00000.parquet"} <= set(manifest["files"])
    segments = manifest["files"]["segments-00000.parquet"]
    assert segments["rows"] == 4 * 200 and "inputs" in segments["schema"]
    assert manifest["inputs"]["data_fingerprint"] == "fp-1"
    assert manifest["inputs"]["settings"]["window"]["lookback"] == 12
    assert manifest["counts"] == built.counts
    assert verify(built.uri) == []
    index = Path(built.uri) / "index-00000.parquet"
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index.write_bytes(bytes(data))
    assert verify(built.uri) == [f"{index}: sha256 differs from the manifest"]


def test_unchanged_inputs_reuse_the_published_build(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    uri = validated(tmp_path, load_frame())
    first = build_or_reuse(config, uri, "fp-1", "sensor")
    second = build_or_reuse(config, uri, "fp-1", "sensor")
    assert not first.reused and second.reused
    assert second.uri == first.uri and second.key == first.key
    assert len(list((tmp_path / "root" / "tiny" / "windows" / "builds").iterdir())) == 1
    current = json.loads((tmp_path / "root" / "tiny" / "windows" / "current.json").read_text())
    assert current["key"] == first.key


@pytest.mark.parametrize(
    "change",
    [
        {"data": "fp-2"},
        {"config": {"window__lookback": 8}},
        {"config": {"window__calendar": []}},
        {"config": {"split__val": 0.2}},
        {"config": {"window__normalize": "global"}},
        {"code": "0.1.0+different"},
    ],
    ids=["data", "window", "calendar", "split", "scaler", "code"],
)
def test_any_changed_input_builds_new_windows(tmp_path: Path, change: dict) -> None:
    config = load_config(tmp_path)
    uri = validated(tmp_path, load_frame())
    first = build_or_reuse(config, uri, "fp-1", "sensor")
    changed_config = load_config(tmp_path, **change.get("config", {}))
    second = build_or_reuse(
        changed_config, uri, change.get("data", "fp-1"), "sensor", code=change.get("code")
    )
    assert not second.reused and second.key != first.key and second.uri != first.uri
    assert verify(first.uri) == []  # the earlier windows stay published and whole
    assert build_or_reuse(config, uri, "fp-1", "sensor").reused


def test_a_damaged_build_is_rebuilt(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    uri = validated(tmp_path, load_frame())
    first = build_or_reuse(config, uri, "fp-1", "sensor")
    (Path(first.uri) / "segments-00000.parquet").write_bytes(b"truncated")
    again = build_or_reuse(config, uri, "fp-1", "sensor")
    assert not again.reused and again.uri != first.uri
    assert verify(again.uri) == []


def test_a_flipped_byte_in_a_published_build_is_caught_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 13 #4: reuse checked sizes only, so one flipped byte (same size) in a segment
    # file changed values silently and every later run reused the damaged build.
    config = load_config(tmp_path)
    uri = validated(tmp_path, load_frame())
    first = build_or_reuse(config, uri, "fp-1", "sensor")
    segments = Path(first.uri) / "segments-00000.parquet"
    good = segments.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    segments.write_bytes(bytes(flipped))

    with caplog.at_level("WARNING", logger="seqcast.windows.publish"):
        again = build_or_reuse(config, uri, "fp-1", "sensor")

    assert not again.reused and again.uri != first.uri
    assert f"{segments}: sha256 differs from the manifest" in caplog.text
    assert (Path(again.uri) / "segments-00000.parquet").read_bytes() == good
    assert build_or_reuse(config, uri, "fp-1", "sensor").uri == again.uri  # reused from now


def test_an_unreadable_manifest_is_a_damaged_build(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    uri = validated(tmp_path, load_frame())
    first = build_or_reuse(config, uri, "fp-1", "sensor")
    manifest = Path(first.uri) / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    assert verify(first.uri)[0].startswith(f"{manifest}: unreadable")
    assert not build_or_reuse(config, uri, "fp-1", "sensor").reused


def test_rows_of_a_series_out_of_order_are_refused(tmp_path: Path) -> None:
    frame = load_frame(n_series=2, n_steps=50)
    shuffled = pd.concat([frame.iloc[:20], frame.iloc[50:], frame.iloc[20:50]])
    uri = str(tmp_path / "bad.parquet")
    storage.write_frame(shuffled, uri)
    config = load_config(tmp_path)
    source = ParquetSeries(uri, column_roles(config, "sensor"))
    with pytest.raises(DataContractError, match="'sensor-1' are not contiguous"):
        list(source(light=True))


KILLED_WRITER = """
import sys, time
from pathlib import Path
from seqcast.config import PipelineConfig
from seqcast.windows.series_source import (
    ParquetSeries,
    column_roles,
    make_shards,
    series_row_counts,
)
from seqcast.windows.step import build_or_reuse

config = PipelineConfig.model_validate_json(Path(sys.argv[1]).read_text())
root = Path(config.pipeline_root) / "windows" / "builds"

class SlowSource(ParquetSeries):
    # The table outgrows the machine: once blocks are being written, reading stalls.
    def __call__(self, light=False):
        for rows in super().__call__(light):
            segments = root.glob("*/segments-*.parquet")
            writing = [p for p in segments if (p.parent / "_writer.json").exists()]
            if writing and writing[0].stat().st_size > 0:
                print("WRITING", flush=True)
                time.sleep(600)
            yield rows

source = SlowSource(sys.argv[2], column_roles(config, "sensor"))
build_or_reuse(config, sys.argv[2], "fp-2", "sensor", block_rows=50, source=source)
"""


def test_a_writer_killed_midway_leaves_the_old_windows_and_is_cleaned_up(
    tmp_path: Path,
) -> None:
    config = load_config(tmp_path)
    old = build_or_reuse(config, validated(tmp_path, load_frame()), "fp-1", "sensor")
    new_data = validated(tmp_path, load_frame(seed=2), "validated-2.parquet")
    kill_writer_midway(KILLED_WRITER, tmp_path, config, new_data)
    store = WindowStore(str(tmp_path / "root" / "tiny" / "windows"))
    builds = sorted(p.name for p in (Path(store.root) / "builds").iterdir())
    assert len(builds) == 2  # the published one and the half-written one
    half = next(Path(store.root) / "builds" / b for b in builds if not old.uri.endswith(b))
    assert (half / "_writer.json").exists() and not (half / "manifest.json").exists()
    assert (half / "segments-00000.parquet").stat().st_size > 0
    # Readers still get the old windows, whole.
    current = json.loads((Path(store.root) / "current.json").read_text())
    assert current["key"] == old.key
    assert verify(old.uri) == []
    assert len(read_split(old.uri, "train")) == old.counts["train"]
    # The next run removes the leftover and publishes the new windows.
    rerun = build_or_reuse(config, new_data, "fp-2", "sensor")
    assert not rerun.reused and not half.exists()
    assert sorted(p.name for p in (Path(store.root) / "builds").iterdir()) == sorted(
        [Path(old.uri).name, Path(rerun.uri).name]
    )


def test_cleaning_keeps_live_writers_and_recent_unpublished_builds(tmp_path: Path) -> None:
    store = WindowStore(str(tmp_path / "windows"))
    live = store.begin("a" * 64)  # this process: alive
    dead = store.begin("b" * 64)
    marker = json.loads((Path(dead) / "_writer.json").read_text())
    (Path(dead) / "_writer.json").write_text(json.dumps({**marker, "pid": 2**22 + 1}))
    assert store.clean() == [dead]
    assert Path(live).exists()
    assert store.clean(grace_seconds=-1) == [live]  # past the grace, even a live one goes
