"""One dataset's result over several seeds: the median of every stochastic entry.

seqcast's network and the bare Keras script both depend on their seed (the bare GRU on
sunspots: test MAE 20.9-22.0 over seeds 0-4), so one seed of either is one draw, not the
method's score. Each seed runs the whole comparison (`seqcast train` with ``model.seed``,
the network peers with the same seed) on the same test windows; the published figure is
the median over seeds of each entry, seqcast's and every peer's alike (ETS and the naive
peers are deterministic: their seeds agree). Each seed's own comparison is kept beside it,
so the single-seed verdicts stay visible.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.real.windows import at_or_below

SEEDS = (0, 1, 2)
"""The seeds figure 7 runs (``model.seed`` for seqcast, Keras' seed for the network peers)."""


def _median(values: list[float | None]) -> float | None:
    """The median of the values present; None when no seed has one."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _seed_summary(seed: int, result: dict[str, Any]) -> dict[str, Any]:
    """What one seed's comparison keeps: seqcast's outcome, every peer and the verdict."""
    return {
        "seed": seed,
        "seqcast": result["seqcast"],
        "peers": result["peers"],
        "best_peer": result["best_peer"],
        "best_peer_mae": result["best_peer_mae"],
        "at_or_below_best": result["at_or_below_best"],
    }


def combine(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The dataset's result over seeds (``per_seed``: seed -> that seed's scored result).

    Keeps the keys of a one-seed result, with medians in place of single values, so the
    report and `benchmarks.run_all` read either; adds ``seeds`` (each seed's comparison).
    ``at_or_below_best`` compares seqcast's median with the lowest peer median.
    """
    if not per_seed:
        raise ValueError("no seed was run")
    results = list(per_seed.values())
    first = results[0]
    peers = {
        name: statistics.median(float(r["peers"][name]) for r in results) for name in first["peers"]
    }
    best = min(peers, key=lambda name: peers[name])
    runs = [r["seqcast"] for r in results]
    kinds = [run["kind"] for run in runs]
    maes = [run["mae"] for run in runs]
    mae = _median(maes)
    seqcast = {
        "mae": mae,
        "maes": maes,
        "kind": kinds[0] if len(set(kinds)) == 1 else "/".join(kinds),
        "kinds": kinds,
        "promoted": all(run["promoted"] for run in runs),
        "model_mae": _median([run["model_mae"] for run in runs]),
        "trials": _median([run["trials"] for run in runs]),
        "wall_s": _median([run["wall_s"] for run in runs]),
        "version": [run["version"] for run in runs],
    }
    return {
        **first,
        "seqcast": seqcast,
        "peers": peers,
        "peer_seeds": {name: [r["peers"][name] for r in results] for name in first["peers"]},
        "best_peer": best,
        "best_peer_mae": peers[best],
        "at_or_below_best": at_or_below(mae, peers[best]),
        "aligned": all(r["aligned"] for r in results),
        "seeds": [_seed_summary(seed, r) for seed, r in per_seed.items()],
    }
