"""The region catalogue: complete, well-formed, and every zone loads."""

from __future__ import annotations

import re
import zoneinfo

import pytest

from streams import regions
from streams.errors import ConfigError


def test_catalogue_has_every_iso_subject_once() -> None:
    cat = regions.catalogue()
    assert len(cat) == 83
    for code, region in cat.items():
        assert code == region.code
        assert re.fullmatch(r"RU-[A-Z]{2,3}", code), code
    assert {"RU-MOW", "RU-SPE", "RU-CHE", "RU-KGD", "RU-KAM", "RU-CHU"} <= set(cat)


@pytest.mark.parametrize(("code", "tz"), [
    ("RU-MOW", "Europe/Moscow"), ("RU-KGD", "Europe/Kaliningrad"), ("RU-SAM", "Europe/Samara"),
    ("RU-CHE", "Asia/Yekaterinburg"), ("RU-NVS", "Asia/Novosibirsk"), ("RU-KEM", "Asia/Novokuznetsk"),
    ("RU-KAM", "Asia/Kamchatka"), ("RU-CHU", "Asia/Anadyr"), ("RU-VGG", "Europe/Volgograd"),
])
def test_known_zones(code: str, tz: str) -> None:
    assert regions.catalogue()[code].tz == tz


def test_every_zone_loads_and_values_are_plausible() -> None:
    for region in regions.catalogue().values():
        assert isinstance(regions.zone(region.code), zoneinfo.ZoneInfo)
        assert 41 <= region.lat <= 82, region
        assert 19 <= region.lon <= 180 or -180 <= region.lon <= -169, region
        assert region.weight > 0, region
        assert region.name.strip()


def test_restricting_and_unknown_codes() -> None:
    part = regions.catalogue(["RU-CHE", "RU-MOW"])
    assert sorted(part) == ["RU-CHE", "RU-MOW"]
    assert part["RU-CHE"] is regions.catalogue()["RU-CHE"]
    with pytest.raises(ConfigError, match="RU-XX"):
        regions.catalogue(["RU-MOW", "RU-XX"])
    with pytest.raises(ConfigError, match="RU-ZZZ"):
        regions.zone("RU-ZZZ")


def test_all_rolls_up_in_moscow_time() -> None:
    assert regions.zone("ALL") == zoneinfo.ZoneInfo("Europe/Moscow")
