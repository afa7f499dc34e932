"""Test-suite wide setup.

Everything under tests/integration/ is marked ``integration``, so ``pytest -m 'not integration'``
runs the quick tests without starting Kafka or Prometheus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python loads its protocol schemas with a deprecated importlib API, ~200 warnings a run
    for module in ("kafka.protocol.schemas.load_json", "importlib.resources._legacy"):
        config.addinivalue_line("filterwarnings", f"ignore::DeprecationWarning:{module}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)
