"""Registry faults tried from outside (docs/faults.md): version ids that climb out of the
registry, retried registrations, a kill between the champion swap and its audit line, and
a truncated champion pointer. The CLI runs in a subprocess as an operator runs it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from seqcast.errors import RegistryError
from seqcast.io import storage
from seqcast.serving import registry
from tests.conftest import command_config, kill_when_writing, placeholder_version, run_cli


def pipeline(tmp_path: Path) -> tuple[str, Path]:
    """A pipeline root and a config file naming it (the models commands read no data)."""
    data_root = tmp_path / "data"
    config = command_config(tmp_path, "faults", data_root, window={"lookback": 4, "horizon": 2})
    return str(data_root / "faults"), config


# 2. Path traversal through version names.


def test_cli_refuses_a_version_id_that_climbs_out_of_the_registry(tmp_path: Path) -> None:
    root, config = pipeline(tmp_path)
    real = placeholder_version(root, tmp_path, "a")
    # A self-consistent version outside the registry: a copy of a real one.
    outside = tmp_path / "elsewhere" / "fakever"
    shutil.copytree(registry.version_uri(root, real), outside)
    climb = os.path.relpath(outside, Path(registry.registry_root(root)) / "versions")

    result = run_cli("models", "promote", climb, "--config", str(config))

    assert result.returncode == 1, result.output
    assert f"{climb!r} is not a model version id" in result.output
    assert not Path(registry.registry_root(root), "champion.json").exists()


def test_a_pointer_or_audit_line_naming_a_path_is_refused(tmp_path: Path) -> None:
    root, config = pipeline(tmp_path)
    real = placeholder_version(root, tmp_path, "a")
    registry.set_champion(root, real, {"reason": "first"})
    pointer = Path(registry.registry_root(root), "champion.json")
    pointer.write_text(json.dumps({"version": "../../../elsewhere/fakever", "previous": []}))

    listed = run_cli("models", "list", "--config", str(config))

    assert listed.returncode == 1
    assert str(pointer) in listed.output and "not a model version id" in listed.output
    audit = Path(registry.registry_root(root), "audit.jsonl")
    audit.write_text(json.dumps({"version": "../x", "promoted": True}) + "\n")
    with pytest.raises(RegistryError, match=r"audit.jsonl line 1: '../x' is not a model"):
        registry.read_audit(root)


def test_a_version_directory_linked_outside_the_registry_is_refused(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
    real = placeholder_version(root, tmp_path, "a")
    outside = tmp_path / "elsewhere"
    shutil.copytree(registry.version_uri(root, real), outside)
    linked = "20990101T000000000000Z-0000beef"
    os.symlink(outside, Path(registry.registry_root(root), "versions", linked))

    with pytest.raises(RegistryError, match="resolves outside the registry"):
        registry.set_champion(root, linked, {"reason": "linked"})
    assert [row["version"] for row in registry.list_versions(root)] == [real]


# 7. Register retries are not idempotent.


def _windows(tmp_path: Path) -> str:
    windows = tmp_path / "windows"
    windows.mkdir(exist_ok=True)
    (windows / "scaler.json").write_text("{}")
    (windows / "layout.json").write_text("{}")
    return str(windows)


def test_a_retried_registration_finds_the_version_it_wrote(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
    model = tmp_path / "model.keras"
    model.write_bytes(b"weights")
    windows = _windows(tmp_path)

    def network(run: str) -> str:
        return registry.register_version(root, str(model), windows, {}, {"flow_run_id": run})

    def ets(run: str) -> str:
        return registry.register_version(
            root, None, windows, {}, {"flow_run_id": run}, kind="ets", params={"season": 7}
        )

    first, statistical = network("run-1"), ets("run-1")
    assert network("run-1") == first  # the retry after a transient error
    assert ets("run-1") == statistical
    assert len({first, statistical, network("run-2")}) == 3  # another run is another version
    assert len(registry.list_versions(root)) == 3

    # A retried promotion of the version that already is champion changes nothing.
    registry.set_champion(root, first, {"reason": "won"}, expected=None)
    registry.set_champion(root, first, {"reason": "won"}, expected=None)
    assert registry.champion_version(root) == first
    assert [e["version"] for e in registry.read_audit(root)] == [first]


# 8. The audit log is not crash-consistent.

KILLED_MIDWAY = """
    import sys, time
    from seqcast.io import cas, storage
    from seqcast.serving import registry

    root, version, point = sys.argv[1:4]
    if point == "audit":  # killed as the audit line is being appended
        def append_line(uri, line):
            print("WRITING", flush=True)
            time.sleep(600)
        cas.append_line = append_line
    else:  # killed right after the champion pointer was written
        write_bytes = storage.write_bytes
        def written(uri, data, **options):
            write_bytes(uri, data, **options)
            if uri.endswith("champion.json"):
                print("WRITING", flush=True)
                time.sleep(600)
        storage.write_bytes = written
    registry.set_champion(root, version, {"reason": "killed"})
"""


@pytest.mark.parametrize("point", ["audit", "pointer"])
def test_a_kill_during_promotion_never_leaves_an_unaudited_champion(
    tmp_path: Path, point: str
) -> None:
    root = str(tmp_path / "pipe")
    first = placeholder_version(root, tmp_path, "a")
    second = placeholder_version(root, tmp_path, "b")
    registry.set_champion(root, first, {"reason": "first"})
    kill_when_writing(KILLED_MIDWAY, tmp_path, root, second, point)

    champion = registry.champion_version(root)
    audited = [e for e in registry.read_audit(root) if e["promoted"]]
    assert champion in (first, second)
    assert any(e["version"] == champion for e in audited), f"{champion} unaudited: {audited}"
    if champion == second:  # the swap landed: its line says which pointer it wrote
        since = json.loads(Path(registry.registry_root(root), "champion.json").read_text())
        assert audited[-1]["version"] == second and audited[-1]["since"] == since["since"]


# 9. A corrupt champion.json.


def test_a_truncated_pointer_is_named_and_promote_rebuilds_it(tmp_path: Path) -> None:
    root, config = pipeline(tmp_path)
    first, second, third = (placeholder_version(root, tmp_path, tag) for tag in "abc")
    registry.set_champion(root, first, {"reason": "first"})
    registry.set_champion(root, second, {"reason": "second"})
    pointer = Path(registry.registry_root(root), "champion.json")
    pointer.write_bytes(pointer.read_bytes()[:20])  # truncated, as a crash or full disk left it

    listed = run_cli("models", "list", "--config", str(config))
    assert listed.returncode == 1
    assert f"{pointer} is corrupt" in listed.output and "models promote" in listed.output
    assert "Traceback" not in listed.output

    promoted = run_cli("models", "promote", third, "--config", str(config))
    assert promoted.returncode == 0, promoted.output
    rebuilt = json.loads(pointer.read_text())
    assert rebuilt["version"] == third and rebuilt["previous"] == [second, first]

    pointer.write_text("{")
    rolled = run_cli("models", "rollback", "--config", str(config))
    assert rolled.returncode == 0, rolled.output
    assert registry.champion_version(root) == second  # rebuilt from the audit, then back one


def test_pointer_writes_are_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path / "pipe")
    version = placeholder_version(root, tmp_path, "a")
    pointer = Path(registry.registry_root(root), "champion.json")
    synced: list[tuple[str, bool]] = []
    fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), pointer.exists()))
        fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", recording)
    registry.set_champion(root, version, {"reason": "first"})

    temps = [path for path, _ in synced if ".tmp-" in path and path.endswith("champion.json")]
    assert temps, synced
    assert all(not visible for path, visible in synced if path in temps)  # before the rename
    assert any(path.endswith("audit.jsonl") for path, _ in synced)
