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
from seqcast.modeling.challengers import (
    AR,
    ETS,
    FITTED_KINDS,
    ChallengerFits,
    fit_challenger_blocks,
)
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


DOCUMENT_KEYS = {ETS: "fits", AR: "ar_fits"}
"""Where a challengers document (and a part) keeps each fitted kind's fits; a kind the run
did not fit has no key. ETS's ``fits`` predates AR: an ETS version's parameters are
``season`` and ``fits``, as before."""


_FIT_TYPES: dict[str, type[EtsFit] | type[ArFit]] = {ETS: EtsFit, AR: ArFit}


def fits_of(document: dict[str, Any]) -> ChallengerFits:
    """The fits a challengers document (or part) holds; a kind without its key was not
    fitted (`ChallengerFits.kinds`)."""
    fitted = {
        kind: {
            series: {column: _FIT_TYPES[kind].from_json(f) for column, f in by_target.items()}
            for series, by_target in document[key].items()
        }
        for kind, key in DOCUMENT_KEYS.items()
        if key in document
    }
    return ChallengerFits(**fitted)  # type: ignore[arg-type]


def challengers_document(season: int | None, fits: ChallengerFits) -> dict[str, Any]:
    """The challengers document of ``fits`` (``season``, then each fitted kind's fits as
    JSON under its `DOCUMENT_KEYS` key): what the serial fit and the merged parts write."""
    return {
        "season": season,
        **{DOCUMENT_KEYS[kind]: fits_json(getattr(fits, kind)) for kind in fits.kinds},
    }


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
    kinds: Sequence[str] = FITTED_KINDS,
) -> tuple[int, float]:
    """Fit ``kinds`` (ETS, AR) to the series of ``blocks`` and write them as one part at
    ``uri``.

    The part holds ``blocks``, ``season``, ``seconds`` (the fit's wall time) and each kind's
    fits under its `DOCUMENT_KEYS` key (as in the challengers document), written
    atomically, so a retried task rewrites it.

    Returns:
        (series fitted, seconds of fitting).
    """
    with _FITTING:
        started = time.perf_counter()
        fits = fit_challenger_blocks(windows_uri, layout, scaler, season, blocks, kinds)
        seconds = time.perf_counter() - started
    document = challengers_document(season, fits)
    storage.write_json(uri, {"blocks": list(blocks), "seconds": seconds, **document})
    return max((len(getattr(fits, kind)) for kind in fits.kinds), default=0), seconds


def merge_parts(
    uris: Sequence[str], season: int | None, kinds: Sequence[str] = FITTED_KINDS
) -> dict[str, Any]:
    """The challengers document (``season``, then each of ``kinds``' fits under its
    `DOCUMENT_KEYS` key) of the parts at ``uris``.

    Parts are taken in the order of their first block, whatever the order of ``uris``.

    Raises:
        ValueError: if a part was fitted with another season, or two parts hold the same
            series (parts of two different plans in one folder).
    """
    parts = sorted((storage.read_json(uri) | {"uri": uri} for uri in uris), key=_first_block)
    keys = [DOCUMENT_KEYS[kind] for kind in FITTED_KINDS if kind in kinds]
    merged: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in keys}
    for part in parts:
        if part["season"] != season:
            raise ValueError(
                f"challenger part {part['uri']} was fitted with season {part['season']}, "
                f"the plan says {season}: remove the part and fit its blocks again"
            )
        for key in keys:
            if key not in part:
                raise ValueError(
                    f"challenger part {part['uri']} has no {key!r}: it was fitted for other "
                    "challengers than the plan's; remove the part and fit its blocks again"
                )
            repeated = merged[key].keys() & part[key].keys()
            if repeated:
                raise ValueError(
                    f"challenger part {part['uri']} repeats series {sorted(repeated)[:3]} of "
                    "an earlier part: each series lies in one block; merge the parts of one "
                    "plan only"
                )
            merged[key].update(part[key])
    return {"season": season, **merged}


def _first_block(part: dict[str, Any]) -> int:
    return min(part["blocks"], default=-1)
