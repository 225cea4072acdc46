"""`BusinessDays` (the cached business day of activity counting) agrees with
`business_day` for every instant: across DST changes, day starts inside a skipped or
repeated hour, clocks in the configured zone, in UTC, on a fixed offset or in another zone,
time running forwards, jumping and going back."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import business_day
from plugins.checkin.activity import BusinessDays

# Half-hour DST (Lord Howe), changes at midnight (Santiago), southern-hemisphere summer.
ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago"]
STARTS = [time(0, 0), time(4, 0), time(1, 30), time(2, 30), time(23, 45)]
# The configured zone itself, UTC, a fixed offset and an unrelated zone.
CLOCKS = ["same", "utc", "fixed", "other"]


def _clock_tz(kind: str, tz: ZoneInfo) -> object:
    return {"same": tz, "utc": UTC, "fixed": timezone(timedelta(hours=8)), "other": ZoneInfo("Asia/Kolkata")}[kind]


def _changes(tz: ZoneInfo) -> list[datetime]:
    """The instants (to the hour) at which the zone's UTC offset changes in 2026."""
    at, out = datetime(2026, 1, 1, tzinfo=UTC), []
    while at.year == 2026:
        nxt = at + timedelta(hours=1)
        if at.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            out.append(at)
        at = nxt
    return out


def _instants(tz: ZoneInfo, clock_tz: object, rng: random.Random) -> list[datetime]:
    out: list[datetime] = []
    # Every 7 minutes (odd seconds too) from a day before to a day after each DST change and
    # through a quiet day; then random jumps back and forth over two years.
    for change in [*_changes(tz), datetime(2026, 7, 1, tzinfo=UTC)]:
        at = change - timedelta(days=1)
        while at < change + timedelta(days=1):
            at += timedelta(minutes=7, seconds=rng.randrange(0, 3))
            out.append(at)
    span = int(timedelta(days=730).total_seconds())
    out += [datetime(2025, 6, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(span)) for _ in range(400)]
    return [t.astimezone(clock_tz) for t in out]  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("clock", CLOCKS)
def test_cached_business_day_is_business_day(zone: str, clock: str) -> None:
    tz = ZoneInfo(zone)
    rng = random.Random(f"{zone}/{clock}")
    instants = _instants(tz, _clock_tz(clock, tz), rng)
    for start in STARTS:
        days = BusinessDays(tz, start)
        for at in instants:
            assert days.day_of(at) == business_day(at, tz, start), (zone, clock, start, at)


def test_repeated_hour_maps_back_to_the_previous_day() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice. With days starting at 01:30, the second
    # 01:00-01:30 belongs to the day before again, as business_day() says.
    tz = ZoneInfo("America/New_York")
    days = BusinessDays(tz, time(1, 30))
    first = datetime(2026, 11, 1, 1, 40, tzinfo=tz)  # EDT
    second = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=tz)  # EST, 30 minutes later
    assert second.astimezone(UTC) > first.astimezone(UTC)
    for clock_tz in (tz, UTC):
        assert days.day_of(first.astimezone(clock_tz)) == date(2026, 11, 1)
        assert days.day_of(second.astimezone(clock_tz)) == date(2026, 10, 31) == business_day(second, tz, time(1, 30))


def test_seconds_of_the_day_start_are_ignored_like_business_day() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    odd = time(4, 0, 30)
    days = BusinessDays(tz, odd)
    at = datetime(2026, 12, 1, 4, 0, 10, tzinfo=tz)
    assert days.day_of(at) == business_day(at, tz, odd) == date(2026, 12, 1)
