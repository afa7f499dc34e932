"""The region catalogue: every Russian federal subject that has an ISO 3166-2:RU code.

The data ships in ``streams/data/regions.json`` (83 subjects; subjects without an ISO 3166-2:RU
code are not included). Each region has its English name, the IANA time zone of its capital
(which decides where its ``today`` window starts), an approximate centroid for map panels, and a
relative traffic weight (population in thousands, a proxy for contact volume) that the simulator
uses to skew traffic towards big regions. The catalogue guards metric cardinality: an event whose
region is not in it is rejected.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from streams.errors import ConfigError

#: Zone of the ``region = ALL`` rollup (spec: metrics, Windows).
ALL = "ALL"
ALL_ZONE = "Europe/Moscow"


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    tz: str
    lat: float
    lon: float
    weight: float


@functools.cache
def _full() -> Mapping[str, Region]:
    raw = json.loads(resources.files("streams").joinpath("data/regions.json").read_text(encoding="utf-8"))
    return MappingProxyType({item["code"]: Region(**item) for item in raw})


def catalogue(only: Iterable[str] = ()) -> Mapping[str, Region]:
    """The full catalogue, or the part of it named by ``only`` (a deployment's regions).

    An unknown code in ``only`` is a configuration mistake, reported by name.
    """
    full = _full()
    wanted = tuple(only)
    if not wanted:
        return full
    unknown = [code for code in wanted if code not in full]
    if unknown:
        raise ConfigError(f"unknown region code {unknown[0]!r} (codes follow ISO 3166-2:RU, e.g. RU-MOW)")
    return MappingProxyType({code: full[code] for code in sorted(set(wanted))})


@functools.cache
def zone(code: str) -> zoneinfo.ZoneInfo:
    """The time zone of a region (``ALL`` -> Moscow); an unknown code fails like ``catalogue``."""
    if code == ALL:
        return zoneinfo.ZoneInfo(ALL_ZONE)
    return zoneinfo.ZoneInfo(catalogue((code,))[code].tz)
