"""The real local stack for integration tests, started once per test session and always stopped.

Fixtures start the servers through the same ``deploy/*.sh`` scripts users run, on free ports and
in run folders under pytest's temporary directory, so tests never touch a developer's own stack.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import PrometheusStack, deploy, free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a fresh single-node Kafka broker."""
    run_dir = str(tmp_path_factory.mktemp("kafka"))
    port = free_port()
    try:
        deploy("kafka.sh", "start", "--port", str(port), "--run-dir", run_dir)
        yield f"127.0.0.1:{port}"
    finally:
        deploy("kafka.sh", "stop", "--run-dir", run_dir)


@pytest.fixture(scope="session")
def prometheus_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusStack]:
    """Prometheus (5 s scrapes, the project's rule files) and Alertmanager on free ports."""
    run_dir = tmp_path_factory.mktemp("prometheus")
    port, am_port = free_port(), free_port()
    try:
        deploy("prometheus.sh", "start", "--run-dir", str(run_dir), "--port", str(port),
               "--alertmanager-port", str(am_port), "--targets", "")
        yield PrometheusStack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{am_port}", run_dir)
    finally:
        deploy("prometheus.sh", "stop", "--run-dir", str(run_dir))
