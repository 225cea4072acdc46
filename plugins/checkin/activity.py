"""Activity points (发言积分) counted in memory, written as one growing ledger row per
member and business day (ref ``activity:<day>``).

Counting a message costs no database access: tallies are written when a flush falls due
(`flush_seconds` after the first unwritten point), before any query that reports totals,
and on shutdown. The daily cap is enforced twice: in memory once a flush has told us the
day's amount, and in the write itself (so a restart, which forgets the tallies, cannot
pay past the cap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.storage.points import PointsLedger

REASON = "activity"


def activity_ref(day: date) -> str:
    return f"{REASON}:{day.isoformat()}"


@dataclass(slots=True)
class _Tally:
    cap: int
    at: datetime
    pending: int = 0
    written: int | None = None  # the day's entry after our last write (None: not known yet)

    @property
    def capped(self) -> bool:
        return (self.written or 0) + self.pending >= self.cap


class ActivityBuffer:
    """`on_pending` is called whenever a tally gets points to write; the plugin makes sure
    a flush is scheduled (it must be cheap and idempotent)."""

    def __init__(self, ledger: PointsLedger, on_pending: Callable[[], None] | None = None) -> None:
        self._ledger = ledger
        self.on_pending = on_pending
        self._tallies: dict[tuple[str, str, date], _Tally] = {}
        self._last_counted: dict[tuple[str, str], datetime] = {}

    @property
    def pending(self) -> int:
        return sum(t.pending for t in self._tallies.values())

    def count(
        self, group_id: str, member_id: str, day: date, now: datetime, *, points: int, cap: int,
        min_interval: timedelta,
    ) -> bool:
        """Count one message; True if it earned points (written at the next flush)."""
        key = (group_id, member_id, day)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(cap=cap, at=now)
        tally.cap = cap
        if tally.capped:
            return False
        last = self._last_counted.get((group_id, member_id))
        if last is not None and now - last < min_interval:
            return False
        self._last_counted[(group_id, member_id)] = now
        was_pending = tally.pending > 0
        tally.pending = min(tally.pending + points, cap - (tally.written or 0))
        tally.at = now
        if not was_pending and self.on_pending is not None:
            self.on_pending()
        return True

    async def flush(self, group_id: str | None = None, member_id: str | None = None) -> int:
        """Write pending points (all, one group's, or one member's); returns the points
        handed to the ledger (its cap may still trim them)."""
        handed = 0
        for (gid, mid, day), tally in list(self._tallies.items()):
            if tally.pending <= 0 or (group_id is not None and gid != group_id):
                continue
            if member_id is not None and mid != member_id:
                continue
            taken, tally.pending = tally.pending, 0
            try:
                tally.written = await self._ledger.accumulate(
                    gid, mid, taken, REASON, tally.at, ref=activity_ref(day), cap=tally.cap
                )
            except BaseException:
                tally.pending += taken  # kept for the next flush
                raise
            handed += taken
        if group_id is None and member_id is None:
            self._prune()
        return handed

    def _prune(self) -> None:
        """Forget written tallies of past days (a member's latest day stays, for the cap)."""
        latest: dict[tuple[str, str], date] = {}
        for gid, mid, day in self._tallies:
            if day > latest.get((gid, mid), date.min):
                latest[(gid, mid)] = day
        for key, tally in list(self._tallies.items()):
            if tally.pending == 0 and key[2] < latest[(key[0], key[1])]:
                del self._tallies[key]
