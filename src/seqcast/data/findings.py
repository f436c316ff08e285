"""What validation found, rule by rule, in a form that shards of series can merge.

`seqcast.data.validation` records each failed rule as a `Failure`: the row positions it
failed (in the frame checked), why, and its example rows as `Examples`: items each with a
sort key (a row's place in the snapshot, or a series name), so the examples of several
shards of series merge into exactly those one whole-table run shows: the first five by
key, and how many more (`seqcast.data.validation_merge`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from seqcast.data.contracts import Contract
from seqcast.data.source_batches import SOURCE_FILE, SOURCE_LINE

Outcome = Literal["pass", "warn", "quarantine", "fail"]
EXAMPLES = 5
"""Example rows (or series) a rule shows; the rest are counted."""
NO_ROWS = np.empty(0, dtype=np.int64)
POSITION = "_source_position"
"""A row's place in the raw snapshot (0-based), carried through a shard of series so its
examples and quarantined rows sort as one whole-table run orders them."""
FUTURE_RANK = 1 << 62
"""Added to a future row's position: a whole-table run checks future rows after the others
(`seqcast.data.future_rows.rows_read`), so they sort last."""

Key = tuple[Any, ...]


@dataclass(frozen=True)
class RuleResult:
    """One contract rule's outcome, as the validation table shows it."""

    rule: str
    column: str
    severity: str
    failed_rows: int
    outcome: Outcome
    reason: str = ""
    examples: str = ""

    @property
    def success(self) -> bool:
        return self.outcome == "pass"


@dataclass(frozen=True)
class Examples:
    """A rule's examples: the first `EXAMPLES` items by key, and how many there are."""

    items: tuple[tuple[Key, str], ...] = ()
    total: int = 0
    separator: str = "; "
    grouped: bool = False
    """Items shown under their key's first part: ``series 'a': t1, t2; series 'b': t3``."""

    @classmethod
    def of(
        cls, items: Iterable[tuple[Key, str]], separator: str = "; ", grouped: bool = False
    ) -> Examples:
        """All of a rule's items (any order): the first by key are kept, the rest counted."""
        listed = sorted(items, key=lambda item: item[0])
        return cls(tuple(listed[:EXAMPLES]), len(listed), separator, grouped)

    @classmethod
    def text_only(cls, text: str) -> Examples:
        """One fixed text (a rule decided on the whole table, not merged by key)."""
        return cls(((("",), text),), 1) if text else cls()

    def text(self) -> str:
        if self.grouped:
            groups: dict[Any, list[str]] = {}
            for key, text in self.items[:EXAMPLES]:
                groups.setdefault(key[0], []).append(text)
            parts = [f"series {name!r}: {', '.join(texts)}" for name, texts in groups.items()]
        else:
            parts = [text for _, text in self.items[:EXAMPLES]]
        shown = self.separator.join(parts)
        more = self.total - min(len(self.items), EXAMPLES)
        return shown + (f" (+{more} more)" if more > 0 else "")

    @classmethod
    def merge(cls, parts: Sequence[Examples]) -> Examples:
        """The examples of one rule over shards of series, as one run would show them."""
        if not parts:
            return cls()
        listed = sorted((i for p in parts for i in p.items), key=lambda item: item[0])
        first = parts[0]
        total = sum(p.total for p in parts)
        return cls(tuple(listed[:EXAMPLES]), total, first.separator, first.grouped)

    def to_dict(self) -> dict[str, Any]:
        """As JSON: keys as lists (a shard's summary file)."""
        return {
            "items": [[list(k), t] for k, t in self.items],
            "total": self.total,
            "separator": self.separator,
            "grouped": self.grouped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Examples:
        items = tuple((tuple(k), str(t)) for k, t in data["items"])
        return cls(items, int(data["total"]), str(data["separator"]), bool(data["grouped"]))


@dataclass(frozen=True)
class TimezoneMix:
    """A timestamp column's values with and without a UTC offset: mixing them is a rule
    of the whole table, so shards report these and the merge decides."""

    offset: int
    naive: int
    offset_examples: Examples
    naive_examples: Examples

    @property
    def mixed(self) -> bool:
        return bool(self.offset and self.naive)

    def failure(self, timezone: str) -> tuple[str, Examples]:
        """The rule's reason and examples (two rows of each kind)."""

        def two(examples: Examples) -> str:
            more = examples.total - min(2, len(examples.items))
            shown = "; ".join(text for _, text in examples.items[:2])
            return shown + (f" (+{more} more)" if more > 0 else "")

        reason = (
            f"mixes {self.offset} timestamps with a UTC offset and {self.naive} without; give "
            f"every timestamp an offset, or none (then source.timezone = {timezone!r} applies)"
        )
        text = f"with offset {two(self.offset_examples)}; without {two(self.naive_examples)}"
        return reason, Examples.text_only(text)

    @classmethod
    def merge(cls, parts: Sequence[TimezoneMix]) -> TimezoneMix:
        return cls(
            sum(p.offset for p in parts),
            sum(p.naive for p in parts),
            Examples.merge([p.offset_examples for p in parts]),
            Examples.merge([p.naive_examples for p in parts]),
        )


@dataclass
class Failure:
    """A failed rule: the positions of its rows, why, its examples and its row count
    (``count``: when not the number of positions, e.g. stale series, missing rows)."""

    rows: np.ndarray
    reason: str
    examples: Examples
    count: int | None = None
    first: int = FUTURE_RANK * 2
    """Rank of the first failing row: the row whose reason a merged result keeps."""


def format_rows(raw: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> str:
    """Up to five rows as ``file:line col='value'``, values as read from the source."""
    shown = [_row_text(raw, int(p), columns) for p in np.asarray(rows)[:EXAMPLES]]
    more = len(rows) - len(shown)
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def _row_text(raw: pd.DataFrame, position: int, columns: list[str]) -> str:
    row = raw.iloc[position]
    where = f"{row.get(SOURCE_FILE, '?')}:{row.get(SOURCE_LINE, '?')}"
    values = ", ".join(f"{c}={_plain(row[c])!r}" for c in columns if c in raw.columns)
    return f"{where} {values}".strip()


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


@dataclass
class Findings:
    """Rules checked so far, and what each failed one found.

    ``rank``: each row's sort key (its snapshot position; future rows last), for examples.
    """

    raw: pd.DataFrame
    contract: Contract
    context: list[str] = field(default_factory=list)
    """Columns shown before a failed rule's own in its example rows (the series id at
    prediction time, where each series' outcome is its own)."""
    rank: np.ndarray = field(default_factory=lambda: NO_ROWS)
    checked: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[tuple[str, str], Failure] = field(default_factory=dict)
    timezones: dict[str, TimezoneMix] = field(default_factory=dict)

    def check(self, rule: str, column: str) -> None:
        if (rule, column) not in self.checked:
            self.checked.append((rule, column))

    def row_examples(self, rows: np.ndarray, columns: list[str]) -> Examples:
        """The rows' examples (``file:line col='value'``), keyed by their rank."""
        ranked = sorted((int(self.rank[int(p)]), int(p)) for p in np.asarray(rows))
        items = [((r,), _row_text(self.raw, p, columns)) for r, p in ranked[:EXAMPLES]]
        return Examples(tuple(items), len(ranked))

    def fail(
        self,
        rule: str,
        column: str,
        rows: np.ndarray,
        reason: str,
        examples: Examples | None = None,
        count: int | None = None,
        shown: list[str] | None = None,
    ) -> None:
        """Record a failed rule: its rows (positions), why, and optionally custom examples
        (default: its rows, showing ``shown`` or the context and its own column)."""
        self.check(rule, column)
        rows = np.asarray(rows, dtype=np.int64)
        if examples is None:
            if shown is None:
                shown = [c for c in dict.fromkeys([*self.context, column]) if c in self.raw.columns]
            examples = self.row_examples(rows, shown)
        first = int(self.rank[rows].min()) if len(rows) else FUTURE_RANK * 2
        self.failed[(rule, column)] = Failure(rows, reason, examples, count, first)

    def severity(self, rule: str, column: str) -> str:
        return self.contract.severity_of(rule, column if column in self.contract.columns else None)

    def rows_with(self, outcomes: tuple[str, ...]) -> np.ndarray:
        """Positions of rows failing any rule whose severity is in ``outcomes``."""
        parts = [
            failure.rows
            for (rule, column), failure in self.failed.items()
            if self.severity(rule, column) in outcomes
        ]
        return np.unique(np.concatenate(parts)) if parts else NO_ROWS

    def results(self) -> list[RuleResult]:
        return [
            rule_result(rule, column, self.severity(rule, column), self.failed.get((rule, column)))
            for rule, column in self.checked
        ]


def rule_result(rule: str, column: str, severity: str, failure: Failure | None) -> RuleResult:
    """The table row of one rule: passed, or failed with its severity as outcome."""
    if failure is None:
        return RuleResult(rule, column, severity, 0, "pass")
    failed = failure.count if failure.count is not None else len(failure.rows)
    text = failure.examples.text()
    return RuleResult(rule, column, severity, failed, severity, failure.reason, text)  # type: ignore[arg-type]
