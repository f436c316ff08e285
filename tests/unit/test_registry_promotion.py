"""Champion promotion is a compare-and-swap: racing runs cannot both win."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from seqcast.serving import registry
from tests.conftest import placeholder_version


def _audit(root: str) -> list[dict]:
    path = Path(registry.registry_root(root)) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_promotion_refuses_when_the_champion_moved(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
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
    assert [e["version"] for e in _audit(root)] == [first, second]


def test_racing_promotions_have_exactly_one_winner(tmp_path: Path) -> None:
    root = str(tmp_path / "pipe")
    versions = [placeholder_version(root, tmp_path, str(i)) for i in range(6)]
    start = threading.Barrier(len(versions))
    winners: list[str] = []
    losers: list[str] = []

    def promote(version: str) -> None:
        start.wait()
        try:
            registry.set_champion(root, version, {"reason": "race"}, expected=None)
            winners.append(version)
        except registry.ChampionChanged:
            losers.append(version)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1 and len(losers) == len(versions) - 1
    assert registry.champion_version(root) == winners[0]
    assert [e["version"] for e in _audit(root) if e["promoted"]] == winners
