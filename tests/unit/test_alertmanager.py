"""Alertmanager: the config is valid, every generated alert reaches its receiver, and inhibition works.

Routing is checked with ``amtool config routes test`` using each alert's severity and kind as the
generated rules set them; inhibition with a real Alertmanager on 127.0.0.1 that receives alerts
through its API and reports which ones it mutes.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, free_port, require_tool, wait_until

from streams import config
from streams.rules.files import ALERTS_FILE, rule_files

CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"

#: alertname -> (region, channel the alert would carry, receiver it must reach)
ROUTES: list[tuple[str, str, str, str]] = [
    ("CcpulseServiceLevelCollapse", "RU-IRK", "voice", "noc-pager-east"),
    ("CcpulseServiceLevelCollapse", "RU-KAM", "chat", "noc-pager-east"),
    ("CcpulseServiceLevelCollapse", "RU-CHE", "voice", "noc-pager-ural"),
    ("CcpulseServiceLevelCollapse", "RU-MOW", "voice", "noc-pager-west"),
    ("CcpulseServiceLevelCollapse", "RU-AD", "app", "noc-pager-west"),
    ("CcpulseServiceLevelBreach", "RU-IRK", "voice", "noc-chat"),
    ("CcpulseAbandonRateHigh", "RU-MOW", "chat", "noc-chat"),
    ("CcpulseAsaAboveThreshold", "RU-CHE", "messenger", "noc-chat"),
    ("CcpulseFcrBelowTarget", "RU-IRK", "voice", "noc-tickets"),
    ("CcpulseFirstLineBelowTarget", "RU-MOW", "voice", "noc-tickets"),
    ("CcpulseTicketPromiseBroken", "RU-CHE", "email", "noc-tickets"),
    ("CcpulseRegionSilent", "RU-IRK", "ALL", "pipeline-pager"),
    ("CcpulseNoWorkerScraped", "ALL", "ALL", "pipeline-pager"),
    ("CcpulseWatermarkStalled", "RU-MOW", "ALL", "pipeline-chat"),
    ("CcpulsePartitionsStalled", "ALL", "ALL", "pipeline-pager"),
    ("CcpulseDeadLetterRateHigh", "ALL", "ALL", "pipeline-chat"),
    ("CcpulseConsumerLagGrowing", "ALL", "ALL", "pipeline-chat"),
]




def rule_labels() -> dict[str, dict[str, str]]:
    """alertname -> the static labels the generated rule sets (severity, kind, ...)."""
    groups = yaml.safe_load(rule_files(config.load(None, env={}))[ALERTS_FILE])["groups"]
    return {rule["alert"]: rule["labels"] for group in groups for rule in group["rules"]}


def test_amtool_accepts_the_config() -> None:
    proc = subprocess.run([require_tool("amtool"), "check-config", str(CONFIG)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 inhibit rules" in proc.stdout


def test_every_alert_has_a_routing_case() -> None:
    assert {name for name, *_ in ROUTES} == set(rule_labels())


@pytest.mark.parametrize(("alertname", "region", "channel", "receiver"), ROUTES,
                         ids=[f"{a}-{r}-{c}" for a, r, c, _ in ROUTES])
def test_alert_reaches_its_receiver(alertname: str, region: str, channel: str, receiver: str) -> None:
    labels = {**rule_labels()[alertname], "alertname": alertname, "region": region, "channel": channel}
    proc = subprocess.run(
        [require_tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}",
         f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{labels} -> {proc.stdout.strip()} (expected {receiver})"


@pytest.fixture()
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager with the project's config on a free loopback port; its base URL."""
    port = free_port()
    with (tmp_path / "alertmanager.log").open("wb") as log:
        proc = subprocess.Popen(
            [require_tool("alertmanager", "prometheus-alertmanager"), f"--config.file={CONFIG}",
             f"--storage.path={tmp_path}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{url}/-/ready") is not None, 20, "Alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if body.startswith((b"[", b"{")) else body


def _post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    rules = rule_labels()
    payload = [{"labels": {**rules[a["alertname"]], **a}, "annotations": {"summary": "test"}}
               for a in alerts]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def test_inhibition_mutes_kpis_of_a_stalled_region_and_warnings_under_a_page(alertmanager: str) -> None:
    _post_alerts(alertmanager, [
        {"alertname": "CcpulseRegionSilent", "region": "RU-CHE", "channel": "ALL"},
        {"alertname": "CcpulseServiceLevelBreach", "region": "RU-CHE", "channel": "voice"},
        {"alertname": "CcpulseTicketPromiseBroken", "region": "RU-CHE", "channel": "email"},
        {"alertname": "CcpulseWatermarkStalled", "region": "RU-KGN", "channel": "ALL", "instance": "w1"},
        {"alertname": "CcpulseFcrBelowTarget", "region": "RU-KGN", "channel": "voice"},
        {"alertname": "CcpulseServiceLevelCollapse", "region": "RU-MOW", "channel": "chat"},
        {"alertname": "CcpulseServiceLevelBreach", "region": "RU-MOW", "channel": "chat"},
        {"alertname": "CcpulseAbandonRateHigh", "region": "RU-MOW", "channel": "voice"},
        {"alertname": "CcpulseFcrBelowTarget", "region": "RU-MOW", "channel": "voice"},
    ])

    expected = {
        ("CcpulseServiceLevelBreach", "RU-CHE", "voice"),     # region silent
        ("CcpulseTicketPromiseBroken", "RU-CHE", "email"),    # region silent
        ("CcpulseFcrBelowTarget", "RU-KGN", "voice"),         # watermark stalled for the region
        ("CcpulseServiceLevelBreach", "RU-MOW", "chat"),      # the collapse page of the same channel
    }
    seen: dict[str, set[tuple[str, str, str]]] = {}

    def muted() -> set[tuple[str, str, str]] | None:
        """The suppressed alerts once all 9 are held and the inhibitor has marked them (it runs after the
        alerts arrive, so a first read can still show every alert active)."""
        alerts = _get(f"{alertmanager}/api/v2/alerts")
        seen["muted"] = {(a["labels"]["alertname"], a["labels"]["region"], a["labels"]["channel"])
                         for a in alerts if a["status"]["state"] == "suppressed"}
        return seen["muted"] if len(alerts) == 9 and seen["muted"] == expected else None

    try:
        wait_until(muted, 20, "Alertmanager holding the 9 alerts with the expected ones suppressed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; suppressed: {sorted(seen.get('muted', ()))}") from None
