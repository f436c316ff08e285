"""The gate: which predictor wins a night's test windows, and whether it becomes champion.

Candidates are the trained network ("model") and the statistical challengers scored on the
same windows ("ets", "ar", "seasonal_naive_{season}", "last_value"). The network wins only
if it beats every baseline by the promotion margin; otherwise the most complex statistical
predictor that beats every simpler one by the margin wins (ets and ar > seasonal naive >
last value; of ets and ar, the one with the better score is tried first, since neither is
the simpler), and last value wins when nothing beats it. The winner is promoted when it beats
the current comparable champion by the margin, or when there is none, so after the first
run there is always a champion, and never one that lost to last value.

A whole-sequence classifier (`decide_classifier`) has the 1-NN ("nearest_neighbour") as its
challenger: each candidate must beat the majority class on accuracy and balanced accuracy;
of those that do, the network wins unless the 1-NN beats it on the primary metric by the
margin (the network is what the user configured and its prediction cost does not grow with the
training set; on a tie it stays), and the winner is promoted as above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from seqcast.modeling.evaluation import HIGHER_IS_BETTER, is_better

MAJORITY = "majority_class"
CLASSIFIER_FLOORS = ("accuracy", "balanced_accuracy")
"""A classifier must beat the majority class on each of these (by the margin): accuracy
alone passes a model that always answers the majority, macro-F1 alone passed one below
the majority's accuracy (a constant predictor's macro-F1 is tiny)."""

NETWORK = "network"
_COMPLEXITY = {"ets": 0, "ar": 0, "seasonal_naive": 1, "last_value": 2}
"""Rank of each statistical kind, most complex (0) first: a predictor must beat those of a
higher rank by the margin to win over them."""
STATISTICAL_KINDS = tuple(_COMPLEXITY)
"""Statistical kinds, most complex first (ets and ar alike)."""
NEAREST = "nearest_neighbour"
"""The whole-sequence classifier's challenger: predictor name and kind alike."""
KINDS = (NETWORK, *STATISTICAL_KINDS, NEAREST)


def kind_of_predictor(name: str) -> str | None:
    """The model kind a predictor name in the metrics stands for; None for one that cannot
    be registered (the classifier's majority class, the champion)."""
    if name == "model":
        return NETWORK
    if name.startswith("seasonal_naive_"):
        return "seasonal_naive"
    return name if name in (*STATISTICAL_KINDS, NEAREST) else None


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
    return _COMPLEXITY[kind] if kind in _COMPLEXITY else len(STATISTICAL_KINDS)


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
    statistical = _ranked(baselines, metric)
    for name in statistical:
        simpler = [s for s in statistical if _complexity(s) > _complexity(name)]
        if all(is_better(baselines[name], baselines[s], metric, margin) for s in simpler):
            over = f" and beats {', '.join(simpler)}" if simpler else ""
            return name, (
                f"no network beat the baselines ({lost_reason}): {name} "
                f"({metric} {baselines[name]:.4f}) wins{over}"
            )
    return None, lost_reason


def _ranked(baselines: dict[str, float], metric: str) -> list[str]:
    """The statistical predictors among ``baselines``, most complex first, and the better
    score first among equally complex ones (ets and ar)."""
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0

    def order(name: str) -> tuple[int, bool, float]:
        score = baselines[name]
        finite = math.isfinite(score)
        return _complexity(name), not finite, sign * score if finite else 0.0  # NaN last

    return sorted((n for n in baselines if kind_of_predictor(n) in STATISTICAL_KINDS), key=order)


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
    model: Mapping[str, float],
    majority: Mapping[str, float],
    margin: float,
    label: str = "network",
) -> str | None:
    """Why a classifier (``label``) does not beat the majority class (None when it does): it
    must beat it on every metric of `CLASSIFIER_FLOORS` by ``margin``."""
    lost = [
        f"{metric} {model[metric]:.4f} vs {majority[metric]:.4f}"
        for metric in CLASSIFIER_FLOORS
        if not is_better(model[metric], majority[metric], metric, margin)
    ]
    if not lost:
        return None
    return f"{label} does not beat the majority class on {', '.join(lost)}"


def _classifier_winner(
    scores: Mapping[str, Mapping[str, float]], metric: str, margin: float
) -> tuple[str | None, str]:
    """The network or the 1-NN (see the module docstring), with why; None when neither
    beats the majority class."""
    names = {"model": "network", NEAREST: "1-NN"}
    passed: list[str] = []
    refusals: list[str] = []
    for name, label in names.items():
        if name not in scores:
            continue
        refused = (
            majority_floor(scores[name], scores[MAJORITY], margin, label)
            if MAJORITY in scores
            else None
        )
        if refused is None:
            passed.append(name)
        else:
            refusals.append(refused)
    floors = " and ".join(CLASSIFIER_FLOORS)
    if not passed:
        return None, "; ".join(refusals)
    if passed == ["model", NEAREST]:
        network, nearest = scores["model"][metric], scores[NEAREST][metric]
        both = f"network and 1-NN beat the majority class on {floors}"
        if is_better(nearest, network, metric, margin):
            return NEAREST, f"{both}; 1-NN {metric} {nearest:.4f} beats network {network:.4f}"
        return "model", (
            f"{both}; network {metric} {network:.4f} is not beaten by 1-NN {nearest:.4f}"
        )
    name = passed[0]
    values = ", ".join(f"{m} {scores[name][m]:.4f}" for m in CLASSIFIER_FLOORS)
    reason = f"{names[name]} beats the majority class on {floors} ({values})"
    return name, "; ".join([*refusals, reason])


def decide_classifier(
    scores: Mapping[str, Mapping[str, float]],
    champion_version: str | None,
    metric: str,
    margin: float,
) -> GateDecision:
    """The classifier gate: the network (``scores["model"]``) and the 1-NN
    (``scores["nearest_neighbour"]``, when scored) must beat the majority class
    (``scores["majority_class"]``) on accuracy and on balanced accuracy; the network wins
    unless the 1-NN beats it on ``metric`` by ``margin``; the winner must beat the champion
    (``scores["champion"]``, when there is one) by ``margin``.

    When neither passes the floors nothing is promoted and the champion (if any) stays.
    """
    winner, reason = _classifier_winner(scores, metric, margin)
    if winner is None:
        return GateDecision(None, None, None, False, reason)
    kind = kind_of_predictor(winner)
    label = "network" if winner == "model" else "1-NN"
    score = scores[winner][metric]
    champion = scores.get("champion")
    if champion is None:
        return GateDecision(winner, kind, score, True, f"{reason}; {label} is champion")
    if is_better(score, champion[metric], metric, margin):
        return GateDecision(
            winner,
            kind,
            score,
            True,
            f"{reason}; {label} {metric} {score:.4f} beats champion {champion_version} "
            f"({champion[metric]:.4f}) and is champion",
        )
    return GateDecision(
        winner,
        kind,
        score,
        False,
        f"{reason}; {label} {metric} {score:.4f} does not beat champion {champion_version} "
        f"({champion[metric]:.4f}), which stays champion",
    )
