"""`ccpulse replay` (spec metrics.md, Replay): files, .gz, stdin, --as-of, --dlq, errors, output order."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from capabilities import file_modes_enforced
from helpers import CCPULSE
from oracle import RECORD_FIELDS, ev, line, ms

from streams import cli

T = ms("2025-11-22T10:00:00Z")
H = 3_600_000


def at(seconds: float) -> int:
    return T + round(seconds * 1000)


def day_of_events() -> list[dict[str, Any]]:
    return [
        ev("contact.started", at(0), contact="a"),
        ev("queue.entered", at(1), contact="a"),
        ev("queue.left", at(21), contact="a", reason="answered"),
        ev("contact.ended", at(141), contact="a", resolved=True, handled_by="agent", first_contact=True),
        ev("contact.started", at(5), contact="b", region="RU-KAM", channel="chat"),
        ev("bot.started", at(6), contact="b", region="RU-KAM", channel="chat"),
        ev("bot.ended", at(60), contact="b", region="RU-KAM", channel="chat", outcome="resolved"),
        ev("contact.ended", at(61), contact="b", region="RU-KAM", channel="chat", resolved=True, handled_by="bot"),
        ev("queue.entered", at(100), contact="w", region="RU-KGD"),
    ]


def write(path: Path, events: list[Any]) -> Path:
    data = b"".join((e if isinstance(e, bytes) else line(e)) + b"\n" for e in events)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def replay(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = cli.main(["replay", *args])
    out, err = capsysbinary.readouterr()
    return code, (orjson.loads(out) if code == 0 else out), err.decode()


def by_key(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["region"], r["channel"], r["window"]): r for r in records}


def test_replay_prints_sorted_records_and_a_summary(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = day_of_events()
    path = write(tmp_path / "events.jsonl", [*events, b"{broken", line(events[0])])
    code, records, err = replay(capsysbinary, str(path))
    assert code == 0
    keys = [(r["region"], r["channel"]) for r in records]
    assert keys == sorted(keys)
    order = {"5m": 0, "15m": 1, "60m": 2, "today": 3}
    assert [order[r["window"]] for r in records] == [0, 1, 2, 3] * (len(records) // 4)
    assert all(tuple(r) == RECORD_FIELDS for r in records)
    assert {k[:2] for k in by_key(records)} == {
        ("RU-MOW", "voice"), ("RU-MOW", "ALL"), ("RU-KAM", "chat"), ("RU-KAM", "ALL"), ("RU-KGD", "voice"),
        ("RU-KGD", "ALL"), ("ALL", "voice"), ("ALL", "chat"), ("ALL", "ALL")}
    r = by_key(records)[("RU-MOW", "voice", "60m")]
    assert (r["answered"], r["wait_avg_s"], r["handle_avg_s"], r["fcr_rate"]) == (1, 20.0, 120.0, 1.0)
    assert r["as_of"] == "2025-11-22T10:02:21.000Z"
    assert "1 duplicates" in err and "1 rejected" in err and "malformed: 1" in err
    assert err.count("\n") >= 2


def test_replay_reads_gzip_and_several_files_in_any_order(tmp_path: Path,
                                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = day_of_events()
    whole = write(tmp_path / "all.jsonl", events)
    first = write(tmp_path / "first.jsonl.gz", events[::2])
    second = write(tmp_path / "second.jsonl", events[1::2][::-1])
    _, expected, _ = replay(capsysbinary, str(whole))
    _, split, _ = replay(capsysbinary, str(second), str(first))
    assert split == expected


def test_replay_reads_stdin(tmp_path: Path) -> None:
    data = b"".join(line(e) + b"\n" for e in day_of_events())
    plain = subprocess.run([str(CCPULSE), "replay", "-"], input=data, capture_output=True, check=True, timeout=60)
    zipped = subprocess.run([str(CCPULSE), "replay", "-"], input=gzip.compress(data), capture_output=True,
                            check=True, timeout=60)
    records = orjson.loads(plain.stdout)
    assert records and orjson.loads(zipped.stdout) == records
    assert by_key(records)[("ALL", "ALL", "today")]["contacts"] == 2


def test_dlq_gets_rejections_but_not_duplicates(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    bad = [b"not json", line(ev("contact.started", at(0), region="RU-XXX")),
           line(ev("contact.ended", at(200), contact="a", resolved=False, handled_by="none")),
           line(ev("contact.started", ms("2099-01-01T00:00:00Z"), contact="f"))]
    events = day_of_events()
    path = write(tmp_path / "in.jsonl", [*events, events[2], *bad])
    dlq = tmp_path / "dead.jsonl"
    code, _, err = replay(capsysbinary, str(path), "--dlq", str(dlq))
    assert code == 0
    letters = [orjson.loads(x) for x in dlq.read_bytes().splitlines()]
    assert sorted(x["reason"] for x in letters) == ["conflict", "future_timestamp", "malformed", "unknown_region"]
    assert sorted(x["raw"] for x in letters) == sorted(b.decode() for b in bad)
    for reason in ("conflict", "future_timestamp", "malformed", "unknown_region"):
        assert f"{reason}: 1" in err


def test_replay_never_rejects_too_late(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = [ev("contact.started", T + 40 * H, contact="new"), ev("contact.started", T, contact="old")]
    _, records, err = replay(capsysbinary, str(write(tmp_path / "in.jsonl", events)))
    assert "0 rejected" in err
    assert by_key(records)[("RU-MOW", "voice", "today")]["contacts"] == 1


def test_conflicts_are_decided_by_event_time_not_line_order(tmp_path: Path,
                                                            capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    early = ev("contact.ended", at(10), resolved=True, handled_by="agent")
    late = ev("contact.ended", at(20), resolved=False, handled_by="agent")
    for order in ([early, late], [late, early]):
        _, records, _ = replay(capsysbinary, str(write(tmp_path / "in.jsonl", order)))
        r = by_key(records)[("RU-MOW", "voice", "5m")]
        assert (r["ended"], r["resolved"]) == (1, 1)


def test_one_event_id_on_two_different_lines_at_one_time_is_decided_not_by_line_order(
        tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The same event_id and ts with different bodies: one counts and the other is a duplicate, the
    same one whichever line comes first."""
    moscow = ev("contact.started", at(0), contact="a", event_id="same")
    chelyabinsk = ev("contact.started", at(0), contact="a", event_id="same", region="RU-CHE")
    outputs = []
    for order in ([moscow, chelyabinsk], [chelyabinsk, moscow]):
        _, records, err = replay(capsysbinary, str(write(tmp_path / "in.jsonl", order)))
        assert "1 accepted, 1 duplicates" in err
        outputs.append(records)
    assert outputs[0] == outputs[1]


def test_as_of_hides_later_events_and_keeps_visits_waiting(tmp_path: Path,
                                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = [ev("queue.entered", at(0)), ev("queue.left", at(60), reason="answered"),
              ev("contact.started", at(-30), contact="x"), ev("contact.started", at(45), contact="y")]
    path = write(tmp_path / "in.jsonl", events)
    _, records, err = replay(capsysbinary, str(path), "--as-of", "2025-11-22T13:00:30+03:00")
    r = by_key(records)[("RU-MOW", "voice", "5m")]
    assert r["as_of"] == "2025-11-22T10:00:30.000Z"
    assert (r["contacts"], r["offered"], r["answered"]) == (1, 1, 0)
    assert (r["waiting_now"], r["oldest_waiting_s"], r["waiting_over_sla"]) == (1, 30.0, 0)
    assert "2 after as_of" in err
    _, records, _ = replay(capsysbinary, str(path))
    r = by_key(records)[("RU-MOW", "voice", "5m")]
    assert (r["contacts"], r["answered"], r["waiting_now"]) == (2, 1, 0)


def test_as_of_later_than_the_input_ages_live_values(tmp_path: Path,
                                                     capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = write(tmp_path / "in.jsonl", [ev("queue.entered", at(0))])
    _, records, _ = replay(capsysbinary, str(path), "--as-of", "2025-11-22T10:01:40Z")
    r = by_key(records)[("RU-MOW", "voice", "5m")]
    assert (r["waiting_now"], r["oldest_waiting_s"], r["waiting_over_sla"], r["offered"]) == (1, 100.0, 1, 1)


@pytest.mark.parametrize("make", ["missing", "directory", "bad_gzip", "unreadable"])
def test_an_unreadable_file_is_one_line_and_a_non_zero_exit(tmp_path: Path, make: str,
                                                            capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    good = write(tmp_path / "good.jsonl", day_of_events())
    bad = tmp_path / ("bad.jsonl.gz" if make == "bad_gzip" else "bad.jsonl")
    if make == "directory":
        bad.mkdir()
    elif make == "bad_gzip":
        bad.write_bytes(b"this is not gzip\n")
    elif make == "unreadable":
        write(bad, day_of_events())
        bad.chmod(0)
    with file_modes_enforced():  # root too: it would read the mode-0 file otherwise
        if make == "unreadable":
            assert not os.access(bad, os.R_OK, effective_ids=True)
        code, out, err = replay(capsysbinary, str(good), str(bad))
    assert code != 0
    assert out == b""
    assert err.count("\n") == 1 and str(bad) in err


def test_empty_input_gives_an_empty_array(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, records, _ = replay(capsysbinary, str(write(tmp_path / "empty.jsonl", [])))
    assert (code, records) == (0, [])
