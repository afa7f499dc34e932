"""``ccpulse simulate``: realistic channel events to a file, stdout or the events topic.

Time model. ``--realtime`` (the default with ``--kafka``): event time is the wall clock; events
are sent when their time comes, and ``--rate`` scales the traffic volume so that its daily mean
is that many events (or contacts) per second. ``--fast`` (the default for files): the simulated
clock runs as fast as the sink takes events, or at ``--rate`` events per wall second, which
compresses event time by ``rate / natural rate``; ``--duration`` is then a span of event time
(default 1 h) ending now unless ``--start`` is given. The same ``--seed`` and ``--start`` give
the same bytes.
"""

from __future__ import annotations

import argparse
import math
import secrets
import signal
import time
from typing import Any

from streams import config as config_module
from streams import regions as region_catalogue
from streams.errors import CcpulseError
from streams.simulate import model, scenarios
from streams.simulate.generator import MINUTE_MS, SimConfig, Simulation, natural_contacts_per_s
from streams.simulate.runner import Pacing, Progress, StopRequest, run
from streams.simulate.sinks import FileSink, KafkaSink, Sink
from streams.simulate.units import parse_duration, parse_instant

DEFAULT_FAST_DURATION = "1h"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate", help="produce realistic channel events to a file or to Kafka",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="FILE", help="JSON Lines file (.gz compresses; - = stdout)")
    out.add_argument("--kafka", action="store_true", help="produce to the events topic of the config")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: config)")
    p.add_argument("--config", metavar="FILE", help="ccpulse configuration file (TOML)")
    p.add_argument("--rate", type=float, metavar="N", help="events (or contacts) per wall-clock second")
    p.add_argument("--rate-unit", choices=("events", "contacts"), default="events")
    p.add_argument("--duration", metavar="SPAN",
                   help="event-time span: 1h, 90m, 30s, 1d; 0 = until Ctrl-C "
                        f"(default: {DEFAULT_FAST_DURATION} when fast, unbounded in real time)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N events")
    p.add_argument("--start", metavar="TIME", help="event time of the start: RFC 3339, now, -2h "
                                                    "(default: now in real time; now minus the duration when fast)")
    p.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed in the summary)")
    p.add_argument("--regions", metavar="CODES", help="comma-separated region codes (default: config or all)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME[:k=v,...]",
                   help=f"inject an incident; one of: {', '.join(scenarios.SCENARIOS)}")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                      help="event time = wall clock (default with --kafka)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="simulated clock as fast as allowed (default for files)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line or summary")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = config_module.load(args.config)
    if not args.kafka and not args.output:
        raise CcpulseError("choose an output: --output FILE (or - for stdout) or --kafka")
    if args.rate is not None and not (args.rate > 0 and math.isfinite(args.rate)):
        raise CcpulseError(f"--rate must be a positive number, not {args.rate}")
    if args.count is not None and args.count < 1:
        raise CcpulseError("--count must be at least 1")
    realtime = bool(args.kafka) if args.realtime is None else args.realtime
    config = build_config(args, settings.pipeline.regions, realtime)
    sim = Simulation(config)
    sink: Sink = KafkaSink(settings, args.bootstrap) if args.kafka else FileSink(args.output)
    stop = StopRequest()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a background job may inherit it ignored
        signal.signal(signum, lambda signum, frame: stop.set())  # flush, summary, exit 0 (see `run`)
    run(sim, sink, Pacing(realtime=realtime, rate=args.rate, unit=args.rate_unit), Progress(quiet=args.quiet),
        stop)
    return 0


def build_config(args: argparse.Namespace, configured_regions: tuple[str, ...], realtime: bool) -> SimConfig:
    """The simulation the options describe (resolving defaults that depend on the time mode)."""
    codes = tuple(c.strip() for c in args.regions.split(",") if c.strip()) if args.regions \
        else configured_regions
    region_catalogue.catalogue(codes)  # fails naming an unknown code
    if args.duration is not None:
        duration: float | None = parse_duration(args.duration) or None
    elif realtime or args.count:
        duration = None
    else:
        duration = parse_duration(DEFAULT_FAST_DURATION)
    now_ms = int(time.time() * 1000)
    if args.start:
        start = parse_instant(args.start, now_ms)
    elif realtime or duration is None:
        start = now_ms
    else:
        start = (now_ms - int(duration * 1000)) // MINUTE_MS * MINUTE_MS
    volume = 1.0
    if realtime and args.rate:
        per_contact = model.EVENTS_PER_CONTACT if args.rate_unit == "events" else 1.0
        volume = args.rate / (natural_contacts_per_s(codes) * per_contact)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    chosen = codes or tuple(region_catalogue.catalogue())
    return SimConfig(start_ms=start, seed=seed, duration_s=duration, count=args.count, regions=codes,
                     volume=volume, scenarios=tuple(scenarios.parse(s, start, chosen) for s in args.scenario))

