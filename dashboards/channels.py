"""Channels and bots: where contacts come from, how much goes online, and how the bots cope.

"Online" follows the business wording ("online requests"): every channel except the two voice
ones. Handoff surges are the regions whose bots hand most sessions to human queues right now.
"""

from __future__ import annotations

from typing import Any

from dashboards.builders import Panel, dashboard, region_variable, row, stat, target, timeseries
from dashboards.promql import per_minute, rate_ratio, rate_sum, sel
from streams.config import CHANNELS, Settings

UID = "ccpulse-channels"
REGION = "~$region"
VOICE_CHANNELS = ("voice", "voice_assistant")
ONLINE = "~" + "|".join(c for c in CHANNELS if c not in VOICE_CHANNELS)
RATIO = (0.0, 1.0)


def _bots(**labels: str) -> str:
    return sel("ccpulse_bot_sessions_total", region=REGION, **labels)


def summary() -> list[Panel]:
    contacts = sel("ccpulse_contacts_total", region=REGION)
    return [
        row("Chosen regions, over the dashboard's rate interval"),
        stat("Contacts / min", "Contacts started per minute, all channels.", "cpm",
             [target(per_minute("ccpulse_contacts_total", region=REGION), "Contacts", instant=True)],
             (6, 4), decimals=0),
        stat("Online share", "Contacts through online channels (all but voice and voice assistant) "
             "over all contacts.", "percentunit",
             [target(rate_ratio(sel("ccpulse_contacts_total", region=REGION, channel=ONLINE), contacts),
                     "Online", instant=True)], (6, 4), decimals=1),
        stat("Bot containment", "Bot sessions the bot resolved itself over all bot sessions.",
             "percentunit", [target(rate_ratio(_bots(outcome="resolved"), _bots()), "Containment",
                                    instant=True)], (6, 4), decimals=1),
        stat("Bot handoffs / min", "Bot sessions handed to a human queue per minute.", "cpm",
             [target(per_minute("ccpulse_bot_sessions_total", region=REGION, outcome="handoff"),
                     "Handoffs", instant=True)], (6, 4), decimals=1),
    ]


def mix() -> list[Panel]:
    contacts = sel("ccpulse_contacts_total", region=REGION)
    by_channel = per_minute("ccpulse_contacts_total", ("channel",), region=REGION)
    share = (f"{rate_sum('ccpulse_contacts_total', ('channel',), region=REGION)} / ignoring(channel) "
             f"group_left {rate_sum('ccpulse_contacts_total', region=REGION)}")
    return [
        row("Channel mix"),
        timeseries("Contacts by channel", "Contacts started per minute, stacked by channel.", "cpm",
                   [target(by_channel, "{{channel}}")], stack=True),
        timeseries("Channel share", "Each channel's share of contacts.", "percentunit",
                   [target(share, "{{channel}}")],
                   stack=True, value_range=RATIO),
        timeseries("Online share", "Contacts through online channels over all contacts.", "percentunit",
                   [target(rate_ratio(sel("ccpulse_contacts_total", region=REGION, channel=ONLINE),
                                      contacts), "online")], value_range=RATIO),
        timeseries("Handled by bot or agent", "Contacts ended per minute by who handled them.", "cpm",
                   [target(per_minute("ccpulse_contacts_ended_total", ("handled_by",), region=REGION),
                           "{{handled_by}}")], stack=True),
    ]


def bots() -> list[Panel]:
    handoffs = per_minute("ccpulse_bot_sessions_total", ("region",), region=REGION, outcome="handoff")
    return [
        row("Bots"),
        timeseries("Bot sessions by outcome", "Bot sessions ended per minute: resolved by the bot, "
                   "handed to a human queue, or abandoned by the customer.", "cpm",
                   [target(per_minute("ccpulse_bot_sessions_total", ("outcome",), region=REGION),
                           "{{outcome}}")], stack=True),
        timeseries("Handoff surges", "The ten regions handing most bot sessions to human queues, per "
                   "minute: a surge means a bot flow is failing there.", "cpm",
                   [target(f"topk(10, {handoffs})", "{{region}}")]),
        timeseries("Bot containment by channel", "Share of bot sessions the bot resolved, by channel, "
                   "over the rate interval.", "percentunit",
                   [target(rate_ratio(_bots(outcome="resolved"), _bots(), ("channel",)), "{{channel}}")],
                   value_range=RATIO),
        timeseries("Bot share by channel", "Rolling 60-minute share of ended contacts handled by a bot, "
                   "country-wide, by channel.", "percentunit",
                   [target(sel("ccpulse_bot_share_ratio", region="ALL", channel="!ALL", window="60m"),
                           "{{channel}}")], value_range=RATIO),
    ]


def build(settings: Settings) -> dict[str, Any]:
    variables = [region_variable(multi=True)]
    return dashboard(
        UID, "ccpulse — channels and bots",
        "Channel mix, online share, bot sessions, handoff surges and containment.",
        [*summary(), *mix(), *bots()], variables=variables,
    )
