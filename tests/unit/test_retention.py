"""Retention: GC keeps the champion chain and what it refers to, deletes the rest, and a
GC killed midway leaves every kept object whole for the next one to finish.

Eight simulated nights, each with a raw snapshot, a validated table and its report, a
Data Docs page, a window build, a run folder and a registered version (statistical, so
nothing trains), two days apart; the files' modification times say which night made them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pytest

from seqcast.config import RetentionSpec
from seqcast.io import storage
from seqcast.serving import registry, retention
from seqcast.windows.publish import WindowStore, verify
from seqcast.windows.scaling import Scaler
from seqcast.windows.store import write_plan
from tests.conftest import command_config, forecast_layout, run_cli

NIGHTS = 8
SPEC = RetentionSpec(keep_versions=3, keep_days=5, grace_hours=1)
PROMOTED = (0, 2, 4, 5)
"""Nights whose version became champion; night 5's is rolled back after, so night 4's is
the champion at the end and night 5's an ex-champion."""


def night_age_days(night: int) -> float:
    """Night 7 is half a day old, night 0 fourteen and a half: nights 5-7 are within
    `SPEC.keep_days`."""
    return (NIGHTS - 1 - night) * 2 + 0.5


def set_age(root: str, relative: list[str], days: float) -> None:
    """Give the files under ``root`` named in ``relative`` a modification time ``days`` ago."""
    stamp = time.time() - days * 86400
    fs, base = storage.filesystem(root)
    for name in relative:
        path = f"{base}/{name}"
        if storage.is_local(fs):
            os.utime(path, (stamp, stamp))
        else:  # fsspec's memory store keeps the times on its file objects
            entry = fsspec.filesystem("memory").store[path]
            entry.created = datetime.fromtimestamp(stamp, UTC)
            entry.modified = datetime.fromtimestamp(stamp, UTC)


def files(root: str) -> set[str]:
    fs, base = storage.filesystem(root)
    return {p[len(base) + 1 :] for p in fs.find(base)} if fs.exists(base) else set()


@dataclasses.dataclass
class Nights:
    root: str
    versions: list[str]
    builds: list[str]
    keys: list[str]


def simulate(root: str, monkeypatch: pytest.MonkeyPatch) -> Nights:
    """Eight nights of outputs under ``root`` (see the module docstring)."""
    monkeypatch.setattr(registry, "library_versions", lambda: {})  # no TensorFlow import
    store = WindowStore(storage.join(root, "windows"))
    layout = forecast_layout(4, 2)
    scaler = {"kind": "none", "columns": ["y"], "global_stats": {"mean": [0.0], "std": [1.0]}}
    versions, builds, keys = [], [], []
    seen: set[str] = set()
    for night in range(NIGHTS):
        key = f"{night:02d}" * 32
        tag = key[:16]
        raw = storage.join(root, "raw", f"{tag}-text1")
        storage.write_bytes(storage.join(raw, "data.parquet"), b"r" * 1000)
        storage.write_json(storage.join(raw, "manifest.json"), {"ref": {"fingerprint": key}})
        validated = storage.join(root, "validated", tag, "data.parquet")
        storage.write_bytes(validated, b"v" * 2000)
        page = f"data_docs/validations/suite/__none__/2026010{night}T000000Z/seqcast.html"
        storage.write_bytes(storage.join(root, page), b"<html/>")
        storage.write_json(
            storage.join(root, "validation", tag, "report.json"),
            {"docs_url": f"file:///somewhere/{root.rsplit('/', 1)[-1]}/{page}"},
        )
        build = store.begin(key)
        write_plan(build, layout, Scaler.from_json({**scaler, "series_stats": {}}))
        store.publish(key, build, {"validated_uri": validated}, {"train": 1}, [])
        run = f"run-{night}"
        storage.write_bytes(storage.join(root, "runs", run, "model.keras"), b"m" * 3000)
        version = registry.register_version(
            root,
            None,
            build,
            {"mae": float(night)},
            {"windows": build, "flow_run_id": run},
            kind="seasonal_naive",
            params={"season": 1},
        )
        if night in PROMOTED:
            registry.set_champion(root, version, {"reason": f"night {night}"})
        if night == 5:
            registry.rollback(root)
        versions.append(version)
        builds.append(build.rsplit("/", 1)[-1])
        keys.append(key)
        made = files(root) - seen
        set_age(root, sorted(made), night_age_days(night))
        seen |= made
    # Leftovers: a killed run's checkpoint and a crashed prediction run's staging parts.
    storage.write_bytes(
        storage.join(root, "checkpoints", "2026-01-01-abc", "epoch-00003.npz"), b"c"
    )
    storage.write_bytes(storage.join(root, "checkpoints", "2026-01-01-abc.lock"), b"")
    storage.write_bytes(storage.join(root, "predictions", ".staging-run", "part-0.parquet"), b"p")
    # Two nights of live accuracy: the old night's detail goes, its summary stays.
    for night in ("2026-01-01", "2026-01-09"):
        for name in ("detail.parquet", "summary.json"):
            storage.write_bytes(storage.join(root, "monitor", "live", night, name), b"l")
    made = files(root) - seen
    set_age(root, sorted(made), 10)
    set_age(root, [f"monitor/live/2026-01-09/{n}" for n in ("detail.parquet", "summary.json")], 0)
    return Nights(root, versions, builds, keys)


@pytest.fixture(params=["local", "memory"])
def nights(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Nights:
    root = (
        str(tmp_path / "pipe")
        if request.param == "local"
        else request.getfixturevalue("memory_root")
    )
    return simulate(root, monkeypatch)


def deleted(plan: retention.Plan, kind: str) -> set[str]:
    return {item.uri.rsplit("/", 1)[-1] for item in plan.delete if item.kind == kind}


def test_gc_keeps_the_champion_chain_and_what_it_refers_to_and_deletes_the_rest(
    nights: Nights,
) -> None:
    root, versions = nights.root, nights.versions
    assert registry.champion_chain(root) == [versions[4], versions[2], versions[0]]

    plan = retention.plan(root, SPEC)

    # Kept: the 3 newest (5, 6, 7) and every ex-champion (0, 2, 4 and the rolled-back 5).
    assert deleted(plan, "versions") == {versions[1], versions[3]}
    # What a kept version refers to stays, even when older than keep_days: nights 0 and 2.
    gone = {1, 3}
    assert deleted(plan, "window builds") == {nights.builds[n] for n in gone}
    assert deleted(plan, "runs") == {f"run-{n}" for n in gone}
    assert deleted(plan, "validated tables") == {nights.keys[n][:16] for n in gone}
    assert deleted(plan, "validation reports") == {nights.keys[n][:16] for n in gone}
    assert deleted(plan, "data docs pages") == {f"2026010{n}T000000Z" for n in gone}
    # Raw snapshots are referred to by nothing: all but the recent ones (5, 6, 7) go.
    assert deleted(plan, "raw snapshots") == {f"{nights.keys[n][:16]}-text1" for n in range(5)}
    assert deleted(plan, "checkpoints") == {"2026-01-01-abc"}
    checkpoint = next(i for i in plan.delete if i.kind == "checkpoints")
    assert checkpoint.then == (storage.join(root, "checkpoints", "2026-01-01-abc.lock"),)
    assert deleted(plan, "prediction staging") == {".staging-run"}
    old_detail = storage.join(root, "monitor", "live", "2026-01-01", "detail.parquet")
    assert [i.uri for i in plan.delete if i.kind == "live accuracy details"] == [old_detail]
    kept = {i.uri for i in plan.keep}
    assert storage.join(root, "monitor", "live", "2026-01-01", "summary.json") not in {
        i.uri for i in plan.delete
    }
    assert storage.join(root, "monitor", "live", "2026-01-09", "detail.parquet") in kept
    # A deleted build's key pointer goes first, then its marker; the current build stays.
    build_item = next(i for i in plan.delete if i.kind == "window builds")
    assert build_item.first and build_item.first[0].endswith(".json")
    assert build_item.marker is not None and build_item.marker.endswith("/manifest.json")
    current = storage.read_json(storage.join(root, "windows", "current.json"))["build"]
    assert current.endswith(nights.builds[-1])
    assert plan.bytes == sum(i.bytes for i in plan.delete) > 2 * (3000 + 2000)
    # Versions go before the builds they name, builds before the tables they read.
    order = [retention.KINDS.index(i.kind) for i in plan.delete]
    assert order == sorted(order)


def test_dry_run_deletes_nothing_and_apply_deletes_exactly_the_plan(nights: Nights) -> None:
    root = nights.root
    before = files(root)

    planned = retention.collect(root, SPEC, dry_run=True)
    assert files(root) == before and planned.delete

    applied = retention.collect(root, SPEC)
    after = files(root)
    for item in applied.delete:
        relative = item.uri[len(root) + 1 :]
        assert not any(f == relative or f.startswith(relative + "/") for f in after), item
    for item in applied.keep:
        relative = item.uri[len(root) + 1 :]
        assert any(f == relative or f.startswith(relative + "/") for f in after), item
    assert retention.plan(root, SPEC).delete == []
    assert [v["version"] for v in registry.list_versions(root)] == [
        nights.versions[n] for n in (0, 2, 4, 5, 6, 7)
    ]


def test_the_grace_period_keeps_what_is_being_written(nights: Nights) -> None:
    root = nights.root
    # A build whose writer is at work, and one whose manifest is not written yet, both old
    # enough for keep_days but fresh: neither may go.
    store = WindowStore(storage.join(root, "windows"))
    writing = store.begin("ff" * 32)
    unfinished = storage.join(root, "registry", "versions", "20990101T000000000000Z-00000000")
    storage.write_bytes(storage.join(unfinished, "params.json"), b"{}")
    spec = RetentionSpec(keep_versions=1, keep_days=0, grace_hours=1)

    plan = retention.plan(root, spec)

    kept = {item.uri for item in plan.keep}
    assert writing in kept and unfinished in kept
    assert nights.versions[-1] not in deleted(plan, "versions")  # newest and young
    # Once old, the unfinished version is a crashed write and goes.
    set_age(root, [f"registry/versions/{unfinished.rsplit('/', 1)[-1]}/params.json"], 1)
    assert unfinished in {i.uri for i in retention.plan(root, spec).delete}


def test_a_corrupt_champion_pointer_keeps_every_version(nights: Nights) -> None:
    pointer = storage.join(registry.registry_root(nights.root), "champion.json")
    storage.write_bytes(pointer, b"{")

    plan = retention.plan(nights.root, SPEC)

    assert deleted(plan, "versions") == set()
    assert deleted(plan, "window builds") == set()  # every version keeps its build


class Killed(Exception):
    """The GC process dying at a deletion."""


@pytest.mark.parametrize("after", [1, 2, 5, 9, 13, 20])
def test_gc_killed_midway_leaves_kept_objects_whole_and_the_rerun_finishes(
    nights: Nights, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    root = nights.root
    full = retention.plan(root, SPEC)
    remove = storage.remove
    calls = []

    def dying(uri: str, recursive: bool = False) -> None:
        if len(calls) == after:
            raise Killed(uri)
        calls.append(uri)
        remove(uri, recursive)

    monkeypatch.setattr(storage, "remove", dying)
    with pytest.raises(Killed):
        retention.apply(retention.plan(root, SPEC))
    monkeypatch.setattr(storage, "remove", remove)

    def kept_objects_whole() -> None:
        champion = registry.load_champion(root)
        assert champion.version == nights.versions[4] and champion.params == {"season": 1}
        store = WindowStore(storage.join(root, "windows"))
        for n in (0, 2, 4, 5, 6, 7):
            registry.load_version(root, nights.versions[n])
            assert store.lookup(nights.keys[n]) is not None
            assert storage.exists(
                storage.join(root, "validated", nights.keys[n][:16], "data.parquet")
            )
        for item in full.keep:
            assert item.kind != "window builds" or verify(item.uri) == [], item

    kept_objects_whole()
    rerun = retention.collect(root, SPEC)
    assert rerun.delete  # the kill left work to finish
    kept_objects_whole()
    assert retention.plan(root, SPEC).delete == []
    after_files = files(root)
    for item in full.delete:
        for uri in (item.uri, *item.first, *item.then):
            relative = uri[len(root) + 1 :]
            assert not any(f == relative or f.startswith(relative + "/") for f in after_files)


def test_cli_gc_dry_run_lists_sizes_per_kind_and_deletes_nothing(
    nights: Nights, tmp_path: Path
) -> None:
    if not storage.is_local(storage.filesystem(nights.root)[0]):
        pytest.skip("the CLI runs in another process: a memory store is not shared")
    config = command_config(
        tmp_path, "pipe", tmp_path, retention={"keep_versions": 3, "keep_days": 5}
    )
    before = files(nights.root)

    result = run_cli("gc", "--config", str(config), "--dry-run")

    assert result.returncode == 0, result.output
    assert files(nights.root) == before
    assert "would delete, per kind:" in result.output and "nothing deleted" in result.output
    expected = retention.plan(nights.root, SPEC)
    for kind, (count, size) in expected.by_kind().items():
        line = next(x for x in result.output.splitlines() if x.strip().startswith(kind))
        assert str(count) in line and retention.human_bytes(size) in line
    assert nights.versions[1] in result.output and nights.versions[4] not in result.output
    total = f"{len(expected.delete)} objects, {retention.human_bytes(expected.bytes)}"
    assert total in result.output

    helped = run_cli("gc", "--help")
    assert "--dry-run" in helped.output and "ever champion" in helped.output


def test_human_bytes() -> None:
    assert retention.human_bytes(0) == "0 B"
    assert retention.human_bytes(1536) == "1.5 KiB"
    assert retention.human_bytes(3 * 1024**3) == "3.0 GiB"
