"""A metric family built when scraped, for series kept as plain numbers or records.

prometheus-client's custom-collector interface: `describe` names the family (so `?name[]=` finds
the collector without building it), `collect` builds it from the current values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ScrapeCollector:
    """One metric family: `empty()` makes it without samples, `fill(family)` adds the current ones."""

    def __init__(self, empty: Callable[[], Any], fill: Callable[[Any], None]) -> None:
        self.empty = empty
        self.fill = fill

    def describe(self) -> list[Any]:
        return [self.empty()]

    def collect(self) -> list[Any]:
        family = self.empty()
        self.fill(family)
        return [family]
