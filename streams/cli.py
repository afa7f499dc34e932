"""The `ccpulse` command: one entry point, each subcommand in the module that owns its job.

Subcommand modules are imported lazily so that `ccpulse replay` does not pay for importing Faust.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from streams.errors import CcpulseError

#: subcommand -> (module that implements it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "topics": ("streams.topics", "create or update the Kafka topics of the spec"),
    "worker": ("streams.worker", "run a streaming worker (both stages, the publisher, /metrics)"),
    "simulate": ("streams.simulate.cli", "produce realistic channel events to a file or to Kafka"),
    "replay": ("streams.replay", "compute metric records from event files"),
    "dashboards": ("dashboards.cli", "build or push the Grafana dashboards"),
    "rules": ("streams.rules.cli", "build the Prometheus rule files from the configured targets"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccpulse", description="Real-time contact-center metrics.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if wanted is None or name == wanted:
            importlib.import_module(module_name).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CcpulseError as exc:
        print(f"ccpulse {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ccpulse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
