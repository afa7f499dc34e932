"""`ccpulse worker`: run one streaming worker until SIGTERM or Ctrl-C.

Several workers on one host need their own `--web-port` and `--datadir`; Kafka spreads the
partitions (and so the regions) between them.
"""

from __future__ import annotations

import argparse
from typing import Any

from streams import config
from streams.tuning import tune_gc


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("worker", help="run a streaming worker (both stages, the publisher, /metrics)",
                                   description="Run a streaming worker: consumes the events topic, publishes "
                                               "metric records, SLA alerts and dead letters, serves /metrics.")
    parser.add_argument("--config", help="configuration file (TOML)")
    parser.add_argument("--web-port", type=int, help="port of /metrics (default: worker.web_port, 6066)")
    parser.add_argument("--datadir", help="Faust's local data directory (default: worker.datadir)")
    parser.add_argument("--loglevel", default="warning", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    from streams.streaming.app import ServiceWorker, build_app

    worker = build_app(settings, web_port=args.web_port, datadir=args.datadir)
    tune_gc()
    port = args.web_port if args.web_port is not None else settings.worker.web_port
    print(f"ccpulse worker: consuming {settings.topics.name('events')} at {settings.kafka.bootstrap_servers}; "
          f"metrics on http://{settings.worker.web_bind}:{port}/metrics", flush=True)
    ServiceWorker(worker.app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0
