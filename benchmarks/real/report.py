"""Figure 7's table in benchmarks/README.md, rewritten from results.json between markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.real.windows import at_or_below

README = Path(__file__).parent.parent / "README.md"
CONFIGS = Path(__file__).parent / "configs"
START, END = "<!-- figure-7:start -->", "<!-- figure-7:end -->"
COMMAND = (
    "make bench  # or: python -m benchmarks.real.run [--dataset NAME] [--seeds N]"
    "  (3 seeds: ~20 min on 2 cores)"
)
PENDING = (
    "No published run yet: the configs use calendar frequencies (`MS`, `QS`, `YS`, integer "
    "years),\nwhich the flow reads once issue 12's calendar work is merged. Until then "
    "`--smoke` runs the\nharness on a fixed-duration stand-in and publishes nothing."
)
PEERS = [
    "bare_lstm",
    "bare_gru",
    "darts_lstm",
    "darts_gru",
    "ets",
    "seasonal_naive",
    "last_value",
]


def _by_peer(mapping: dict[str, Any], name: str) -> Any:
    """``mapping``'s entry for peer ``name``; ``seasonal_naive`` matches the results' key
    that carries the season (``seasonal_naive_12``). None when the run had no such peer."""
    for key, value in mapping.items():
        if key == name or (name == "seasonal_naive" and key.startswith("seasonal_naive_")):
            return value
    return None


def _peer(result: dict[str, Any], name: str) -> float | None:
    value = _by_peer(result["peers"], name)
    return None if value is None else float(value)


def _seed_values(result: dict[str, Any], name: str) -> list[float]:
    """Each seed's MAE of one entry (``seqcast`` or a peer); empty for a one-seed result."""
    if name == "seqcast":
        return [v for v in result["seqcast"].get("maes", []) if v is not None]
    values = _by_peer(result.get("peer_seeds", {}), name)
    return [] if values is None else [float(v) for v in values]


def _cell(value: float | None, best: float | None = None, seeds: list[float] | None = None) -> str:
    """The value (bold when the row's lowest) and, where the seeds differ, their range."""
    if value is None:
        return "-"
    text = f"{value:.4g}"
    text = f"**{text}**" if best is not None and at_or_below(value, best) else text
    if seeds and max(seeds) - min(seeds) > 1e-9 * max(1.0, abs(value)):
        text += f" ({min(seeds):.4g}-{max(seeds):.4g})"
    return text


def line(result: dict[str, Any]) -> str:
    """One dataset's outcome on one line (the run's progress output)."""
    seqcast = result["seqcast"]
    verdict = "at or below" if result["at_or_below_best"] else "ABOVE"
    median = " (median)" if "seeds" in result else ""
    return (
        f"{result['dataset']}: seqcast {seqcast['kind']} MAE{median} {seqcast['mae']} {verdict} "
        f"the best peer {result['best_peer']} {result['best_peer_mae']:.4g}; "
        f"{seqcast['wall_s']:.0f} s, trials {seqcast['trials']}"
    )


def table(results: dict[str, Any]) -> str:
    """The markdown table: one row per dataset, the lowest MAE of the row in bold."""
    head = (
        "| dataset | kind | series x rows | test windows | seqcast champion | seqcast MAE | "
        "bare LSTM | bare GRU | Darts-style LSTM | Darts-style GRU | ETS | seasonal naive | "
        "last value | at or below best | trials | nightly wall |\n|" + "---|" * 16
    )
    lines = [head]
    for name, r in results["datasets"].items():
        s = r["seqcast"]
        values = [s["mae"], *(_peer(r, p) for p in PEERS)]
        best = min(v for v in values if v is not None)
        trials = "-" if s["trials"] is None else str(s["trials"])
        cells = [
            _cell(v, best, _seed_values(r, name))
            for v, name in zip(values, ["seqcast", *PEERS], strict=True)
        ]
        if s["mae"] is None:  # no champion: show what the trained network scored
            cells[0] = f"- (network {s['model_mae']:.4g})"
        lines.append(
            f"| {name} ({r['origin']}) | {r['kind']} | {r['series']} x {r['rows'] // r['series']}"
            f" | {r['test_windows']} | {s['kind']}{'' if s['promoted'] else ' (none promoted)'}"
            f" | {' | '.join(cells)}"
            f" | {'yes' if r['at_or_below_best'] else 'NO'} | {trials} | {s['wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def seeds_table(results: dict[str, Any]) -> str:
    """Each seed's own comparison: seqcast's champion and MAE against that seed's best peer."""
    rows = {name: r["seeds"] for name, r in results["datasets"].items() if r.get("seeds")}
    if not rows:
        return ""
    seeds = sorted({run["seed"] for runs in rows.values() for run in runs})
    lines = [
        "Each seed on its own (seqcast's champion and MAE; that seed's best peer; at or below):",
        "",
        "| dataset | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for name, runs in rows.items():
        by_seed = {run["seed"]: run for run in runs}
        cells = []
        for seed in seeds:
            run = by_seed.get(seed)
            if run is None or run["seqcast"]["mae"] is None:
                cells.append("-")
                continue
            mark = "yes" if run["at_or_below_best"] else "NO"
            cells.append(
                f"{run['seqcast']['kind']} {run['seqcast']['mae']:.4g} vs "
                f"{run['best_peer']} {run['best_peer_mae']:.4g}: {mark}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def datasets_table() -> str:
    """The datasets and their configs' window settings (why each: the config's comment)."""
    from benchmarks.real.datasets import DATASETS

    lines = [
        "| dataset | from | kind | frequency | lookback | horizon | season |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in DATASETS.items():
        config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text(encoding="utf-8"))
        source, window = config["source"], config["window"]
        unit = f" ({source['time_unit']})" if source.get("time_unit") else ""
        season = config.get("evaluate", {}).get("season") or "-"
        lines.append(
            f"| {name} | {d.origin} | {d.kind} | {source['frequency']}{unit} | "
            f"{window['lookback']} | {window['horizon']} | {season} |"
        )
    return "\n".join(lines)


def section(results: dict[str, Any]) -> str:
    """The README section, markers included."""
    machine = results.get("machine", {})
    outcome = table(results) if results["datasets"] else PENDING
    per_seed = seeds_table(results)
    outcome += f"\n\n{per_seed}" if per_seed else ""
    seeds = results.get("seeds")
    seeding = (
        f"seqcast (`model.seed`) and the network peers (Keras' seed) run once per seed, seeds "
        f"{', '.join(map(str, seeds))},\non the same windows; each cell is the median over "
        "the seeds, with their range in parentheses\nwhere they differ (ETS and the naive "
        'peers are deterministic), and "at or below best" compares\nmedians. '
        if seeds and len(seeds) > 1
        else ""
    )
    return (
        f"{START}\n## Figure 7: real data\n\n"
        "seqcast with no model settings (only columns, frequency, lookback, horizon and season:\n"
        "`benchmarks/real/configs/`) against the bare Keras script (LSTM/GRU 64, batch 32, 20 "
        "epochs,\nz-scored on the training rows), a Darts-style block RNN (the defaults of Darts'\n"
        "`BlockRNNModel` rebuilt in Keras: LSTM/GRU 25, batch 32, 100 epochs, min-max scaled on "
        "the\ntraining rows), ETS (additive damped trend, additive season, "
        "fitted on the\nrows before the test part, parameters fixed from each origin), seasonal "
        "naive and last value,\nall on exactly seqcast's test windows (the last 20% of each "
        "series; every window whose\ntargets all lie there). MAE in original units; bold: the "
        f"lowest of the row. {seeding}The nightly wall (median) is\n`seqcast train` end to end "
        "(Prefect start-up, "
        "ingest, validation, windows, every trial,\nevaluation, registration) on "
        f"{machine.get('cpus', '?')} cores; results in `benchmarks/real/results.json`"
        f" (updated {results.get('updated', '?')}).\n\n"
        f"```bash\n{COMMAND}\n```\n\n{datasets_table()}\n\n"
        f"{outcome}\n{END}\n"
    )


def write_readme(results: dict[str, Any], readme: Path = README) -> None:
    """Replace the section between the markers (append it the first time)."""
    text = readme.read_text(encoding="utf-8")
    new = section(results)
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + new + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    readme.write_text(text, encoding="utf-8")
