"""Dead-letter records: a rejected event with its reason and its original bytes (spec: Rejections)."""

from __future__ import annotations

from typing import Any

from streams.core.events import Rejected
from streams.core.timefmt import format_ms


def raw_text(raw: bytes) -> str:
    """The original value as a string; undecodable bytes are escaped, never dropped."""
    return raw.decode("utf-8", errors="backslashreplace")


def dead_letter(raw: bytes, rejection: Rejected, rejected_at_ms: int) -> dict[str, Any]:
    return {
        "reason": rejection.reason,
        "field": rejection.field,
        "detail": rejection.detail,
        "rejected_at": format_ms(rejected_at_ms),
        "raw": raw_text(raw),
    }
