"""The worker's logging: the level asked for is the level records are built at."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streams import config
from streams.streaming.app import ServiceWorker, build_app


@pytest.mark.parametrize("level", ["warning", "info"])
def test_the_root_logger_stays_at_the_requested_level(level: str, tmp_path: Path) -> None:
    """Faust's spinner would set it to DEBUG: every debug call (one per message sent) would build a record."""
    worker = build_app(config.load(env={}), web_port=16066, datadir=str(tmp_path))  # never bound here
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        ServiceWorker(worker.app, loglevel=level, quiet=True, redirect_stdouts=False)._setup_logging()
        assert root.level == getattr(logging, level.upper())
        assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
