"""Print the records of a topic as JSON lines, to look at what the pipeline publishes.

    python -m streams.tail cc.metrics [--bootstrap HOST:PORT] [--config FILE] [--latest]

Reads every partition from the beginning (or only new records with ``--latest``) until Ctrl-C,
without a consumer group, so it never disturbs the workers' offsets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import orjson
from kafka import KafkaConsumer

from streams import config
from streams.errors import CcpulseError
from streams.kafka_client import admin_client, kafka_python_options


def _decode(raw: bytes | None) -> object:
    """The value as JSON when it is JSON, else as text (undecodable bytes escaped)."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.tail", description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--config", help="TOML configuration file (default: $CCPULSE_CONFIG)")
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="brokers, overriding kafka.bootstrap_servers")
    parser.add_argument("--latest", action="store_true", help="only records that arrive from now on")
    args = parser.parse_args(argv)
    try:
        kafka = config.load(args.config).kafka
        if args.bootstrap:
            kafka = dataclasses.replace(kafka, bootstrap_servers=args.bootstrap)
        admin = admin_client(kafka)  # fails fast and clearly when the broker is unreachable
        try:
            if args.topic not in admin.list_topics():
                raise CcpulseError(f"topic {args.topic} does not exist (ccpulse topics apply creates it)")
        finally:
            admin.close()
        consumer = KafkaConsumer(args.topic, auto_offset_reset="latest" if args.latest else "earliest",
                                 enable_auto_commit=False, **kafka_python_options(kafka))
    except CcpulseError as exc:
        print(f"streams.tail: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        for record in consumer:
            line = {"partition": record.partition, "offset": record.offset,
                    "key": _decode(record.key), "value": _decode(record.value)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
