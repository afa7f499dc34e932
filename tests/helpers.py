"""Helpers shared by the tests: free ports, waiting for a condition, running the deploy scripts.

``tests/`` is on ``sys.path`` (pytest puts the folder of the top conftest there), so any test can
``from helpers import free_port, wait_until``.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
#: the `ccpulse` command of the environment the tests run in, as a user runs it
CCPULSE = Path(sys.executable).with_name("ccpulse")
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    Raises AssertionError naming ``what`` did not happen (with the last exception, if the
    predicate raised) when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"{what} did not happen within {timeout:g} s{detail}")
        time.sleep(interval)


def deploy(script: str, *args: str, timeout: float = 180) -> str:
    """Run ``deploy/<script>`` and return its output; fail the test with that output if it fails."""
    proc = subprocess.run([str(REPO / "deploy" / script), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"deploy/{script} {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc.stdout


@dataclasses.dataclass(frozen=True)
class PrometheusStack:
    """A running Prometheus + Alertmanager; tests point its scrape job at their own targets."""

    url: str
    alertmanager_url: str
    run_dir: Path

    def get(self, path: str, **params: str) -> Any:
        """The ``data`` of a Prometheus HTTP API answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL query (``/api/v1/query``)."""
        return self.get("/api/v1/query", query=promql)["result"]

    def scrape(self, targets: list[str], timeout: float = 30) -> None:
        """Make the ``ccpulse`` job scrape exactly ``targets`` and wait until Prometheus has them."""
        deploy("prometheus.sh", "targets", "--run-dir", str(self.run_dir), "--targets", ",".join(targets))
        wanted = {f"http://{target}/metrics" for target in targets}

        def active() -> bool:
            found = {t["scrapeUrl"] for t in self.get("/api/v1/targets", state="active")["activeTargets"]
                     if t["labels"].get("job") == "ccpulse"}
            return found == wanted

        wait_until(active, timeout, f"Prometheus picking up the scrape targets {sorted(wanted)}")


def require_tool(*names: str) -> str:
    """The path of the first of these programs on PATH; fails the test (never skips) otherwise."""
    import shutil

    import pytest

    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{' or '.join(names)} is not on PATH; deploy/install.sh --for-tests installs it")
