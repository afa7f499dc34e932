"""Small builders for the classic Grafana dashboard JSON model (panels, targets, variables, layout).

Plain functions returning dicts rather than grafana-foundation-sdk: the SDK is a "public preview"
whose unpinned install silently picks the Grafana 10.1 build (PEP 440 epochs), and its typed
builders do not validate anyway (``from_json`` accepts unknown keys). The handful of panel types
used here fit in a page of code that emits exactly the JSON a reviewer sees in the diff, with no
dependency to pin. The JSON is checked by ``dashboards/schema/dashboard.schema.json`` in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dashboards.thresholds import Steps, neutral

DATASOURCE_UID = "ccpulse-prometheus"
#: Panels name the data source through the ``$datasource`` variable, which defaults to our uid.
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
NO_DATA = "NO DATA"
SCHEMA_VERSION = 39
GRID_WIDTH = 24

Panel = dict[str, Any]


def target(expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False,
           table: bool = False) -> dict[str, Any]:
    """One Prometheus query: a range query for graphs, an instant one for stats and tables."""
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
    }


def targets(*exprs: tuple[str, str], instant: bool = False, table: bool = False) -> list[dict[str, Any]]:
    """Several (expr, legend) queries with refIds A, B, C, …"""
    return [target(expr, legend, ref=chr(ord("A") + i), instant=instant, table=table)
            for i, (expr, legend) in enumerate(exprs)]


def override(matcher: tuple[str, str], **properties: Any) -> dict[str, Any]:
    """A field override: ``matcher`` is (matcher id, option), e.g. ("byName", "SL")."""
    return {
        "matcher": {"id": matcher[0], "options": matcher[1]},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def _no_data_mappings() -> list[dict[str, Any]]:
    """NaN and null read "NO DATA" in the text colour, so a stalled pipeline never looks like 0."""
    result = {"text": NO_DATA, "color": "text"}
    return [{"type": "special", "options": {"match": match, "result": result}} for match in ("nan", "null")]


def _panel(kind: str, title: str, description: str, unit: str, queries: Sequence[dict[str, Any]],
           size: tuple[int, int], *, steps: Steps | None = None, options: dict[str, Any] | None = None,
           custom: dict[str, Any] | None = None, overrides: Iterable[dict[str, Any]] = (),
           transformations: Sequence[dict[str, Any]] = (), color_mode: str = "thresholds",
           decimals: int | None = None, value_range: tuple[float | None, float | None] = (None, None),
           no_value: str = NO_DATA) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "noValue": no_value,
        "color": {"mode": color_mode},
        "thresholds": {"mode": "absolute", "steps": steps or neutral()},
        "mappings": _no_data_mappings(),
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    for key, bound in zip(("min", "max"), value_range, strict=True):
        if bound is not None:
            defaults[key] = bound
    if custom is not None:
        defaults["custom"] = custom
    panel: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": size[1], "w": size[0], "x": 0, "y": 0},
        "targets": list(queries),
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": options or {},
    }
    if transformations:
        panel["transformations"] = list(transformations)
    return panel


def stat(title: str, description: str, unit: str, queries: Sequence[dict[str, Any]],
         size: tuple[int, int] = (3, 4), *, steps: Steps | None = None,
         overrides: Iterable[dict[str, Any]] = (), decimals: int | None = None,
         text_mode: str = "value") -> Panel:
    """A big number on a background coloured by its thresholds."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "center",
        "orientation": "auto",
        "textMode": text_mode,
        "wideLayout": True,
        "showPercentChange": False,
    }
    return _panel("stat", title, description, unit, queries, size, steps=steps, options=options,
                  overrides=overrides, decimals=decimals)


def timeseries(title: str, description: str, unit: str, queries: Sequence[dict[str, Any]],
               size: tuple[int, int] = (12, 8), *, steps: Steps | None = None, stack: bool = False,
               bars: bool = False, value_range: tuple[float | None, float | None] = (None, None),
               overrides: Iterable[dict[str, Any]] = ()) -> Panel:
    """Lines over time; with ``steps`` the thresholds are drawn as dashed target lines."""
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else (30 if stack else 10),
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if steps else "off"},
    }
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, description, unit, queries, size, steps=steps, options=options,
                  custom=custom, color_mode="palette-classic", value_range=value_range,
                  overrides=overrides)


def table(title: str, description: str, unit: str, queries: Sequence[dict[str, Any]],
          size: tuple[int, int] = (12, 8), *, transformations: Sequence[dict[str, Any]] = (),
          overrides: Iterable[dict[str, Any]] = (), sort_by: tuple[str, bool] | None = None,
          no_value: str = NO_DATA) -> Panel:
    """Rows of instant values; ``sort_by`` is (column, descending) for the initial order."""
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "md",
                               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by[0], "desc": sort_by[1]}]
    return _panel("table", title, description, unit, queries, size, options=options,
                  custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
                  overrides=overrides, transformations=transformations, no_value=no_value)


def colored_cells(column: str, unit: str, steps: Steps, display: str = "color-background") -> dict[str, Any]:
    """A table column with its own unit and thresholds, painted by them."""
    return override(("byName", column), unit=unit, thresholds={"mode": "absolute", "steps": steps},
                    custom__cellOptions={"type": display}, color={"mode": "thresholds"})


def merge_table(columns: dict[str, str], hidden: Iterable[str] = ("Time",)) -> list[dict[str, Any]]:
    """Join instant queries on their labels into one row per series and name the value columns.

    ``columns`` maps Grafana's generated names ("Value #A") to the headers shown.
    """
    return [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {name: True for name in hidden},
                                        "renameByName": dict(columns),
                                        "indexByName": {}}},
    ]


def row(title: str) -> Panel:
    """A full-width section header."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": 0}}


def flow(panels: Iterable[Panel]) -> list[Panel]:
    """Place panels left to right, wrapping at the grid width; rows start a new line. Numbers ids."""
    placed: list[Panel] = []
    x = y = line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if panel["type"] == "row" or x + pos["w"] > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        pos.update(x=x, y=y)
        panel["id"] = panel_id
        x += pos["w"]
        line_height = max(line_height, pos["h"])
        if panel["type"] == "row":
            x, y, line_height = 0, y + pos["h"], 0
        placed.append(panel)
    return placed


def datasource_variable(hide: bool = False) -> dict[str, Any]:
    return {
        "type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 2 if hide else 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
        "regex": "", "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str, *, multi: bool = False) -> dict[str, Any]:
    """A variable filled from Prometheus label values; ``multi`` also offers "All"."""
    return {
        "type": "query", "name": name, "label": label, "datasource": DATASOURCE,
        "query": query, "definition": query, "current": {}, "options": [], "refresh": 2,
        "sort": 1, "regex": "", "hide": 0, "multi": multi, "includeAll": multi,
        "skipUrlSync": False,
    }


def region_variable(*, multi: bool = False) -> dict[str, Any]:
    """The region picker every drill-down shares: the regions that have queue traffic."""
    return query_variable("region", "Region", "label_values(ccpulse_queue_offered_total, region)", multi=multi)


def dashboard(uid: str, title: str, description: str, panels: Iterable[Panel], *,
              variables: Sequence[dict[str, Any]] = (), refresh: str = "30s", time_from: str = "now-6h",
              hide_datasource: bool = False) -> dict[str, Any]:
    """The dashboard around the panels, linked to the other ccpulse dashboards by tag."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ccpulse"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m"]},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "links": [{"type": "dashboards", "title": "ccpulse", "tags": ["ccpulse"], "asDropdown": True,
                   "includeVars": False, "keepTime": True, "targetBlank": False, "icon": "external link",
                   "tooltip": "", "url": ""}],
        "templating": {"list": [datasource_variable(hide_datasource), *variables]},
        "panels": flow(panels),
    }
