"""SLA breach transitions (spec: SLA breaches, topic `cc.alerts`).

Only transitions are published: a `breach` when a (region, channel) 15m value crosses its target
with enough volume behind it, a `recovered` when it is back within target (or the window has no
volume left). A quiet region cannot breach: below `min_volume` visits nothing is decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.config import ChannelTargets

SCHEMA = "ccpulse.alert/v1"
WINDOW = "15m"


def _volume(record: Mapping[str, Any]) -> int:
    """The spec's denominator: answered + abandoned − short abandoned."""
    return record["answered"] + record["abandoned"] - record["short_abandoned"]


def _checks(record: Mapping[str, Any], targets: ChannelTargets) -> Iterable[tuple[str, float | None, float, bool]]:
    """(metric, value, target, value is bad) for each alerting metric of a record."""
    level = record["service_level"]
    yield "service_level", level, targets.sl_target, level is not None and level < targets.sl_target
    if targets.abandon_target is not None:
        rate = record["abandon_rate"]
        yield "abandon_rate", rate, targets.abandon_target, rate is not None and rate > targets.abandon_target


class BreachTracker:
    """Remembers which (region, channel, metric) is in breach and reports state changes."""

    def __init__(self, channels: Mapping[str, ChannelTargets], min_volume: int) -> None:
        self.channels = channels
        self.min_volume = min_volume
        self.in_breach: set[tuple[str, str, str]] = set()

    def evaluate(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        alerts = []
        for record in records:
            channel = record["channel"]
            if record["window"] != WINDOW or channel == "ALL" or record["region"] == "ALL":
                continue
            volume = _volume(record)
            for metric, value, target, bad in _checks(record, self.channels[channel]):
                key = (record["region"], channel, metric)
                if key not in self.in_breach and bad and volume >= self.min_volume:
                    self.in_breach.add(key)
                    alerts.append(_alert("breach", record, metric, value, target))
                elif key in self.in_breach and not bad:  # a null value (no volume left) is never bad
                    self.in_breach.discard(key)
                    alerts.append(_alert("recovered", record, metric, value, target))
        return alerts

    def forget(self, regions: Iterable[str]) -> None:
        gone = set(regions)
        self.in_breach = {key for key in self.in_breach if key[0] not in gone}

    def restore(self, published: Iterable[tuple[str, str, str]]) -> None:
        """Take the breaches the alerts topic last left open as the ones in breach. Done at every
        assignment, for kept regions too: the topic holds every transition this worker sent (the
        revoke waited for them to be written), and besides them what another owner sent meanwhile
        (this worker expelled from its group, for one) or nothing of a round this worker abandoned.
        A region in breach there that recovered meanwhile is published as recovered at its first
        evaluation; one recovered there and bad again, as a breach."""
        self.in_breach = set(published)

    def adopt(self, key: tuple[str, str, str], state: str) -> None:
        """Take a transition another worker published after the read-back as downstream's last word
        (see `streams.streaming.alert_follower`); the next evaluation answers it if it is wrong."""
        if state == "breach":
            self.in_breach.add(key)
        else:
            self.in_breach.discard(key)


def _alert(state: str, record: Mapping[str, Any], metric: str, value: float | None,
           target: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "state": state, "region": record["region"], "channel": record["channel"],
        "metric": metric, "value": value, "target": target, "window": WINDOW, "as_of": record["as_of"],
    }
