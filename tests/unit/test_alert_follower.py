"""What the alerts follower takes from the topic: other processes' transitions, not its own, not junk."""

from __future__ import annotations

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.streaming.alert_follower import SOURCE_HEADER, AlertFollower

TP = TopicPartition("cc.alerts", 0)
OWN = b"this-worker"


def message(offset: int, value: bytes, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"RU-MOW|voice", value, None, len(value), -1, headers)


def alert(state: str, metric: str = "service_level") -> bytes:
    return orjson.dumps({"schema": "ccpulse.alert/v1", "state": state, "region": "RU-MOW", "channel": "voice",
                         "metric": metric, "value": 0.5, "target": 0.9, "window": "15m",
                         "as_of": "2026-11-22T10:00:00.000Z"})


def test_transitions_of_other_processes_are_adopted_in_order_and_the_worker_s_own_skipped() -> None:
    adopted: list[tuple[tuple[str, str, str], str]] = []
    follower = AlertFollower({}, TP.topic, OWN, lambda key, state: adopted.append((key, state)))
    follower._take({TP: [
        message(0, alert("breach"), [(SOURCE_HEADER, b"another-worker")]),
        message(1, alert("recovered"), [(SOURCE_HEADER, OWN)]),
        message(2, b"not json", []),
        message(3, b'{"state": "breach"}', []),
        message(4, alert("recovered", "abandon_rate"), []),
    ]})
    assert adopted == [(("RU-MOW", "voice", "service_level"), "breach"),
                       (("RU-MOW", "voice", "abandon_rate"), "recovered")]
