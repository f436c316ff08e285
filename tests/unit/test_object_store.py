"""Object-store data roots: writes are single PUTs, publishes are pointer writes, and the
champion pointer is a real compare-and-swap on S3 (a moto server on a loopback port)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest

from seqcast.config import PipelineConfig
from seqcast.io import cas, storage
from seqcast.serving import registry
from seqcast.windows.publish import WindowStore, verify
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import BlockWriter, read_split
from tests.conftest import kill_writer_midway, placeholder_version, tiny_config
from tests.object_store import every_file
from tests.unit.test_window_store import load_frame


def test_files_round_trip_and_no_temporary_names(object_root: str) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "y": [1.5, 2.5]})
    storage.write_frame(frame, storage.join(object_root, "t", "frame.parquet"))
    storage.write_json(storage.join(object_root, "t", "doc.json"), {"k": [1, 2]})

    back = storage.read_parquet(storage.join(object_root, "t", "frame.parquet")).to_pandas()
    pd.testing.assert_frame_equal(back, frame)
    assert storage.read_json(storage.join(object_root, "t", "doc.json")) == {"k": [1, 2]}
    assert storage.listdir(storage.join(object_root, "t")) == ["doc.json", "frame.parquet"]
    with storage.local_copy(storage.join(object_root, "t", "doc.json"), ".json") as path:
        assert json.loads(Path(path).read_text()) == {"k": [1, 2]}
    assert not Path(path).exists()  # the temporary copy is gone
    # Straight to the target: no temporary sibling was ever created, so none is left.
    assert every_file(object_root) == ["t/doc.json", "t/frame.parquet"]


def test_a_write_that_fails_midway_leaves_the_old_object(object_root: str) -> None:
    uri = storage.join(object_root, "data.bin")
    storage.write_bytes(uri, b"old")
    with pytest.raises(RuntimeError, match="disk full"), storage.atomic_writer(uri) as handle:
        handle.write(b"half of the n")
        raise RuntimeError("disk full")
    assert storage.read_bytes(uri) == b"old"
    assert every_file(object_root) == ["data.bin"]


def test_s3_swap_retries_after_a_competing_write(s3_root: str) -> None:
    """The conditional PUT is real: a write between read and replace makes S3 refuse it."""
    uri = storage.join(s3_root, "pointer.json")
    storage.write_bytes(uri, b"v1")
    seen: list[bytes | None] = []

    def change(current: bytes | None) -> bytes:
        seen.append(current)
        if len(seen) == 1:
            storage.write_bytes(uri, b"v2 from another run")  # lands between read and PUT
        return (current or b"") + b"+mine"

    assert cas.swap(uri, change) == b"v2 from another run+mine"
    assert seen == [b"v1", b"v2 from another run"]
    assert storage.read_bytes(uri) == b"v2 from another run+mine"


def test_s3_swap_creates_only_if_still_absent(s3_root: str) -> None:
    uri = storage.join(s3_root, "new.json")
    seen: list[bytes | None] = []

    def change(current: bytes | None) -> bytes:
        seen.append(current)
        if len(seen) == 1:
            storage.write_bytes(uri, b"created meanwhile")
        return b"mine"

    cas.swap(uri, change)
    assert seen == [None, b"created meanwhile"]


def test_champion_cas_refuses_a_stale_expected(object_root: str, tmp_path: Path) -> None:
    root = storage.join(object_root, "pipe")
    first, second = (
        placeholder_version(root, tmp_path, "a"),
        placeholder_version(root, tmp_path, "b"),
    )
    registry.set_champion(root, first, {"reason": "first"}, expected=None)
    with pytest.raises(registry.ChampionChanged, match=f"champion is now '{first}'"):
        registry.set_champion(root, second, {"reason": "stale"}, expected=None)
    assert registry.champion_version(root) == first

    registry.set_champion(root, second, {"reason": "fresh"}, expected=first)
    assert registry.champion_version(root) == second
    assert registry.rollback(root) == first
    assert [e["version"] for e in registry.read_audit(root)] == [first, second, first]


def test_racing_promotions_have_exactly_one_winner(object_root: str, tmp_path: Path) -> None:
    root = storage.join(object_root, "pipe")
    versions = [placeholder_version(root, tmp_path, str(i)) for i in range(4)]
    start = threading.Barrier(len(versions))
    winners: list[str] = []

    def promote(version: str) -> None:
        start.wait()
        try:
            registry.set_champion(root, version, {"reason": "race"}, expected=None)
            winners.append(version)
        except registry.ChampionChanged:
            pass

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert registry.champion_version(root) == winners[0]
    assert [e["version"] for e in registry.read_audit(root)] == winners


def test_a_version_without_its_manifest_does_not_exist(object_root: str, tmp_path: Path) -> None:
    root = storage.join(object_root, "pipe")
    whole = placeholder_version(root, tmp_path, "a")
    # A writer that died after the payload, before the manifest (the commit point).
    dead = "20990101T000000000000Z-0000dead"
    storage.write_bytes(storage.join(registry.version_uri(root, dead), "model.keras"), b"x")
    assert [v["version"] for v in registry.list_versions(root)] == [whole]
    with pytest.raises(registry.RegistryError, match="no model version"):
        registry.set_champion(root, dead, {}, expected=None)


def _config(tmp_path: Path, data_root: str) -> PipelineConfig:
    """The window-store tests' pipeline, with its data root on the object store."""
    return tiny_config(
        tmp_path,
        data_root,  # type: ignore[arg-type]
        source={
            "path": "unused",
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": ["temperature"],
            "future_features": ["holiday"],
            "static_features": ["capacity"],
        },
        window__lookback=12,
        window__horizon=4,
        window__calendar=["hour_of_day"],
    )


def _validated(root: str, seed: int, name: str) -> str:
    uri = storage.join(root, name)
    storage.write_frame(load_frame(seed=seed).sort_values(["sensor", "ts"], kind="stable"), uri)
    return uri


def _pointer_files(store: WindowStore) -> dict[str, bytes]:
    return {
        name: storage.read_bytes(storage.join(store.root, name))
        for name in storage.listdir(store.root)
        if name.endswith(".json")
    }


def _assert_readers_see_whole_builds(store: WindowStore) -> None:
    for name, data in _pointer_files(store).items():
        build = storage.join(store.root, json.loads(data)["build"])
        assert verify(build) == [], f"{name} points at an incomplete build"


def test_a_failed_window_write_leaves_the_published_build(
    object_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, object_root)
    old = build_or_reuse(config, _validated(object_root, 1, "v1.parquet"), "fp-1", "sensor")
    store = WindowStore(storage.join(config.pipeline_root, "windows"))
    published = _pointer_files(store)
    write = BlockWriter.write
    written: list[int] = []

    def fail_after_two_blocks(self: BlockWriter, block: object) -> None:
        if len(written) == 2:
            # A reader arriving now, mid-write, still gets the old, whole windows.
            assert _pointer_files(store) == published
            _assert_readers_see_whole_builds(store)
            raise OSError("connection reset while writing block 3")
        write(self, block)  # type: ignore[arg-type]
        written.append(1)

    monkeypatch.setattr(BlockWriter, "write", fail_after_two_blocks)
    new_data = _validated(object_root, 2, "v2.parquet")
    with pytest.raises(OSError, match="block 3"):
        build_or_reuse(config, new_data, "fp-2", "sensor", block_rows=50)

    assert _pointer_files(store) == published
    assert verify(old.uri) == []
    assert len(read_split(old.uri, "train")) == old.counts["train"]
    assert storage.listdir(storage.join(store.root, "builds")) == [old.uri.rsplit("/", 1)[-1]]
    monkeypatch.setattr(BlockWriter, "write", write)
    rerun = build_or_reuse(config, new_data, "fp-2", "sensor", block_rows=50)
    assert not rerun.reused and verify(rerun.uri) == []
    _assert_readers_see_whole_builds(store)
    assert not [f for f in every_file(object_root) if ".tmp-" in f or ".staging-" in f]


KILLED_WRITER = """
import sys, time
from pathlib import Path
from seqcast.config import PipelineConfig
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import BlockWriter

config = PipelineConfig.model_validate_json(Path(sys.argv[1]).read_text())
write = BlockWriter.write
done = []

def stall_after_two_blocks(self, block):
    if len(done) == 2:
        print("WRITING", flush=True)
        time.sleep(600)
    write(self, block)
    done.append(1)

BlockWriter.write = stall_after_two_blocks
build_or_reuse(config, sys.argv[2], "fp-2", "sensor", block_rows=50)
"""


def test_a_writer_killed_midway_on_s3_is_cleaned_up_next_run(s3_root: str, tmp_path: Path) -> None:
    config = _config(tmp_path, s3_root)
    old = build_or_reuse(config, _validated(s3_root, 1, "v1.parquet"), "fp-1", "sensor")
    store = WindowStore(storage.join(config.pipeline_root, "windows"))
    published = _pointer_files(store)
    new_data = _validated(s3_root, 2, "v2.parquet")
    kill_writer_midway(KILLED_WRITER, tmp_path, config, new_data)
    builds = storage.listdir(storage.join(store.root, "builds"))
    assert len(builds) == 2  # the published one and the killed writer's
    half = next(b for b in builds if not old.uri.endswith(b))
    leftover = storage.listdir(storage.join(store.root, "builds", half))
    assert "_writer.json" in leftover and "manifest.json" not in leftover  # never committed
    assert _pointer_files(store) == published
    _assert_readers_see_whole_builds(store)
    assert len(read_split(old.uri, "train")) == old.counts["train"]

    rerun = build_or_reuse(config, new_data, "fp-2", "sensor")
    assert not rerun.reused
    assert storage.listdir(storage.join(store.root, "builds")) == sorted(
        [old.uri.rsplit("/", 1)[-1], rerun.uri.rsplit("/", 1)[-1]]
    )
    _assert_readers_see_whole_builds(store)
