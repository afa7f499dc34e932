"""The simulator: valid events per the spec, deterministic, in time order, scenarios, sinks, CLI.

The event checker below is an independent reading of /work/shared/spec/events.md (not the
pipeline's validator), so a disagreement between the two shows up here.
"""

from __future__ import annotations

import collections
import gzip
import itertools
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers import wait_until

from streams import cli, regions
from streams.core.timefmt import now_ms, parse_rfc3339
from streams.errors import CcpulseError
from streams.simulate import scenarios
from streams.simulate.generator import SimConfig, Simulation, generate
from streams.simulate.malformed import KINDS
from streams.simulate.runner import Pacing, Progress, StopRequest, run
from streams.simulate.sinks import FileSink

START = parse_rfc3339("2025-03-03T06:00:00Z")
FEW = ("RU-MOW", "RU-CHE", "RU-KGD", "RU-KAM", "RU-SVE")

TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
CHANNELS = {"voice", "chat", "messenger", "email", "social", "app", "voice_assistant"}
TICKET_TYPES = {"ticket.created", "ticket.resolved"}


def _id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 128


def _nonneg(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _visit(e: dict[str, Any]) -> bool:
    v = e.get("visit", 1)
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


EXTRA = {
    "contact.started": lambda e: True,
    "bot.started": lambda e: True,
    "bot.ended": lambda e: e.get("outcome") in {"resolved", "handoff", "abandoned"},
    "queue.entered": _visit,
    "queue.left": lambda e: (e.get("reason") in {"answered", "abandoned", "transferred", "callback", "timeout"}
                             and _visit(e) and ("wait_s" not in e or _nonneg(e["wait_s"]))
                             and ("agent_id" not in e or isinstance(e["agent_id"], str))),
    "contact.transferred": lambda e: e.get("to") in {"tier2", "queue", "external"},
    "contact.ended": lambda e: (isinstance(e.get("resolved"), bool) and e.get("handled_by") in {"bot", "agent", "none"}
                                and isinstance(e.get("escalated", False), bool)
                                and isinstance(e.get("first_contact", True), bool)
                                and ("handle_s" not in e or _nonneg(e["handle_s"]))),
    "survey.responded": lambda e: (("csat" in e or "nps" in e)
                                   and ("csat" not in e or e["csat"] in {1, 2, 3, 4, 5})
                                   and ("nps" not in e or e["nps"] in set(range(11)))),
    "ticket.created": lambda e: _id(e.get("ticket_id")),
    "ticket.resolved": lambda e: _id(e.get("ticket_id")),
}


def problems(key: bytes, e: Any) -> list[str]:
    """Every way in which one decoded event breaks the spec (empty when it is valid)."""
    if not isinstance(e, dict):
        return ["not an object"]
    found = []
    if not _id(e.get("event_id")):
        found.append("event_id")
    if e.get("type") not in EXTRA:
        return [*found, "type"]
    if not (isinstance(e.get("ts"), str) and TS.fullmatch(e["ts"])):
        found.append("ts")
    ticket = e["type"] in TICKET_TYPES
    if not ticket and not _id(e.get("contact_id")):
        found.append("contact_id")
    if e.get("region") not in regions.catalogue():
        found.append("region")
    if e.get("channel") not in CHANNELS:
        found.append("channel")
    for optional in ("site", "customer_key"):
        if optional in e and not isinstance(e[optional], str):
            found.append(optional)
    if not EXTRA[e["type"]](e):
        found.append(f"fields of {e['type']}")
    expected_key = e.get("ticket_id") if ticket else e.get("contact_id")
    if key != str(expected_key).encode():
        found.append("key")
    return found


def _events(config: SimConfig) -> list[tuple[bytes, dict[str, Any]]]:
    return [(key, orjson.loads(value)) for key, value in generate(config)]


def _hour(**kw: Any) -> SimConfig:
    return SimConfig(**{"start_ms": START, "seed": 11, "duration_s": 3600.0, "regions": FEW, **kw})


@pytest.fixture(scope="module")
def hour_events() -> list[tuple[bytes, dict[str, Any]]]:
    return _events(_hour())


def test_every_event_is_valid(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    assert len(hour_events) > 1000
    bad = [(e, found) for key, e in hour_events if (found := problems(key, e))]
    assert bad == []
    # every type appears; tickets are resolved hours later, mostly after this hour
    assert {e["type"] for _, e in hour_events} >= set(EXTRA) - {"ticket.resolved"}
    assert len({e["event_id"] for _, e in hour_events}) == len(hour_events)


def test_time_ordered_and_within_the_run(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    times = [parse_rfc3339(e["ts"]) for _, e in hour_events]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < START + 3_600_000


def test_pairs_are_consistent(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    """wait_s and handle_s, when given, agree with the timestamps the pipeline would pair."""
    entered: dict[tuple[str, int], int] = {}
    answered: dict[str, int] = {}
    checked_wait = checked_handle = 0
    for _, e in hour_events:
        ts = parse_rfc3339(e["ts"])
        visit = (e.get("contact_id"), e.get("visit", 1))
        if e["type"] == "queue.entered":
            assert visit not in entered
            entered[visit] = ts
        elif e["type"] == "queue.left":
            assert visit in entered, e
            if "wait_s" in e:
                assert e["wait_s"] == pytest.approx((ts - entered[visit]) / 1000, abs=0.002)
                checked_wait += 1
            if e["reason"] == "answered":
                answered[e["contact_id"]] = ts
        elif e["type"] == "contact.ended" and "handle_s" in e and e["contact_id"] in answered:
            assert e["handle_s"] == pytest.approx((ts - answered[e["contact_id"]]) / 1000, abs=0.002)
            checked_handle += 1
    assert checked_wait > 100 and checked_handle > 100


def test_same_seed_same_bytes_other_seed_differs() -> None:
    config = _hour(duration_s=600.0)
    first = list(generate(config))
    assert first == list(generate(config))
    assert first != list(generate(_hour(duration_s=600.0, seed=12)))


def test_count_caps_the_output() -> None:
    assert len(list(generate(_hour(count=123, duration_s=None)))) == 123


def test_restricting_regions(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    assert {e["region"] for _, e in hour_events} == set(FEW)


def _parse(text: str, regions_: tuple[str, ...] = FEW) -> scenarios.Scenario:
    return scenarios.parse(text, START, regions_)


def _voice_waits(events: list[tuple[bytes, dict[str, Any]]], region: str) -> tuple[float, float]:
    entered, waits, abandoned = {}, [], 0
    for _, e in events:
        if e["region"] != region or e["channel"] != "voice":
            continue
        visit = (e["contact_id"], e.get("visit", 1))
        if e["type"] == "queue.entered":
            entered[visit] = parse_rfc3339(e["ts"])
        elif e["type"] == "queue.left":
            waits.append((parse_rfc3339(e["ts"]) - entered[visit]) / 1000)
            abandoned += e["reason"] == "abandoned"
    return sum(waits) / len(waits), abandoned / len(waits)


def test_voice_collapse_raises_that_regions_wait(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    collapsed = _events(_hour(scenarios=(_parse("voice-collapse:region=RU-CHE,start=+0m,duration=1h"),)))
    base_wait, base_abandon = _voice_waits(hour_events, "RU-CHE")
    wait, abandon = _voice_waits(collapsed, "RU-CHE")
    assert wait > 4 * base_wait and abandon > 4 * base_abandon + 0.05
    other_wait, _ = _voice_waits(collapsed, "RU-SVE")
    assert other_wait < 2 * _voice_waits(hour_events, "RU-SVE")[0]


def test_bot_outage_turns_sessions_into_handoffs(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    def handoff_share(events: list[tuple[bytes, dict[str, Any]]]) -> float:
        outcomes = [e["outcome"] for _, e in events if e["type"] == "bot.ended"]
        return outcomes.count("handoff") / len(outcomes)

    outage = _events(_hour(scenarios=(_parse("bot-outage:start=+0m,duration=1h,handoff=0.95"),)))
    assert handoff_share(hour_events) < 0.7 < 0.9 < handoff_share(outage)


def test_surge_multiplies_a_channel(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    def chats(events: list[tuple[bytes, dict[str, Any]]]) -> int:
        return sum(e["type"] == "contact.started" and e["channel"] == "chat" for _, e in events)

    surged = _events(_hour(scenarios=(_parse("surge:channel=chat,factor=4"),)))
    assert chats(surged) > 2.5 * chats(hour_events)


def test_late_and_duplicates_disorder_and_repeat(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    late = _events(_hour(scenarios=(_parse("late:share=0.05,max=10m"),)))
    times = [parse_rfc3339(e["ts"]) for _, e in late]
    inversions = sum(a > b for a, b in itertools.pairwise(times))
    assert inversions > 0.02 * len(late)
    sent = collections.Counter(e["event_id"] for _, e in late)
    assert max(sent.values()) == 1
    lost = [e for _, e in hour_events if e["event_id"] not in sent]
    assert set(sent) <= {e["event_id"] for _, e in hour_events}
    assert all(parse_rfc3339(e["ts"]) >= START + 50 * 60_000 for e in lost)  # delayed past the end
    raw = list(generate(_hour(scenarios=(_parse("duplicates:share=0.05"),))))
    repeats = sum(n - 1 for n in collections.Counter(raw).values())
    assert 0.03 * len(raw) < repeats < 0.07 * len(raw)


def test_delivery_scenarios_leave_the_traffic_unchanged(hour_events: list[tuple[bytes, dict[str, Any]]]) -> None:
    dup = _events(_hour(scenarios=(_parse("duplicates:share=0.1"),)))
    assert {e["event_id"] for _, e in dup} == {e["event_id"] for _, e in hour_events}


def _rejection(key: bytes, raw: bytes, seen: dict[tuple[str, str, Any], bytes]) -> str | None:
    """Which spec rejection reason one line deserves, judged independently of the pipeline."""
    try:
        e = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "malformed"
    if not isinstance(e, dict):
        return "malformed"
    for field in ("event_id", "type", "ts", "region", "channel"):
        if field not in e:
            return "missing_field"
    if e["type"] not in EXTRA:
        return "unknown_type"
    if isinstance(e["region"], str) and re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", e["region"]) \
            and e["region"] not in regions.catalogue():
        return "unknown_region"
    if problems(key, e):
        return "invalid_field"
    if parse_rfc3339(e["ts"]) > START + 30 * 86_400_000:
        return "future_timestamp"
    ident = {"queue.left": e.get("visit", 1), "contact.ended": None, "bot.ended": None}
    if e["type"] in ident:
        slot = (e["type"], e["contact_id"], ident[e["type"]])
        body = orjson.dumps({k: v for k, v in e.items() if k not in ("event_id", "ts", "wait_s")})
        if slot in seen and seen[slot] != body:
            return "conflict"
        seen.setdefault(slot, body)
    return None


def test_malformed_produces_every_rejection_reason() -> None:
    config = _hour(duration_s=1800.0, scenarios=(_parse("malformed:share=0.05"),))
    sim = Simulation(config)
    seen: dict[tuple[str, str, Any], bytes] = {}
    reasons = collections.Counter(_rejection(key, value, seen) for _, key, value in sim)
    assert set(reasons) == {None, "malformed", "missing_field", "invalid_field", "unknown_type",
                            "unknown_region", "future_timestamp", "conflict"}
    bad = sum(n for reason, n in reasons.items() if reason)
    assert 0.03 * reasons[None] < bad < 0.07 * reasons[None]
    assert sim._malformed is not None and min(sim._malformed.counts[k] for k in KINDS) > 0


@pytest.mark.parametrize("text", ["bogus", "voice-collapse:region=RU-XX", "surge:channel=fax",
                                  "surge:factor=abc", "late:max=0", "malformed:share=2", "duplicates:foo=1",
                                  "late:share", "bot-outage:start=yesterday"])
def test_bad_scenarios_fail_clearly(text: str) -> None:
    with pytest.raises(CcpulseError) as info:
        _parse(text)
    assert "\n" not in str(info.value)
    assert text.split(":")[0] in str(info.value) or "time" in str(info.value)


def _simulate(*args: str) -> int:
    return cli.main(["simulate", "-q", "--seed", "4", "--start", "2025-03-03T06:00:00Z",
                     "--regions", ",".join(FEW), *args])


def test_file_gzip_and_stdout_hold_the_same_bytes(tmp_path: Path) -> None:
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    assert _simulate("--duration", "5m", "-o", str(plain)) == 0
    assert _simulate("--duration", "5m", "-o", str(packed)) == 0
    text = plain.read_bytes()
    assert text and text.endswith(b"\n") and gzip.decompress(packed.read_bytes()) == text
    again = tmp_path / "b.jsonl.gz"
    assert _simulate("--duration", "5m", "-o", str(again)) == 0
    assert again.read_bytes() == packed.read_bytes()
    expected = b"".join(v + b"\n" for _, v in generate(
        SimConfig(start_ms=START, seed=4, duration_s=300.0, regions=tuple(sorted(FEW)))))
    assert text == expected
    out = subprocess.run([sys.executable, "-m", "streams.cli", "simulate", "-o", "-", "--seed", "4",
                          "--start", "2025-03-03T06:00:00Z", "--regions", ",".join(FEW), "--duration", "5m"],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout == text
    assert b"simulate: done:" in out.stderr and b"seed 4" in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "x.jsonl", "--regions", "RU-MOW,RU-XX"], "RU-XX"),
    (["-o", "x.jsonl", "--duration", "ten minutes"], "invalid duration"),
    (["-o", "x.jsonl", "--rate", "0"], "--rate"),
    (["-o", "x.jsonl", "--start", "yesterday"], "invalid time"),
    (["-o", "x.jsonl", "--scenario", "meteor"], "unknown scenario 'meteor'"),
    ([], "choose an output"),
    (["-o", "/nonexistent-dir/x.jsonl"], "cannot write"),
])
def test_cli_errors_are_one_line(args: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["simulate", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_rate_paces_the_output(tmp_path: Path) -> None:
    begun = time.monotonic()
    assert _simulate("--count", "150", "--rate", "500", "-o", str(tmp_path / "r.jsonl")) == 0
    assert 0.25 <= time.monotonic() - begun < 5
    assert len((tmp_path / "r.jsonl").read_bytes().splitlines()) == 150


def test_a_stop_asked_for_during_a_write_ends_the_run_after_it(tmp_path: Path) -> None:
    """What Ctrl-C does (the handler sets `stop`): the write under way completes, the file stays valid.
    Raising from the handler instead could interrupt gzip between compressing and checksumming."""
    out = tmp_path / "stopped.jsonl.gz"

    class StopOnFifth(FileSink):
        def write(self, key: bytes, value: bytes) -> None:
            super().write(key, value)
            self.writes = getattr(self, "writes", 0) + 1
            if self.writes == 5:
                stop.set()

    stop = StopRequest()
    sim = Simulation(SimConfig(start_ms=1_700_000_000_000, seed=3, duration_s=3600, regions=FEW))
    assert run(sim, StopOnFifth(str(out)), Pacing(), Progress(quiet=True), stop) is True
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert len(lines) == 5 and all(orjson.loads(line)["event_id"] for line in lines)


def test_ctrl_c_flushes_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl.gz"
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "simulate", "--realtime", "--rate", "3000",
                             "--regions", ",".join(FEW), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: out.exists() and out.stat().st_size > 0, timeout=30, what="events written")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = err.decode().strip().splitlines()[-1]
    sent = int(re.search(r"interrupted: ([\d,]+) events sent", summary).group(1).replace(",", ""))
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert sent == len(lines) > 0 and all(orjson.loads(line)["event_id"] for line in lines)


#: a simulator waiting for its first event, an hour ahead, in its tightest waiting loop; it says when
#: its signal handlers are in place (they are installed just before the run starts)
WAITING_SIMULATOR = """
import sys
from streams.simulate import cli, runner
runner._IDLE_SLEEP_S = 0.0
real_run = cli.run
def announced_run(*args):
    print("waiting", flush=True)
    return real_run(*args)
cli.run = announced_run
from streams import cli as ccpulse
sys.exit(ccpulse.main(["simulate", "--realtime", "--start", "+1h", "--regions", "RU-MOW", "-o", sys.argv[1]]))
"""


def test_ctrl_c_stops_a_waiting_simulator_whenever_it_lands(tmp_path: Path) -> None:
    """The handler must not take a lock the waiting loop may hold at that moment (threading.Event's did:
    the simulator then hung for ever on Ctrl-C, about half the time in this loop)."""
    for trial in range(20):
        out = tmp_path / f"waiting-{trial}.jsonl"
        proc = subprocess.Popen([sys.executable, "-c", WAITING_SIMULATOR, str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"waiting\n"
            time.sleep(trial / 20 * 0.05)  # the signal lands at a different point of the loop each time
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        assert proc.returncode == 0 and b"interrupted: 0 events sent" in err, (trial, err)


def test_simulated_events_are_held_in_buffers_of_their_own_size() -> None:
    """orjson's output sits in a buffer of at least 4 KiB: a simulated day held in memory (benchmarks,
    tests) must not cost that per event."""
    sim = SimConfig(start_ms=now_ms() - 3_600_000, seed=3, count=2000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        values = [value for _, _, value in Simulation(sim)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 4 * sum(map(len, values)), f"{held / len(values):.0f} bytes held per event"
