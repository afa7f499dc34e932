"""RFC 3339 parsing: the cached fast path reads every timestamp exactly as the full parse does."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core import timefmt

MINUTE = "2026-11-22T10:17:"


def full_parse(text: str) -> int | str:
    try:
        return timefmt._parse(text)
    except ValueError as exc:
        return str(exc)


def cached_parse(text: str) -> int | str:
    try:
        return timefmt.parse_rfc3339(text)
    except ValueError as exc:
        return str(exc)


@given(st.text(alphabet="0123456789.:Z٣x ", min_size=6, max_size=6))
def test_seconds_and_millis_of_a_known_minute_read_as_the_full_parse(tail: str) -> None:
    timefmt.parse_rfc3339(MINUTE + "00.000Z")  # the minute is cached
    text = MINUTE + tail[:-1] + "Z"
    assert cached_parse(text) == full_parse(text)
    assert cached_parse(text) == full_parse(text)  # and again, from the cache


@given(st.text(alphabet="0123456789.:Zz+-٣x ", max_size=12))
def test_any_tail_of_a_known_minute_reads_as_the_full_parse(tail: str) -> None:
    """The fast path checks no length nor position: its three keys must cover the text exactly."""
    timefmt.parse_rfc3339(MINUTE + "00.000Z")
    text = MINUTE + tail
    assert cached_parse(text) == full_parse(text)


@pytest.mark.parametrize("tail", ["59.999Z", "07.500ZZ", "07.500", "07.50Z", "07.500+00:00", "07Z", "07.500z",
                                  "60.000Z", "61.000Z", "07.5x0Z", "07,500Z", "٣7.500Z"])
def test_edge_seconds(tail: str) -> None:
    timefmt.parse_rfc3339(MINUTE + "00.000Z")
    assert cached_parse(MINUTE + tail) == full_parse(MINUTE + tail)


def test_a_plain_timestamp_is_its_epoch_milliseconds() -> None:
    moment = dt.datetime(2026, 11, 22, 10, 17, 42, 123_000, tzinfo=dt.timezone.utc)
    assert timefmt.parse_rfc3339("2026-11-22T10:17:42.123Z") == int(moment.timestamp() * 1000)
