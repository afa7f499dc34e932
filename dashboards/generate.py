"""Render every dashboard to its committed JSON file, compare with what is on disk, and list the queries.

The JSON is written with sorted keys and a trailing newline so a regeneration diff shows only
real changes. ``queries()`` is what the query tests (parse here, run against Prometheus in the
integration suite) iterate over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from dashboards import channels, noc_wall, pipeline, region, tickets
from streams.config import Settings

JSON_DIR = Path(__file__).parent / "json"

#: file stem -> builder; the order is the order of the README.
BUILDERS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "noc-wall": noc_wall.build,
    "region": region.build,
    "channels": channels.build,
    "pipeline": pipeline.build,
    "tickets": tickets.build,
}

#: Values that stand in for Grafana's macros and our variables when a query is parsed or run.
DEFAULT_VARIABLES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "region": "RU-MOW",
    "channel": "voice",
}
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def build_all(settings: Settings) -> dict[str, dict[str, Any]]:
    """File name -> dashboard model."""
    return {f"{stem}.json": build(settings) for stem, build in BUILDERS.items()}


def render(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(settings: Settings, directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build_all(settings).items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def stale(settings: Settings, directory: Path = JSON_DIR) -> list[str]:
    """Names of files that are missing or differ from a fresh rendering."""
    names = []
    for name, model in build_all(settings).items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model):
            names.append(name)
    return names


def substitute(expr: str, variables: Mapping[str, str] = DEFAULT_VARIABLES) -> str:
    """Replace ``$name`` and ``${name}`` by their values; an unknown variable is an error."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for the variable ${name} in {expr!r}")
        return variables[name]
    return _VARIABLE.sub(value, expr)


class Query(NamedTuple):
    dashboard: str  # uid
    panel: str  # title
    ref: str
    expr: str  # variables substituted


def panels(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(models: Iterable[Mapping[str, Any]],
            variables: Mapping[str, str] = DEFAULT_VARIABLES) -> Iterator[Query]:
    """Every panel query and every variable query of the dashboards, ready to send to Prometheus."""
    for model in models:
        uid = model["uid"]
        for panel in panels(model):
            for query in panel.get("targets", []):
                yield Query(uid, panel["title"], query["refId"], substitute(query["expr"], variables))
        for variable in model.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                yield Query(uid, f"variable ${variable['name']}", "var",
                            substitute(variable_expr(variable["query"]), variables))


def variable_expr(query: str) -> str:
    """The PromQL behind a ``label_values(selector, label)`` variable query."""
    match = _LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return f"count by ({match['label']}) ({match['selector']})"
