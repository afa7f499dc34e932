"""PromQL fragments the dashboards share, so each pattern (selector, per-minute rate, quantile) is written once.

Label values are given as keyword arguments: ``"ALL"`` matches exactly, ``"!ALL"`` excludes and
``"~a|b"`` is a regular expression (``"$channel"`` variables are used as regexes, so ``All`` works).
"""

from __future__ import annotations

RATE = "[$__rate_interval]"


def _matcher(label: str, value: str) -> str:
    if value.startswith("!"):
        return f'{label}!="{value[1:]}"'
    if value.startswith("~"):
        return f'{label}=~"{value[1:]}"'
    return f'{label}="{value}"'


def sel(metric: str, **labels: str) -> str:
    """``metric{label="value",…}`` with the matcher conventions above."""
    if not labels:
        return metric
    return metric + "{" + ",".join(_matcher(k, v) for k, v in labels.items()) + "}"


def _by(labels: tuple[str, ...]) -> str:
    return f"by ({', '.join(labels)}) " if labels else ""


def rate_sum(metric: str, by: tuple[str, ...] = (), **labels: str) -> str:
    """Per-second rate of a counter over the rate interval, summed by ``by``."""
    return f"sum {_by(by)}(rate({sel(metric, **labels)}{RATE}))"


def per_minute(metric: str, by: tuple[str, ...] = (), **labels: str) -> str:
    """Events per minute of a counter, summed by ``by``."""
    return f"{rate_sum(metric, by, **labels)} * 60"


def rate_ratio(numerator: str, denominator: str, by: tuple[str, ...] = ()) -> str:
    """Share of two counter selectors over the rate interval (``numerator`` selects a subset)."""
    return f"sum {_by(by)}(rate({numerator}{RATE})) / sum {_by(by)}(rate({denominator}{RATE}))"


def quantile(q: float, histogram: str, by: tuple[str, ...] = (), **labels: str) -> str:
    """A quantile of a histogram's observations over the rate interval."""
    buckets = sel(f"{histogram}_bucket", **labels)
    return f"histogram_quantile({q}, sum {_by(('le', *by))}(rate({buckets}{RATE})))"
