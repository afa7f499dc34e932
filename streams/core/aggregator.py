"""Minute buckets and live state per (region, channel), fed by facts.

Each fact is added to its minute bucket only. A `today` window of up to 24 hours reads whole
hours from hour buckets that are merged from their minutes when first read and kept until a fact
lands in that hour again (late facts are rare), so the hot path does not pay for a second bucket.
Buckets older than the retention horizon are dropped as the watermark advances, which keeps memory
flat. A window read once a second by the publisher is the newest minute plus a span of older
minutes; the span's merge is kept until the window moves on a minute or a fact lands in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streams.config import ChannelTargets
from streams.core import facts as F
from streams.core.buckets import INDEX, WAIT_BINS, Bucket, merge_into, new_bucket
from streams.core.expiry import MinuteIndex
from streams.core.histogram import bin_of
from streams.core.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

_I = INDEX
CONTACTS, OFFERED, ANSWERED, ABANDONED = _I["contacts"], _I["offered"], _I["answered"], _I["abandoned"]
SHORT, WITHIN_SLA, WAIT_SUM, WAIT_MAX = (_I["short_abandoned"], _I["answered_within_sla"], _I["wait_sum_us"],
                                         _I["wait_max_us"])
ENDED, RESOLVED, RFC, FCR_KNOWN = _I["ended"], _I["resolved"], _I["resolved_first_contact"], _I["fcr_known"]
ESCALATED, FIRST_LINE, BOT_HANDLED, AGENT_HANDLED = (_I["escalated"], _I["first_line"], _I["bot_handled"],
                                                     _I["agent_handled"])
BOT_SESSIONS = _I["bot_sessions"]
BOT_OUTCOME = {"resolved": _I["bot_resolved"], "handoff": _I["bot_handoffs"], "abandoned": _I["bot_abandoned"]}
HANDLE_SUM, HANDLE_COUNT = _I["handle_sum_us"], _I["handle_count"]
CSAT_N, CSAT_SUM, CSAT_5, CSAT_4PLUS = _I["csat_responses"], _I["csat_sum"], _I["csat_5"], _I["csat_4plus"]
NPS_N, NPS_PRO, NPS_DET = _I["nps_responses"], _I["nps_promoters"], _I["nps_detractors"]
T_CREATED, T_RESOLVED, T_24H, T_72H = (_I["tickets_created"], _I["tickets_resolved"], _I["tickets_24h"],
                                       _I["tickets_72h"])


_PER_HOUR = HOUR_MS // MINUTE_MS
#: marker of a live-state change in `Aggregator.changes`
LIVE = -1
LIVE_KINDS = frozenset({F.OFFERED, F.VISIT, F.TICKET_CREATED, F.TICKET_RESOLVED})


class PairState:
    """Everything kept for one (region, channel)."""

    __slots__ = ("current", "expiry", "hours", "key", "live_marked", "marked_minute", "minute", "minutes", "spans",
                 "spans_end", "tickets_open", "waiting")

    def __init__(self, key: tuple[str, str] = ("", ""), expiry: MinuteIndex | None = None) -> None:
        self.key = key
        #: where new buckets are filed for release (None: never released, as in the country rollup)
        self.expiry = expiry
        self.minutes: dict[int, Bucket] = {}
        #: hour -> the merge of its minutes, made when read and dropped when one of them changes
        self.hours: dict[int, Bucket] = {}
        #: visit key -> entry time, for visits entered and not left
        self.waiting: dict[str, int] = {}
        #: ticket id -> creation time, for tickets created and not resolved
        self.tickets_open: dict[str, int] = {}
        #: the minute last written and its bucket: most facts of a pair fall in the minute of its last
        self.minute: int | None = None
        self.current: Bucket = []
        #: start minute -> the merge of minutes [start, spans_end), made when read and dropped when
        #: one of them changes or a span with another end is read
        self.spans: dict[int, Bucket] = {}
        self.spans_end = 0
        #: the minute last entered in the aggregator's `changes`, and whether its live state was, since
        #: they were last taken: a fact of the same minute then adds nothing there
        self.marked_minute: int | None = None
        self.live_marked = False

    def bucket(self, ts: int) -> Bucket:
        """The minute bucket of a time for writing, created (and filed for release) when new; the
        merged bucket of its hour, if one was made, is dropped."""
        minute = ts // MINUTE_MS
        if minute == self.minute:
            return self.current
        if self.hours:
            self.hours.pop(minute // _PER_HOUR, None)
        if self.spans and minute < self.spans_end:
            self.spans.clear()
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = new_bucket()
            if self.expiry is not None:
                self.expiry.add(minute, (self.key, minute))
        self.minute, self.current = minute, bucket
        return bucket

    def hour_bucket(self, hour: int) -> Bucket | None:
        """The merge of an hour's minute buckets (None when it has none), kept until one changes."""
        merged = self.hours.get(hour)
        if merged is None:
            first = hour * _PER_HOUR
            minutes = self.minutes
            parts = [minutes[m] for m in range(first, first + _PER_HOUR) if m in minutes]
            if not parts:
                return None
            merged = self.hours[hour] = new_bucket()
            for part in parts:
                merge_into(merged, part)
            if self.minute is not None and self.minute // _PER_HOUR == hour:
                self.minute = None  # so the next write to this hour drops the merge
        return merged

    def span_bucket(self, start: int, end: int) -> Bucket:
        """The merge of minutes [start, end), kept until one of them changes (read, not to write)."""
        if end != self.spans_end:
            self.spans.clear()
            self.spans_end = end
        merged = self.spans.get(start)
        if merged is None:
            merged = self.spans[start] = self.merge_minutes(start, end)
            if self.minute is not None and self.minute < end:
                self.minute = None  # so the next write to a minute of the span drops the merge
        return merged

    def merge_minutes(self, start: int, end: int) -> Bucket:
        """A new bucket: the merge of minutes [start, end), from hour buckets where an hour is covered."""
        total = new_bucket()
        first_full = -(-start // _PER_HOUR)
        last_full = end // _PER_HOUR
        if first_full >= last_full:
            ranges = [(start, end)]
        else:
            ranges = [(start, first_full * _PER_HOUR), (last_full * _PER_HOUR, end)]
            for hour in range(first_full, last_full):
                bucket = self.hour_bucket(hour)
                if bucket is not None:
                    merge_into(total, bucket)
        minutes = self.minutes
        for low, high in ranges:
            if high - low > len(minutes):
                for minute, bucket in minutes.items():
                    if low <= minute < high:
                        merge_into(total, bucket)
            else:
                for minute in range(low, high):
                    bucket = minutes.get(minute)
                    if bucket is not None:
                        merge_into(total, bucket)
        return total


class Aggregator:
    """Counts facts into buckets."""

    def __init__(self, channels: Mapping[str, ChannelTargets], short_abandon_s: float, horizon_ms: int,
                 ticket_retention_ms: int) -> None:
        self.pairs: dict[tuple[str, str], PairState] = {}
        self.sla_us = {name: round(c.sla_threshold_s * 1_000_000) for name, c in channels.items()}
        self.short_abandon_us = round(short_abandon_s * 1_000_000)
        self.horizon_ms = horizon_ms
        self.ticket_retention_ms = ticket_retention_ms
        self._bucket_expiry = MinuteIndex()
        self._waiting_expiry = MinuteIndex()
        self._ticket_expiry = MinuteIndex()
        #: when a set, collects (region, channel, minute) of changed buckets and (region, channel, LIVE)
        #: of changed live state, for publishing deltas to the country rollup
        self.changes: set[tuple[str, str, int]] | None = None
        self._apply = {
            F.CONTACT: self._contact, F.OFFERED: self._offered, F.VISIT: self._visit, F.ENDED: self._ended,
            F.HANDLE: self._handle, F.BOT: self._bot, F.SURVEY: self._survey,
            F.TICKET_CREATED: self._ticket_created, F.TICKET_RESOLVED: self._ticket_resolved,
        }

    def pair(self, region: str, channel: str) -> PairState:
        key = (region, channel)
        state = self.pairs.get(key)
        if state is None:
            state = self.pairs[key] = PairState(key, self._bucket_expiry)
        return state

    def apply(self, facts: Iterable[F.Fact]) -> None:
        """Count facts (tuples, or the lists stage two reads from JSON), in order. A batch per call,
        with what every fact needs held in locals: a call and these lookups per fact cost the core
        1.7 % of its instructions."""
        pairs, handlers, changes = self.pairs, self._apply, self.changes
        for fact in facts:
            kind, ts = fact[0], fact[3]
            # a pair of items, not the slice fact[1:3]: fewer instructions, and hashable for a list too
            pair = pairs.get((fact[1], fact[2])) or self.pair(fact[1], fact[2])
            # the pair's current minute inline: most facts fall in it
            minute = ts // MINUTE_MS
            bucket = pair.current if minute == pair.minute else pair.bucket(ts)
            handlers[kind](pair, fact, bucket)
            if changes is not None:
                # most facts of a pair fall in the minute it last marked: a tuple made and hashed for
                # every fact instead cost stage two ~5 % (a harness driving it, alternating runs)
                if pair.marked_minute != minute:
                    pair.marked_minute = minute
                    changes.add((fact[1], fact[2], minute))
                if kind in LIVE_KINDS and not pair.live_marked:
                    pair.live_marked = True
                    changes.add((fact[1], fact[2], LIVE))

    # -- one method per fact kind; each adds to the fact's minute bucket ------------------------

    def _contact(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        bucket[CONTACTS] += 1

    def _offered(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        bucket[OFFERED] += 1
        if fact[5]:
            pair.waiting[fact[4]] = fact[3]
            self._waiting_expiry.add(fact[3] // MINUTE_MS, (pair.key, fact[4], fact[3]))

    def _visit(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        channel, key, reason, wait_us = fact[2], fact[4], fact[5], fact[6]
        pair.waiting.pop(key, None)
        if reason == "answered":
            bucket[ANSWERED] += 1
            bucket[WAIT_SUM] += wait_us
            if wait_us > bucket[WAIT_MAX]:
                bucket[WAIT_MAX] = wait_us
            if wait_us <= self.sla_us[channel]:
                bucket[WITHIN_SLA] += 1
            bins = bucket[WAIT_BINS]
            wait_bin = bin_of(wait_us)
            bins[wait_bin] = bins.get(wait_bin, 0) + 1
        elif reason == "abandoned":
            bucket[ABANDONED] += 1
            if wait_us < self.short_abandon_us:
                bucket[SHORT] += 1

    def _ended(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        resolved, handled_by, escalated, first_contact = fact[4:]
        bucket[ENDED] += 1
        if handled_by == "bot":
            bucket[BOT_HANDLED] += 1
        elif handled_by == "agent":
            bucket[AGENT_HANDLED] += 1
        if escalated:
            bucket[ESCALATED] += 1
        if resolved:
            bucket[RESOLVED] += 1
            if not escalated:
                bucket[FIRST_LINE] += 1
            if first_contact is not None:
                bucket[FCR_KNOWN] += 1
                if first_contact:
                    bucket[RFC] += 1

    def _handle(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        handle_us, sign = fact[4], fact[5]
        bucket[HANDLE_SUM] += sign * handle_us
        bucket[HANDLE_COUNT] += sign

    def _bot(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        bucket[BOT_SESSIONS] += 1
        bucket[BOT_OUTCOME[fact[4]]] += 1

    def _survey(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        csat, nps = fact[4], fact[5]
        if csat is not None:
            bucket[CSAT_N] += 1
            bucket[CSAT_SUM] += csat
            if csat == 5:
                bucket[CSAT_5] += 1
            if csat >= 4:
                bucket[CSAT_4PLUS] += 1
        if nps is not None:
            bucket[NPS_N] += 1
            if nps >= 9:
                bucket[NPS_PRO] += 1
            elif nps <= 6:
                bucket[NPS_DET] += 1

    def _ticket_created(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        _, _, _, ts, ticket_id, still_open = fact
        bucket[T_CREATED] += 1
        if still_open:
            pair.tickets_open[ticket_id] = ts
            self._ticket_expiry.add(ts // MINUTE_MS, (pair.key, ticket_id, ts))

    def _ticket_resolved(self, pair: PairState, fact: F.Fact, bucket: Bucket) -> None:
        ticket_id, resolution_ms = fact[4], fact[5]
        if pair.tickets_open.pop(ticket_id, None) is None:
            for key, state in self.pairs.items():
                if state.tickets_open.pop(ticket_id, None) is not None:
                    if self.changes is not None:
                        self.changes.add((key[0], key[1], LIVE))
                    break
        bucket[T_RESOLVED] += 1
        if resolution_ms <= DAY_MS:
            bucket[T_24H] += 1
        if resolution_ms <= 3 * DAY_MS:
            bucket[T_72H] += 1

    def take_changes(self) -> list[tuple[str, str, int]]:
        """The (region, channel, minute or LIVE) changed since the last call, in order; the record of
        changes starts afresh."""
        changes = self.changes
        if not changes:
            return []
        taken = sorted(changes)
        changes.clear()
        for pair in self.pairs.values():
            pair.marked_minute = None
            pair.live_marked = False
        return taken

    def keep_open(self, region: str, channel: str, ticket_id: str, created_ms: int) -> None:
        """Restate that a ticket is still open (counts nothing): stage one repeats this for old open
        tickets so that a rebuild from the facts topic's retention still knows them."""
        pair = self.pair(region, channel)
        if ticket_id not in pair.tickets_open:
            pair.tickets_open[ticket_id] = created_ms
            self._ticket_expiry.add(created_ms // MINUTE_MS, (pair.key, ticket_id, created_ms))
            if self.changes is not None:
                self.changes.add((region, channel, LIVE))

    # -- retention ---------------------------------------------------------------------------

    def release(self, watermark_ms: int) -> None:
        """Drop what no window can read any more and live entries past their horizon."""
        cutoff_minute = (watermark_ms - self.horizon_ms) // MINUTE_MS
        touched: set[tuple[str, str]] = set()
        pairs = self.pairs
        for key, minute in self._bucket_expiry.pop_before(cutoff_minute):
            pair = pairs.get(key)
            if pair is not None:
                pair.minutes.pop(minute, None)
                pair.hours.pop(minute // _PER_HOUR, None)
                pair.spans.clear()
                pair.minute = None
                touched.add(key)
        for key, visit, entered in self._waiting_expiry.pop_before(cutoff_minute):
            pair = pairs.get(key)
            if pair is not None and pair.waiting.get(visit) == entered:
                del pair.waiting[visit]
                touched.add(key)
        ticket_minute = (watermark_ms - self.ticket_retention_ms) // MINUTE_MS
        for key, ticket, created in self._ticket_expiry.pop_before(ticket_minute):
            pair = pairs.get(key)
            if pair is not None and pair.tickets_open.get(ticket) == created:
                del pair.tickets_open[ticket]
                touched.add(key)
        for key in touched:
            pair = pairs[key]
            if not (pair.minutes or pair.waiting or pair.tickets_open):
                del pairs[key]
