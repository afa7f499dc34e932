"""The traffic model: volumes, channel mix, waits, outcomes, calibrated on the operator's figures.

Every published figure is a named constant below; the behaviour parameters are derived from them
or chosen so that the simulated metrics land near them (checked by tests/unit/test_simulate_model.py).
Volumes are spread over the selected regions by their catalogue weight (population), so big
regions carry far more traffic; the whole catalogue carries the whole published volume.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- The operator's published figures ------------------------------------------------------------
#: requests a month, all channels, over the regions served (the simulator spreads them by weight)
REQUESTS_PER_MONTH = 3_500_000
#: regions the operator serves (informational: a deployment may restrict the catalogue to 67)
REGIONS_SERVED = 67
#: online requests a month (chat, messengers, app, social) ...
ONLINE_REQUESTS_PER_MONTH = 310_000
#: ... of which fully handled by chat bots
BOT_HANDLED_PER_MONTH = 50_000
#: average voice wait, seconds (an upper bound: "no more than 40 s")
VOICE_WAIT_AVG_MAX_S = 40.0
#: average time to resolve a call, seconds (~2 minutes)
VOICE_HANDLE_AVG_S = 120.0
#: share of requests resolved at the first line (contact.ended escalated=false)
FIRST_LINE_RATE = 0.985
#: share resolved on the first contact
FIRST_CONTACT_RATE = 0.90
#: share of ratings "excellent" (csat 5)
CSAT_EXCELLENT_SHARE = 0.95
#: chats answered within 20 s
CHAT_WITHIN_20S_SHARE = 0.98
#: chats abandoned
CHAT_ABANDON_SHARE = 0.01
#: technical tickets: all answered within 72 h, 80 % within 24 h
TICKET_MAX_H = 72.0
TICKET_WITHIN_24H_SHARE = 0.80

DAYS_PER_MONTH = 30.4
CONTACTS_PER_DAY = REQUESTS_PER_MONTH / DAYS_PER_MONTH
ONLINE_SHARE = ONLINE_REQUESTS_PER_MONTH / REQUESTS_PER_MONTH
BOT_HANDLED_ONLINE_SHARE = BOT_HANDLED_PER_MONTH / ONLINE_REQUESTS_PER_MONTH  # ~16 %

# --- Channel mix ---------------------------------------------------------------------------------
ONLINE_MIX = {"chat": 0.45, "messenger": 0.30, "app": 0.15, "social": 0.10}
OFFLINE_MIX = {"voice": 0.855, "voice_assistant": 0.08, "email": 0.065}
CHANNEL_MIX: dict[str, float] = {
    **{ch: ONLINE_SHARE * share for ch, share in ONLINE_MIX.items()},
    **{ch: (1 - ONLINE_SHARE) * share for ch, share in OFFLINE_MIX.items()},
}
#: share of online contacts that a chat bot takes first (social goes straight to agents)
BOT_ENTRY = {"chat": 0.6, "messenger": 0.6, "app": 0.6, "social": 0.0, "voice_assistant": 1.0}
_ONLINE_BOT_ENTRY = sum(ONLINE_MIX[ch] * BOT_ENTRY[ch] for ch in ONLINE_MIX)
#: bot outcomes of online channels: resolved share derived so that bots fully handle ~16 % of online
ONLINE_BOT_OUTCOMES = {"resolved": BOT_HANDLED_ONLINE_SHARE / _ONLINE_BOT_ENTRY, "abandoned": 0.08}
ONLINE_BOT_OUTCOMES["handoff"] = 1 - ONLINE_BOT_OUTCOMES["resolved"] - ONLINE_BOT_OUTCOMES["abandoned"]
VOICE_ASSISTANT_OUTCOMES = {"resolved": 0.35, "handoff": 0.55, "abandoned": 0.10}


@dataclass(frozen=True)
class QueueModel:
    """Wait (gamma: shape, scale in s), customer patience (exponential mean, s; 0 = never leaves)
    and agent handle time (gamma) of one channel's queue."""

    wait_shape: float
    wait_scale_s: float
    patience_s: float
    handle_shape: float
    handle_scale_s: float

    @property
    def wait_mean_s(self) -> float:
        return self.wait_shape * self.wait_scale_s


QUEUES: dict[str, QueueModel] = {
    # mean wait 14 s (well under 40 s), ~92 % within 40 s even at the morning peak, ~3 % abandoned;
    # handle time 2 minutes
    "voice": QueueModel(2.0, 7.0, 500.0, 2.5, VOICE_HANDLE_AVG_S / 2.5),
    # handoffs from the voice assistant: SLA 20 s
    "voice_assistant": QueueModel(2.0, 3.5, 400.0, 2.5, 60.0),
    # mean 4.5 s: ~98 % within 20 s at the peak; patience makes ~1 % abandon
    "chat": QueueModel(1.5, 3.0, 480.0, 2.0, 150.0),
    "app": QueueModel(1.5, 3.0, 480.0, 2.0, 120.0),
    "messenger": QueueModel(1.5, 10.0, 1200.0, 2.0, 200.0),
    "social": QueueModel(1.5, 150.0, 7200.0, 2.0, 150.0),
    # written requests: first answer = ticket answer; gamma(2, 8 h) puts 80 % within 24 h
    "email": QueueModel(2.0, 8 * 3600.0, 0.0, 2.0, 200.0),
}

# --- Outcomes ------------------------------------------------------------------------------------
ESCALATE_SHARE = 1 - FIRST_LINE_RATE - 0.005  # to tier 2 with a technical ticket
UNRESOLVED_SHARE = 0.005                       # handled, not resolved, not escalated
FIRST_CONTACT_KNOWN_SHARE = 0.85               # resolved contacts that carry first_contact
EXTERNAL_TRANSFER_SHARE = 0.005
AGENT_TRANSFER_SHARE = 0.03                    # agent sends the contact to another queue (visit 2)
OVERFLOW_SHARE = 0.02                          # queue overflows into another queue (visit 2)
CALLBACK_SHARE = 0.01                          # voice: customer asks to be called back
TIMEOUT_SHARE = 0.003                          # written channels: session times out in queue
SURVEY_SHARE = 0.12
CSAT_WEIGHTS = {5: CSAT_EXCELLENT_SHARE, 4: 0.03, 3: 0.01, 2: 0.005, 1: 0.005}
NPS_SHARE = 0.5                                # surveys that also carry an NPS score
WAIT_S_GIVEN_SHARE = 0.5                       # queue.left carries wait_s (else the pipeline pairs)
HANDLE_S_GIVEN_SHARE = 0.7                     # contact.ended carries handle_s (else paired)
CUSTOMER_KEY_SHARE = 0.8
SITES = ("saint-petersburg", "moscow", "yekaterinburg", "novosibirsk")
SITE_WEST_OF_LON = (35.0, 50.0, 75.0)          # site by the region's longitude

# --- Seasonality ---------------------------------------------------------------------------------
#: relative contact volume by local hour: night trough, morning peak, slow afternoon decline
_HOURLY = (0.12, 0.08, 0.06, 0.05, 0.06, 0.12, 0.30, 0.70, 1.30, 1.75, 1.90, 1.85,
           1.70, 1.65, 1.65, 1.60, 1.50, 1.40, 1.25, 1.05, 0.85, 0.60, 0.40, 0.22)
HOURLY_PROFILE = tuple(v * 24 / sum(_HOURLY) for v in _HOURLY)
HOURLY_NOISE_SD = 0.15  # multiplicative noise per region and hour


def profile(local_hour: float) -> float:
    """Relative volume at a local time of day (mean 1 over a day), interpolated between hours."""
    base = int(local_hour) % 24
    frac = local_hour - int(local_hour)
    return HOURLY_PROFILE[base] * (1 - frac) + HOURLY_PROFILE[(base + 1) % 24] * frac


def load_factor(local_hour: float) -> float:
    """Waits grow with load: x0.6 at night up to about x1.4 at the morning peak."""
    return 0.6 + 0.4 * profile(local_hour)


#: rough mean events per contact at natural volume (measured on a simulated day); converts an
#: events-per-second rate into a contact volume in real-time mode
EVENTS_PER_CONTACT = 4.4
