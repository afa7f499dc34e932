"""``ccpulse rules build``: write (or check) the Prometheus rule files from the configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams import config
from streams.errors import CcpulseError
from streams.rules.alerts import RuleOptions
from streams.rules.files import DEFAULT_DIR, rule_files, stale, write


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="build the Prometheus rule files from the configured targets")
    actions = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="write the recording and alert rule files")
    build.add_argument("--config", help="TOML configuration file (default: $CCPULSE_CONFIG or built-ins)")
    build.add_argument("--out", type=Path, default=DEFAULT_DIR,
                       help=f"directory of the rule files (default: {DEFAULT_DIR})")
    build.add_argument("--grafana-url", default=RuleOptions.grafana_url,
                       help="Grafana base URL of the alerts' dashboard links (default: %(default)s)")
    build.add_argument("--check", action="store_true",
                       help="write nothing; fail when the files differ from what would be written")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    files = rule_files(config.load(args.config), RuleOptions(grafana_url=args.grafana_url))
    if args.check:
        differing = stale(files, args.out)
        if differing:
            names = ", ".join(str(p) for p in differing)
            raise CcpulseError(f"rule files out of date: {names} (run `ccpulse rules build`)")
        print(f"rule files in {args.out} are up to date")
        return 0
    for path in write(files, args.out):
        print(f"wrote {path}")
    return 0
