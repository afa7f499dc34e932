"""Prometheus rules: generated from the configuration, committed, valid, and unit-tested with promtool.

The promtool suites under tests/prometheus/ are hand-written from the spec; this module runs them,
checks that they cover every alert both ways (fires / must not fire), and that the committed rule
files are what the generator writes from the default configuration.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, require_tool

from streams import config
from streams.errors import CcpulseError
from streams.rules import cli
from streams.rules.alerts import RuleOptions
from streams.rules.files import ALERTS_FILE, DEFAULT_DIR, RECORDING_FILE, rule_files, stale

TESTS_DIR = REPO / "tests" / "prometheus"
TEST_FILES = sorted(TESTS_DIR.glob("*.test.yml"))
DASHBOARD_UIDS = {"ccpulse-noc-wall", "ccpulse-region", "ccpulse-channels", "ccpulse-pipeline",
                  "ccpulse-tickets"}


def promtool() -> str:
    return require_tool("promtool")


def run_promtool(*args: str) -> str:
    proc = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def default_files() -> dict[str, str]:
    return rule_files(config.load(None, env={}))


def alert_rules(text: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"] if "alert" in rule]


def test_committed_rule_files_are_what_the_generator_writes() -> None:
    assert DEFAULT_DIR == REPO / "deploy" / "prometheus" / "rules"
    differing = stale(default_files(), DEFAULT_DIR)
    assert not differing, f"out of date: {differing}; run `ccpulse rules build`"


def test_promtool_accepts_the_rule_files() -> None:
    out = run_promtool("check", "rules", str(DEFAULT_DIR / RECORDING_FILE), str(DEFAULT_DIR / ALERTS_FILE))
    assert "SUCCESS" in out


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    assert "SUCCESS" in run_promtool("test", "rules", str(path))


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules(default_files()[ALERTS_FILE])}
    assert len(names) == 13
    assert names - fires == set(), "alerts without a case where they fire"
    assert names - quiet == set(), "alerts without a near miss"
    assert fires | quiet <= names, "tests name alerts that do not exist"


def test_every_alert_carries_the_routing_contract() -> None:
    for rule in alert_rules(default_files()[ALERTS_FILE]):
        labels, notes = rule["labels"], rule["annotations"]
        assert labels["severity"] in {"page", "ticket", "warning"}, rule["alert"]
        assert labels["kind"] in {"kpi", "pipeline"}, rule["alert"]
        assert set(notes) == {"summary", "description", "dashboard"}, rule["alert"]
        assert "$value" in notes["description"] or rule["alert"] == "CcpulseNoWorkerScraped", rule["alert"]
        uid = notes["dashboard"].removeprefix("http://localhost:3000/d/").split("?")[0]
        assert uid in DASHBOARD_UIDS, rule["alert"]


def test_targets_and_volume_come_from_the_configuration(tmp_path: Path) -> None:
    settings = config.load(None, env={
        "CCPULSE_CHANNELS__VOICE__SL_TARGET": "0.85",
        "CCPULSE_CHANNELS__CHAT__ABANDON_TARGET": "0.03",
        "CCPULSE_CHANNELS__EMAIL__SLA_THRESHOLD_S": "43200",
        "CCPULSE_TARGETS__FCR_RATE": "0.8",
        "CCPULSE_PIPELINE__MIN_VOLUME": "50",
    })
    files = rule_files(settings, RuleOptions(grafana_url="https://grafana.example/"))
    recording = yaml.safe_load(files[RECORDING_FILE])["groups"][0]["rules"]
    constants = {(r["record"], r["labels"]["channel"]): r["expr"] for r in recording}
    assert constants["channel:ccpulse_service_level_target:ratio", "voice"] == "vector(0.85)"
    assert constants["channel:ccpulse_abandon_target:ratio", "chat"] == "vector(0.03)"
    assert constants["channel:ccpulse_sla_threshold:seconds", "email"] == "vector(43200)"
    assert ("channel:ccpulse_abandon_target:ratio", "email") not in constants  # no abandon target
    alerts = {rule["alert"]: rule for rule in alert_rules(files[ALERTS_FILE])}
    assert "increase15m >= 50" in alerts["CcpulseServiceLevelBreach"]["expr"]
    assert "< 0.8\n" in alerts["CcpulseFcrBelowTarget"]["expr"]
    assert "target of 80%" in alerts["CcpulseFcrBelowTarget"]["annotations"]["description"]
    assert alerts["CcpulseRegionSilent"]["annotations"]["dashboard"].startswith(
        "https://grafana.example/d/ccpulse-pipeline?")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    run_promtool("check", "rules", *(str(tmp_path / name) for name in files))


def test_cli_build_writes_and_check_fails_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())

    def run(*argv: str) -> int:
        args = parser.parse_args(["rules", "build", "--out", str(tmp_path), *argv])
        return args.func(args)

    with pytest.raises(CcpulseError, match="out of date"):
        run("--check")
    assert run() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([RECORDING_FILE, ALERTS_FILE])
    assert run("--check") == 0
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(CcpulseError, match=ALERTS_FILE):
        run("--check", "--grafana-url", "http://grafana:3000")
