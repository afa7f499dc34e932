"""The local Prometheus stack: it scrapes the targets it is given, loads the project's rule files,
talks to its Alertmanager, and its config is the same template docker-compose uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, PrometheusStack, deploy, free_port, wait_until
from prometheus_client import CollectorRegistry, Counter, start_http_server


@pytest.fixture
def exporter() -> Iterator[str]:
    """A tiny /metrics endpoint standing in for a worker: a counter at 7."""
    registry = CollectorRegistry()
    Counter("ccpulse_scrape_probe", "test counter", registry=registry).inc(7)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


def test_prometheus_scrapes_the_given_target(prometheus_stack: PrometheusStack, exporter: str) -> None:
    prometheus_stack.scrape([exporter])
    series = wait_until(lambda: prometheus_stack.query('ccpulse_scrape_probe_total{job="ccpulse"}'), 30,
                        f"a scrape of {exporter} showing up in Prometheus")
    assert [(s["metric"]["instance"], s["value"][1]) for s in series] == [(exporter, "7")]
    assert prometheus_stack.query('up{job="ccpulse"}')[0]["value"][1] == "1"


def test_prometheus_loads_the_rule_files_and_knows_its_alertmanager(prometheus_stack: PrometheusStack) -> None:
    files = {str(path) for path in (REPO / "deploy" / "prometheus" / "rules").glob("*.yml")}
    loaded = {group["file"] for group in prometheus_stack.get("/api/v1/rules")["groups"]}
    assert loaded == files
    alertmanagers = wait_until(lambda: prometheus_stack.get("/api/v1/alertmanagers")["activeAlertmanagers"], 30,
                               "Prometheus discovering its Alertmanager")
    assert alertmanagers[0]["url"].startswith(prometheus_stack.alertmanager_url)


def test_compose_config_is_the_current_rendering(tmp_path: Path) -> None:
    out = tmp_path / "prometheus.yml"
    deploy("prometheus.sh", "render", "--out", str(out), "--interval", "15s", "--rules-dir", "/etc/prometheus/rules",
           "--alertmanager", "alertmanager:9093", "--targets-file", "/etc/prometheus/targets/ccpulse.json")
    committed = REPO / "deploy" / "prometheus" / "prometheus.yml"
    assert committed.read_text() == out.read_text(), (
        "deploy/prometheus/prometheus.yml is stale; re-render it with the command in this test")
