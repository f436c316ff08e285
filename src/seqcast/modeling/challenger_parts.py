"""The ETS and AR fits of a window store in parts: groups of contiguous blocks are fitted apart
(one task each, on any runner) and merged into the one document the serial fit writes.

ETS costs about 0.15-0.5 s per series and target on one core, hours at 100,000 series, so
the fit is spread over tasks. Each series lies in exactly one block, so the parts' fits are
disjoint; merged in block order and written with the one JSON encoding of
`seqcast.io.storage` (sorted keys), the document is the same bytes whatever the grouping
and wherever the parts ran. The groups come from the store only (`block_groups`), never
from the runner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from seqcast.io import storage
from seqcast.modeling.autoregressive import ArFit
from seqcast.modeling.challengers import ChallengerFits, fit_challenger_blocks
from seqcast.modeling.statistical import EtsFit
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowLayout

BLOCKS_PER_GROUP = 1
"""Blocks fitted by one task. A block holds about 65,536 rows (`write_part`'s
``block_rows``): some 65 series of 1,000 steps, about 10 s of fitting, so a task's own cost
(a task run, reading the scaler, one part file) is small beside it, and the smallest grain
balances the workers best (a store of 4 blocks spreads over 4 workers, not 1)."""


def block_groups(n_blocks: int, per_group: int = BLOCKS_PER_GROUP) -> list[list[int]]:
    """The store's block numbers in groups of ``per_group`` contiguous blocks, in order.

    Raises:
        ValueError: if ``n_blocks`` is negative or ``per_group`` is not positive.
    """
    if n_blocks < 0:
        raise ValueError(f"`n_blocks` must be 0 or more. Received: n_blocks={n_blocks}")
    if per_group <= 0:
        raise ValueError(f"`per_group` must be a positive integer. Received: {per_group}")
    return [list(range(b, min(b + per_group, n_blocks))) for b in range(0, n_blocks, per_group)]


def fits_json(
    fits: dict[str, dict[str, EtsFit]] | dict[str, dict[str, ArFit]],
) -> dict[str, dict[str, Any]]:
    """``{series: {target_column: fit as JSON}}``: the ``fits`` (ETS) or ``ar_fits`` of a
    challengers document."""
    return {
        series: {column: f.to_json() for column, f in by_target.items()}
        for series, by_target in fits.items()
    }


def fits_of(document: dict[str, Any]) -> ChallengerFits:
    """The fits a challengers document (or part) holds. A document written before AR was a
    challenger has no ``ar_fits``: its AR fits are empty, and forecasting with them says
    to fit the challengers again."""
    return ChallengerFits(
        ets={
            series: {column: EtsFit.from_json(f) for column, f in by_target.items()}
            for series, by_target in document["fits"].items()
        },
        ar={
            series: {column: ArFit.from_json(f) for column, f in by_target.items()}
            for series, by_target in document.get("ar_fits", {}).items()
        },
    )


_FITTING = threading.Lock()
"""One group fits at a time in a process: `fit_ets` silences statsmodels' warnings with
`warnings.catch_warnings`, which swaps process-wide filters (a thread could restore them
while another still fits), and the fits hold the GIL anyway (two threads measured no faster
than one). Processes (Dask workers) fit in parallel."""


def fit_part(
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    blocks: Sequence[int],
    uri: str,
) -> tuple[int, float]:
    """Fit ETS and AR to the series of ``blocks`` and write them as one part at ``uri``.

    The part holds ``blocks``, ``season``, ``seconds`` (the fit's wall time), ``fits`` and
    ``ar_fits`` (as in the challengers document), written atomically, so a retried task
    rewrites it.

    Returns:
        (series fitted, seconds of fitting).
    """
    with _FITTING:
        started = time.perf_counter()
        fits = fit_challenger_blocks(windows_uri, layout, scaler, season, blocks)
        seconds = time.perf_counter() - started
    part = {
        "blocks": list(blocks),
        "season": season,
        "seconds": seconds,
        "fits": fits_json(fits.ets),
        "ar_fits": fits_json(fits.ar),
    }
    storage.write_json(uri, part)
    return len(fits.ets), seconds


def merge_parts(uris: Sequence[str], season: int | None) -> dict[str, Any]:
    """The challengers document (``season``, ``fits``, ``ar_fits``) of the parts at ``uris``.

    Parts are taken in the order of their first block, whatever the order of ``uris``.

    Raises:
        ValueError: if a part was fitted with another season, or two parts hold the same
            series (parts of two different plans in one folder).
    """
    parts = sorted((storage.read_json(uri) | {"uri": uri} for uri in uris), key=_first_block)
    fits: dict[str, dict[str, Any]] = {}
    ar_fits: dict[str, dict[str, Any]] = {}
    for part in parts:
        if part["season"] != season:
            raise ValueError(
                f"challenger part {part['uri']} was fitted with season {part['season']}, "
                f"the plan says {season}: remove the part and fit its blocks again"
            )
        repeated = fits.keys() & part["fits"].keys()
        if repeated:
            raise ValueError(
                f"challenger part {part['uri']} repeats series {sorted(repeated)[:3]} of an "
                "earlier part: each series lies in one block; merge the parts of one plan only"
            )
        fits.update(part["fits"])
        ar_fits.update(part.get("ar_fits", {}))
    return {"season": season, "fits": fits, "ar_fits": ar_fits}


def _first_block(part: dict[str, Any]) -> int:
    return min(part["blocks"], default=-1)
