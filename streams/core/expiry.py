"""Filing things to forget by minute, so releasing them costs the minutes passed, not the state held."""

from __future__ import annotations

from collections.abc import Hashable, Iterator


class MinuteIndex:
    """Items filed under the minute after which they may be forgotten."""

    __slots__ = ("cursor", "items")

    def __init__(self) -> None:
        self.items: dict[int, list[Hashable]] = {}
        self.cursor: int | None = None

    def add(self, minute: int, item: Hashable) -> None:
        self.items.setdefault(minute, []).append(item)
        if self.cursor is None or minute < self.cursor:
            self.cursor = minute

    def pop_before(self, minute: int) -> Iterator[Hashable]:
        """Every item filed under a minute earlier than `minute`."""
        while self.cursor is not None and self.cursor < minute:
            yield from self.items.pop(self.cursor, ())
            self.cursor = self.cursor + 1 if self.items else None
