"""The gate: which predictor wins a night's test windows, and whether it becomes champion.

Candidates are the trained network ("model") and the statistical challengers scored on the
same windows ("ets", "seasonal_naive_{season}", "last_value"). The network wins only if it
beats every baseline by the promotion margin; otherwise the most complex statistical
predictor that beats every simpler one by the margin wins (ets > seasonal naive > last
value), and last value wins when nothing beats it. The winner is promoted when it beats
the current comparable champion by the margin, or when there is none, so after the first
run there is always a champion, and never one that lost to last value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from seqcast.modeling.evaluation import is_better

MAJORITY = "majority_class"
CLASSIFIER_FLOORS = ("accuracy", "balanced_accuracy")
"""A classifier must beat the majority class on each of these (by the margin): accuracy
alone passes a model that always answers the majority, macro-F1 alone passed one below
the majority's accuracy (a constant predictor's macro-F1 is tiny)."""

NETWORK = "network"
STATISTICAL_KINDS = ("ets", "seasonal_naive", "last_value")
"""Statistical kinds, most complex first."""
KINDS = (NETWORK, *STATISTICAL_KINDS)


def kind_of_predictor(name: str) -> str | None:
    """The model kind a predictor name in the metrics stands for; None for one that cannot
    be registered (the classifier's majority class, the champion)."""
    if name == "model":
        return NETWORK
    if name.startswith("seasonal_naive_"):
        return "seasonal_naive"
    return name if name in STATISTICAL_KINDS else None


def season_of(name: str) -> int | None:
    """The season of a ``seasonal_naive_{season}`` predictor name."""
    prefix = "seasonal_naive_"
    return int(name[len(prefix) :]) if name.startswith(prefix) else None


@dataclass(frozen=True)
class GateDecision:
    """The night's winner (a predictor name, or None when nothing registrable won), its
    kind, whether it is promoted, and why, in words for the log and the audit entry."""

    winner: str | None
    kind: str | None
    score: float | None
    promote: bool
    reason: str


def _complexity(name: str) -> int:
    kind = kind_of_predictor(name)
    return STATISTICAL_KINDS.index(kind) if kind in STATISTICAL_KINDS else len(STATISTICAL_KINDS)


def choose_winner(
    network: float, baselines: dict[str, float], metric: str, margin: float
) -> tuple[str | None, str]:
    """The winning predictor on the test windows and why.

    Args:
        network: the network's primary metric.
        baselines: every other predictor's primary metric (statistical challengers and,
            for a classifier, the majority class), by name.
        metric: the primary metric's name (says whether lower is better).
        margin: the relative margin a more complex predictor must win by.

    Returns:
        ``("model", reason)`` when the network beats every baseline; else the statistical
        winner's name, or None when there is no statistical candidate (classify).
    """
    lost = [
        (name, value)
        for name, value in baselines.items()
        if not is_better(network, value, metric, margin)
    ]
    if not lost:
        return "model", f"network {metric} {network:.4f} beats every baseline"
    beaten_by = ", ".join(f"{name} ({value:.4f})" for name, value in lost)
    lost_reason = f"network {metric} {network:.4f} does not beat {beaten_by}"
    statistical = sorted(
        (n for n in baselines if kind_of_predictor(n) in STATISTICAL_KINDS), key=_complexity
    )
    for index, name in enumerate(statistical):
        simpler = statistical[index + 1 :]
        if all(is_better(baselines[name], baselines[s], metric, margin) for s in simpler):
            over = f" and beats {', '.join(simpler)}" if simpler else ""
            return name, (
                f"no network beat the baselines ({lost_reason}): {name} "
                f"({metric} {baselines[name]:.4f}) wins{over}"
            )
    return None, lost_reason


def decide(
    network: float,
    baselines: dict[str, float],
    champion: float | None,
    champion_version: str | None,
    metric: str,
    margin: float,
) -> GateDecision:
    """The winner and whether to promote it: it must beat the comparable champion (its
    score on these windows, ``champion``) by ``margin``; with none, it is promoted."""
    winner, reason = choose_winner(network, baselines, metric, margin)
    if winner is None:
        return GateDecision(None, None, None, False, reason)
    score = network if winner == "model" else baselines[winner]
    kind = kind_of_predictor(winner)
    label = "network" if winner == "model" else winner
    if champion is None:
        return GateDecision(winner, kind, score, True, f"{reason}; {label} is champion")
    if is_better(score, champion, metric, margin):
        return GateDecision(
            winner,
            kind,
            score,
            True,
            f"{reason}; {label} beats champion {champion_version} ({champion:.4f}) and is champion",
        )
    return GateDecision(
        winner,
        kind,
        score,
        False,
        f"{reason}; {label} {metric} {score:.4f} does not beat champion {champion_version} "
        f"({champion:.4f}), which stays champion",
    )


def majority_floor(
    model: Mapping[str, float], majority: Mapping[str, float], margin: float
) -> str | None:
    """Why a classifier does not beat the majority class (None when it does): it must beat
    it on every metric of `CLASSIFIER_FLOORS` by ``margin``."""
    lost = [
        f"{metric} {model[metric]:.4f} vs {majority[metric]:.4f}"
        for metric in CLASSIFIER_FLOORS
        if not is_better(model[metric], majority[metric], metric, margin)
    ]
    if not lost:
        return None
    return f"network does not beat the majority class on {', '.join(lost)}"


def decide_classifier(
    scores: Mapping[str, Mapping[str, float]],
    champion_version: str | None,
    metric: str,
    margin: float,
) -> GateDecision:
    """The classifier gate: the network (``scores["model"]``) must beat the majority class
    (``scores["majority_class"]``) on accuracy and on balanced accuracy, then the champion
    (``scores["champion"]``, when there is one) on ``metric``, each by ``margin``.

    A classifier has no statistical fallback: when the network fails, nothing is promoted
    and the champion (if any) stays.
    """
    model = scores["model"]
    refused = majority_floor(model, scores[MAJORITY], margin) if MAJORITY in scores else None
    if refused is not None:
        return GateDecision(None, None, None, False, refused)
    reason = (
        f"network beats the majority class on {' and '.join(CLASSIFIER_FLOORS)} "
        f"({', '.join(f'{m} {model[m]:.4f}' for m in CLASSIFIER_FLOORS)})"
    )
    score = model[metric]
    champion = scores.get("champion")
    if champion is None:
        return GateDecision("model", NETWORK, score, True, f"{reason}; network is champion")
    if is_better(score, champion[metric], metric, margin):
        return GateDecision(
            "model",
            NETWORK,
            score,
            True,
            f"{reason}; {metric} {score:.4f} beats champion {champion_version} "
            f"({champion[metric]:.4f}) and is champion",
        )
    return GateDecision(
        "model",
        NETWORK,
        score,
        False,
        f"{reason}; {metric} {score:.4f} does not beat champion {champion_version} "
        f"({champion[metric]:.4f}), which stays champion",
    )
