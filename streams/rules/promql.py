"""PromQL builders shared by the recording and alert rules.

Rollups follow the spec: counts are summed first and ratios computed afterwards, so every
recorded ratio exists per (region, channel), for ``channel="ALL"`` per region, for
``region="ALL"`` per channel and for ALL/ALL — the same four levels as the metric records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: label sets kept at each rollup level; the labels left out get the value ALL
LEVELS: tuple[tuple[str, ...], ...] = (("region", "channel"), ("region",), ("channel",), ())
ROLLED_LABELS: tuple[str, ...] = ("region", "channel")
ALL = "ALL"


def sum_by(labels: Sequence[str], expr: str) -> str:
    """``sum by (labels) (expr)``, or a plain ``sum`` when no label is kept."""
    if not labels:
        return f"sum({expr})"
    return f"sum by ({', '.join(labels)}) ({expr})"


def set_label(expr: str, label: str, value: str) -> str:
    """Give every series of ``expr`` the label ``label=value`` (label_replace on an empty source)."""
    return f'label_replace({expr}, "{label}", "{value}", "", "")'


def at_all_levels(aggregate: Callable[[tuple[str, ...]], str], extra: Sequence[str] = ()) -> str:
    """Union of ``aggregate(by)`` over the four rollup levels, rolled-up labels set to ALL.

    ``aggregate`` receives the labels to keep (the level's labels plus ``extra``, such as ``le``).
    """
    parts = []
    for level in LEVELS:
        expr = aggregate((*level, *extra))
        for label in ROLLED_LABELS:
            if label not in level:
                expr = set_label(expr, label, ALL)
        parts.append(expr)
    return "\nor\n".join(parts)


def increase_at_all_levels(selector: str, window: str, extra: Sequence[str] = ()) -> str:
    """Increase of a counter over ``window``, summed at the four rollup levels."""
    return at_all_levels(lambda by: sum_by(by, f"increase({selector}[{window}])"), extra)


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``; 0 when the numerator has no series yet, absent when the
    denominator is 0 (the spec's null), so that a collapse to 0 % is not silently missing."""
    return f"({numerator} or {denominator} * 0)\n/\n({denominator} > 0)"


def union_sum(left: str, right: str) -> str:
    """``left + right`` where a side without a series counts as 0."""
    return f"{left} + {right}\nor\n{left}\nor\n{right}"


def leaf(record: str) -> str:
    """Only the (region, channel) series of a rolled-up recording, not the ALL rollups."""
    return f'{record}{{region!="{ALL}",channel!="{ALL}"}}'
