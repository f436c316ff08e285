"""Figure 8's table in benchmarks/README.md, rewritten from results.json between markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- figure-8:start -->", "<!-- figure-8:end -->"
PEERS = ("ed_1nn", "dtw_1nn", "bare_lstm", "bare_gru")


def _cell(value: float | None, best: float) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}"
    return f"**{text}**" if value >= best - 1e-9 else text


def line(result: dict[str, Any]) -> str:
    """One set's outcome on one line (the run's progress output)."""
    peers = ", ".join(f"{p} {result['peers'][p]['accuracy']:.3f}" for p in PEERS)
    if "seqcast" not in result:
        return f"{result['dataset']}: {peers}; seqcast not run"
    seqcast = result["seqcast"]
    verdict = "at or above" if result["at_or_above_best"] else "BELOW"
    return (
        f"{result['dataset']}: seqcast {seqcast['accuracy']:.3f} {seqcast['accuracies']} "
        f"{verdict} the best peer {result['best_peer']} {result['best_peer_accuracy']:.3f} "
        f"({peers}); {result['wall_s']:.0f} s"
    )


KIND_NOTES = {"nearest_neighbour": " (1-NN)", None: " (no champion)"}
"""How a seed's champion is marked in the seeds column (a network is not marked)."""


DISTANCES = {"dtw": "DTW", "euclidean": "ED"}


def _note(run: dict[str, Any]) -> str:
    """A seed's champion mark: "(1-NN ED)" / "(1-NN DTW)" where the run recorded the 1-NN's
    distance (runs from before the distance was chosen say "(1-NN)")."""
    kind = run.get("champion_kind", "network")
    metric = (run.get("nearest") or {}).get("metric")
    if kind == "nearest_neighbour" and metric in DISTANCES:
        return f" (1-NN {DISTANCES[metric]})"
    return KIND_NOTES.get(kind, "")


def _seeds(s: dict[str, Any]) -> str:
    """Each seed's accuracy and, where the champion is not a network, its kind."""
    return ", ".join(f"{r['accuracy']:.3f}{_note(r)}" for r in s["runs"])


def _lengths(r: dict[str, Any]) -> str:
    if r["length_min"] == r["length_max"]:
        return str(r["length_min"])
    return f"{r['length_min']}-{r['length_max']}"


def table(results: dict[str, Any]) -> str:
    """The markdown table: one row per set, the highest accuracy of the row in bold."""
    head = (
        "| dataset | train / test | length | dims | classes | majority share | 1-NN ED | "
        "1-NN DTW | bare LSTM | bare GRU | seqcast (median) | seqcast seeds | at or above best "
        "| seqcast wall (median) | set wall |\n|" + "---|" * 15
    )
    lines = [head]
    for r in results["datasets"].values():
        s = r.get("seqcast")
        values = [r["peers"][p]["accuracy"] for p in PEERS]
        mine = s["accuracy"] if s else None
        best = max(v for v in [*values, mine] if v is not None)
        name = r["dataset"] + (f" (for {r['stands_in_for']})" if r["stands_in_for"] else "")
        seeds = _seeds(s) if s else "-"
        verdict = ("yes" if r["at_or_above_best"] else "NO") if s else "-"
        cells = [
            name,
            f"{r['train']} / {r['test']}",
            _lengths(r),
            str(r["dims"]),
            str(r["classes"]),
            f"{r['majority_share']:.3f}",
            *(_cell(v, best) for v in values),
            _cell(mine, best),
            seeds,
            verdict,
            f"{s['wall_s']:.0f} s" if s else "-",
            f"{r['wall_s']:.0f} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme(results: dict[str, Any]) -> None:
    """Replace the table between the figure-8 markers (the section must exist)."""
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{README}: add the {START} ... {END} markers of the Figure 8 section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    stamp = f"\nResults: `benchmarks/classify/results.json` (updated {results.get('updated')}).\n\n"
    README.write_text(head + START + stamp + table(results) + "\n" + END + tail, encoding="utf-8")
