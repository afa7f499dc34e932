"""``ccpulse dashboards build|push``: regenerate the committed JSON, or provision it through the API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from streams.errors import CcpulseError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="build or push the Grafana dashboards")
    sub = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="regenerate dashboards/json from the configured targets")
    build.add_argument("--config", help="configuration file (default: $CCPULSE_CONFIG or built-in)")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 naming the files that differ from a regeneration")
    build.add_argument("--output", type=Path, default=None, help="directory (default: dashboards/json)")
    build.set_defaults(func=run_build)

    push = sub.add_parser("push", help="create or update the dashboards in Grafana through its HTTP API; "
                                       "token from $GRAFANA_TOKEN or the file named by $GRAFANA_TOKEN_FILE")
    push.add_argument("--url", default=None, help="Grafana base URL (default: $GRAFANA_URL)")
    push.add_argument("--folder-uid", default="ccpulse")
    push.add_argument("--folder-title", default="ccpulse")
    push.add_argument("--dashboards-dir", type=Path, default=None, help="default: dashboards/json")
    push.set_defaults(func=run_push)


def run_build(args: argparse.Namespace) -> int:
    from dashboards import generate
    from streams import config

    settings = config.load(args.config)
    directory = args.output or generate.JSON_DIR
    if args.check:
        differing = generate.stale(settings, directory)
        if differing:
            print(f"dashboards differ from a regeneration: {', '.join(differing)} "
                  "(run `ccpulse dashboards build`)", file=sys.stderr)
            return 1
        print(f"dashboards in {directory} are up to date")
        return 0
    for path in generate.write(settings, directory):
        print(f"wrote {path}")
    return 0


def run_push(args: argparse.Namespace) -> int:
    from dashboards import generate, push

    url = args.url or os.environ.get(push.URL_ENV)
    if not url:
        raise CcpulseError(f"no Grafana URL: pass --url or set {push.URL_ENV}")
    push.push(url, push.token(), args.dashboards_dir or generate.JSON_DIR, args.folder_uid, args.folder_title)
    return 0
