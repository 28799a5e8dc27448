"""Claims: statements about a spec's rows, judged from the paired-by-seed differences.

A spec's ``[[claims]]`` say in words what a study claims (``text``) and in a form that can be
checked: one or more rows lower (higher) than another row on a metric, a row the lowest
(highest) of several rows, or a row's metric below (above) a number. Each comparison is the
mean of the per-seed differences with its 95% t interval (:func:`regsuite.stats.paired_difference`;
against a number, the differences from that number), and gets a verdict:

- **held**: the whole interval lies on the claimed side of 0;
- **contradicted**: the whole interval lies on the other side;
- **inconclusive**: the interval contains 0;
- **n too small**: fewer than 2 paired seeds.

A claim of several comparisons ("every regularizer lowers val loss", "augmentation is the
lowest of all rows") holds only when every comparison holds; it is contradicted when any
comparison is; otherwise it is "n too small" when any comparison lacks seeds, else
inconclusive. In a grid of several datasets or models each claim is judged within every
(dataset, model) group, and the claim's verdict combines the groups the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from regsuite import stats
from regsuite.vocabulary import ALL, FORMS, LOWER_FORMS

HELD, CONTRADICTED, INCONCLUSIVE, TOO_FEW = "held", "contradicted", "inconclusive", "n too small"
VERDICTS = (HELD, CONTRADICTED, INCONCLUSIVE, TOO_FEW)


@dataclass(frozen=True)
class Comparison:
    """One checked inequality: ``row − other < 0`` (``lower``) or ``> 0`` (higher)."""

    row: str
    other: str | None  # None: against ``threshold``
    metric: str
    lower: bool
    threshold: float | None = None
    group: str = ""  # "dataset / model" when the grid has several

    @property
    def description(self) -> str:
        against = self.other if self.other is not None else f"{self.threshold:g}"
        where = f" [{self.group}]" if self.group else ""
        return f"{self.metric}: {self.row} {'<' if self.lower else '>'} {against}{where}"


@dataclass(frozen=True)
class Part:
    comparison: Comparison
    difference: stats.PairedDifference
    verdict: str


@dataclass
class JudgedClaim:
    text: str
    verdict: str
    parts: list[Part] = field(default_factory=list)


def expand(claim: Mapping[str, Any], labels: list[str]) -> list[tuple[str, str | None, bool, float | None]]:
    """The (row, other row, lower?, threshold) comparisons a claim implies, by label."""
    rows = resolve_labels(claim["row"], labels)
    form = next(key for key in FORMS if claim.get(key) is not None)
    target = claim[form]
    lower = form in LOWER_FORMS
    out: list[tuple[str, str | None, bool, float | None]] = []
    for row in rows:
        if form in ("below", "above"):
            out.append((row, None, lower, float(target)))
        elif form in ("lower_than", "higher_than"):
            out += [(row, target, lower, None)] if row != target else []
        else:
            out += [(row, other, lower, None) for other in resolve_labels(target, labels) if other != row]
    return out


def resolve_labels(value: str | list[str], labels: list[str]) -> list[str]:
    if value == ALL:
        return list(labels)
    return [value] if isinstance(value, str) else list(value)


def verdict_of(difference: stats.PairedDifference, lower: bool) -> str:
    if difference.low is None or difference.high is None:
        return TOO_FEW
    if (difference.high < 0) if lower else (difference.low > 0):
        return HELD
    if (difference.low > 0) if lower else (difference.high < 0):
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    if not verdicts:
        return TOO_FEW
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if TOO_FEW in verdicts:
        return TOO_FEW
    return HELD if all(v == HELD for v in verdicts) else INCONCLUSIVE


def judge(claim: Mapping[str, Any], groups: Mapping[str, Mapping[str, Mapping[str, Mapping[int, float]]]],
          labels: list[str]) -> JudgedClaim:
    """Judge one claim. ``groups`` maps a group name ("" when the grid has one dataset and
    model) to each row label's per-metric ``{seed: value}``; a row without finished runs may
    be absent."""
    parts = []
    for group, rows in groups.items():
        for row, other, lower, threshold in expand(claim, labels):
            metric = claim["metric"]
            values = rows.get(row, {}).get(metric, {})
            if other is None:
                against = {seed: threshold for seed in values}
            else:
                against = rows.get(other, {}).get(metric, {})
            difference = stats.paired_difference(values, against)
            comparison = Comparison(row, other, metric, lower, threshold, group)
            parts.append(Part(comparison, difference, verdict_of(difference, lower)))
    return JudgedClaim(claim["text"], combine([p.verdict for p in parts]), parts)
