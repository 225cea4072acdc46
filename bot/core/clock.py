"""The injected clock. Nothing in the core or plugins calls datetime.now() directly.

`SystemClock` is wall time. `VirtualClock` only moves when the simulator (or a test) moves
it, so a month of check-ins or broadcasts runs in seconds; the outbox and scheduler wait on
the clock rather than on asyncio.sleep so pacing costs nothing in virtual time.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    tz: tzinfo

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...

    @property
    def virtual(self) -> bool: ...


class SystemClock:
    virtual = False

    def __init__(self, tz: tzinfo | str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    def now(self) -> datetime:
        return datetime.now(self.tz)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that moves only by `advance_to`. `sleep_until` returns at once after
    moving time forward: in virtual mode, waiting is what the driver does, not the awaiter."""

    virtual = True

    def __init__(self, start: datetime, tz: tzinfo | str | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        if tz is None:
            tz = start.tzinfo
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._now = start.astimezone(self.tz)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        if when > self._now:
            self._now = when.astimezone(self.tz)

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self._now + delta)

    async def sleep_until(self, when: datetime) -> None:
        self.advance_to(when)
        await asyncio.sleep(0)


def business_day(at: datetime, tz: tzinfo, day_starts_at: time = time(0, 0)) -> date:
    """The calendar day `at` belongs to in `tz`, when days start at `day_starts_at` local time
    (e.g. 04:00 so a late-night check-in still counts for the evening's day)."""
    local = at.astimezone(tz)
    shift = timedelta(hours=day_starts_at.hour, minutes=day_starts_at.minute)
    return (local - shift).date()


def day_start(day: date, tz: tzinfo, day_starts_at: time = time(0, 0)) -> datetime:
    """The aware instant at which business day `day` begins."""
    return datetime.combine(day, day_starts_at, tzinfo=tz)
