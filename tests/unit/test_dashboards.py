"""The generated dashboards: committed JSON up to date, schema-valid, and linted like dashboard-linter would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import promql_parser
import pytest

from dashboards import generate
from dashboards.builders import DATASOURCE_UID, NO_DATA
from dashboards.cli import run_build
from dashboards.metrics import KNOWN
from streams import config
from streams.cli import main

SCHEMA = json.loads((Path(generate.__file__).parent / "schema" / "dashboard.schema.json").read_text())
UIDS = {"ccpulse-noc-wall", "ccpulse-region", "ccpulse-channels", "ccpulse-pipeline", "ccpulse-tickets"}


@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    return generate.build_all(config.load(None, env={}))


def _panels(models: dict[str, dict]) -> list[tuple[str, dict]]:
    return [(m["uid"], p) for m in models.values() for p in generate.panels(m) if p["type"] != "row"]


def test_committed_json_matches_a_regeneration() -> None:
    assert generate.stale(config.load(None, env={})) == []


def test_check_names_the_files_that_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate.write(config.load(None, env={}), tmp_path)
    assert main(["dashboards", "build", "--check", "--output", str(tmp_path)]) == 0
    edited = tmp_path / "tickets.json"
    edited.write_text(edited.read_text().replace('"30s"', '"1m"'))
    (tmp_path / "region.json").unlink()
    assert main(["dashboards", "build", "--check", "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "tickets.json" in err and "region.json" in err and "noc-wall.json" not in err


def test_build_reads_the_targets_from_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "ccpulse.toml"
    conf.write_text("[channels.voice]\nsl_target = 0.75\n[targets]\nfcr_rate = 0.7\n")
    out = tmp_path / "json"
    parser_args = type("Args", (), {"config": str(conf), "check": False, "output": out})()
    assert run_build(parser_args) == 0
    wall = json.loads((out / "noc-wall.json").read_text())
    voice = next(p for p in generate.panels(wall) if p["title"] == "voice")
    sl = next(o for o in voice["fieldConfig"]["overrides"] if o["matcher"]["options"] == "A")
    steps = next(p["value"]["steps"] for p in sl["properties"] if p["id"] == "thresholds")
    assert steps[-1] == {"color": "green", "value": 0.75}
    assert any("- 0.75)" in t["expr"] for p in generate.panels(wall) for t in p.get("targets", []))
    fcr = next(p for p in generate.panels(wall) if p["title"] == "FCR")
    assert fcr["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.7


@pytest.mark.parametrize("name", list(generate.BUILDERS))
def test_dashboard_validates_against_the_schema(models: dict[str, dict], name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(models[f"{name}.json"], SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_typos_and_missing_fields(models: dict[str, dict]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    typo = json.loads(json.dumps(models["noc-wall.json"]))
    typo["refersh"] = typo.pop("refresh")
    stat = next(p for p in typo["panels"] if p["type"] == "stat")
    stat["options"]["colourMode"] = "background"
    del stat["datasource"]
    messages = [e.message for e in validator.iter_errors(typo)]
    assert any("'refersh' was unexpected" in m for m in messages)
    assert any("'colourMode' was unexpected" in m for m in messages)
    assert any("'datasource' is a required property" in m for m in messages)


def test_uids_are_the_stable_ones_and_unique(models: dict[str, dict]) -> None:
    uids = [m["uid"] for m in models.values()]
    assert sorted(uids) == sorted(UIDS)


def _selectors(expr: str) -> list[str]:
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_every_query_parses_and_uses_only_spec_metrics(models: dict[str, dict]) -> None:
    queries = list(generate.queries(models.values()))
    assert len(queries) > 80
    used = set()
    for query in queries:
        try:
            names = _selectors(query.expr)
        except ValueError as exc:
            pytest.fail(f"{query.dashboard} / {query.panel} / {query.ref}: {exc}: {query.expr}")
        assert names, f"{query.panel}: selects no series"
        unknown = set(names) - KNOWN
        assert not unknown, f"{query.dashboard} / {query.panel}: not in the spec: {unknown}"
        used.update(names)
    assert {"ccpulse_service_level_ratio", "ccpulse_wait_seconds_bucket", "ALERTS"} <= used


def test_the_name_check_would_catch_a_misspelt_metric() -> None:
    assert set(_selectors("sum(rate(ccpulse_queue_offerd_total[1m]))")) - KNOWN == {"ccpulse_queue_offerd_total"}


def test_rates_use_the_rate_interval(models: dict[str, dict]) -> None:
    for _, panel in _panels(models):
        for t in panel["targets"]:
            ranges = re.findall(r"\[([^\]]+)\]", t["expr"])
            assert set(ranges) <= {"$__rate_interval", "$__range"}, (panel["title"], t["expr"])


def test_every_panel_has_datasource_unit_description_and_no_data_text(models: dict[str, dict]) -> None:
    for uid, panel in _panels(models):
        where = f"{uid} / {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), where
        assert panel["fieldConfig"]["defaults"]["unit"], where
        assert len(panel["description"]) > 20, where
        if panel["type"] == "stat":
            assert panel["fieldConfig"]["defaults"]["noValue"] == NO_DATA, where


def test_the_datasource_variable_defaults_to_the_provisioned_uid(models: dict[str, dict]) -> None:
    provisioned = (Path(__file__).parents[2] / "deploy/grafana/provisioning/datasources/ccpulse.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in provisioned
    for model in models.values():
        variable = model["templating"]["list"][0]
        assert (variable["name"], variable["current"]["value"]) == ("datasource", DATASOURCE_UID)


def test_noc_wall_is_fit_for_a_wall(models: dict[str, dict]) -> None:
    wall = models["noc-wall.json"]
    assert wall["uid"] == "ccpulse-noc-wall"
    refresh = re.fullmatch(r"(\d+)([sm])", wall["refresh"])
    assert refresh and int(refresh[1]) * (60 if refresh[2] == "m" else 1) <= 30
    titles = {p["title"] for p in generate.panels(wall)}
    assert {"Service level", "ASA", "Abandoned", "FCR", "Bot share", "Waiting now", "Oldest wait",
            "Regions — worst first", "Firing alerts"} <= titles
    stats = [p for p in generate.panels(wall) if p["type"] == "stat"]
    assert all(p["options"]["colorMode"] == "background" for p in stats)
    regions = next(p for p in generate.panels(wall) if p["title"] == "Regions — worst first")
    assert regions["options"]["sortBy"] == [{"displayName": "SL vs target", "desc": False}]


def test_panels_fit_the_grid_without_overlapping(models: dict[str, dict]) -> None:
    for model in models.values():
        cells: set[tuple[int, int]] = set()
        for panel in generate.panels(model):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                    for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & area, f"{model['uid']}: {panel['title']} overlaps"
            cells |= area
        ids = [p["id"] for p in generate.panels(model)]
        assert len(ids) == len(set(ids))


def test_substitution_fills_grafana_macros_and_refuses_unknown_variables() -> None:
    expr = 'sum(rate(x{region="$region",channel=~"${channel}"}[$__rate_interval]))'
    assert generate.substitute(expr, {"region": "RU-MOW", "channel": "voice", "__rate_interval": "2m"}) == (
        'sum(rate(x{region="RU-MOW",channel=~"voice"}[2m]))')
    with pytest.raises(KeyError, match=r"\$region"):
        generate.substitute(expr, {"channel": "voice", "__rate_interval": "1m"})
    assert generate.variable_expr("label_values(ccpulse_queue_offered_total, region)") == (
        "count by (region) (ccpulse_queue_offered_total)")
