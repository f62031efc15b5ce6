"""The engine's own daylight-saving arithmetic (sessions, and the FTMO day in Prague) against zoneinfo."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mt5bridge.core._engine import london_offset_minutes, new_york_offset_minutes, prague_offset_minutes

CASES = [
    (prague_offset_minutes, "Europe/Prague"),
    (london_offset_minutes, "Europe/London"),
    (new_york_offset_minutes, "America/New_York"),
]


@pytest.mark.parametrize("engine_offset, zone", CASES, ids=[z for _, z in CASES])
def test_offsets_match_zoneinfo_every_hour_2007_to_2040(engine_offset, zone):
    tz = ZoneInfo(zone)
    t = datetime(2007, 1, 1, tzinfo=timezone.utc)
    end = datetime(2041, 1, 1, tzinfo=timezone.utc)
    mismatches = []
    while t < end:
        utc_ms = int(t.timestamp() * 1000)
        want = int(t.astimezone(tz).utcoffset().total_seconds() // 60)
        got = engine_offset(utc_ms)
        if got != want:
            mismatches.append((t.isoformat(), got, want))
        t += timedelta(hours=1)
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize(
    "utc, minutes",
    [
        # The instants themselves: Prague moves to summer time at 01:00 UTC on the last Sunday of March.
        ("2026-03-29T00:59:59.999", 60),
        ("2026-03-29T01:00:00.000", 120),
        ("2026-10-25T00:59:59.999", 120),
        ("2026-10-25T01:00:00.000", 60),
    ],
)
def test_prague_switches_at_the_exact_millisecond(utc, minutes):
    t = datetime.fromisoformat(utc).replace(tzinfo=timezone.utc)
    assert prague_offset_minutes(int(t.timestamp() * 1000)) == minutes


def test_new_york_switches_at_two_in_the_morning_local():
    before = datetime(2026, 3, 8, 6, 59, 59, tzinfo=timezone.utc)
    after = datetime(2026, 3, 8, 7, 0, 0, tzinfo=timezone.utc)
    assert new_york_offset_minutes(int(before.timestamp() * 1000)) == -300
    assert new_york_offset_minutes(int(after.timestamp() * 1000)) == -240
