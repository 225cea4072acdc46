"""Recent strikes (warnings) in memory, so deciding on a flagged message reads no database.

The book mirrors the `antispam_strikes` rows newer than its horizon (the longest
`strikes.window_hours` of all configs): loaded at start-up, added to when the executor
warns, cleared by a pardon. Each (group, member) keeps a short sorted list of times, pruned
when it is used; the book stays bounded however many members are ever warned.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime, timedelta

# Strikes kept per member and group: far more than any limit needs (a removal comes at
# `strikes.limit`); past this the count stops growing, the decision does not change.
PER_MEMBER = 64
# (group, member) pairs held at once; past this, expired ones are swept, then the pairs
# quiet the longest are forgotten.
MEMBERS = 50_000


class StrikeBook:
    def __init__(self, horizon: timedelta, *, per_member: int = PER_MEMBER, members: int = MEMBERS) -> None:
        self.horizon = horizon
        self._per_member = per_member
        self._members = members
        self._times: dict[tuple[str, str], list[datetime]] = {}

    def __len__(self) -> int:
        return len(self._times)

    def load(self, rows: Iterable[tuple[str, str, datetime]]) -> None:
        """Add stored strikes (group id, member id, time), in any order."""
        for group_id, member_id, at in rows:
            times = self._times.setdefault((group_id, member_id), [])
            insort(times, at)
            if len(times) > self._per_member:
                del times[0]

    def count(self, group_id: str, member_id: str, since: datetime, now: datetime) -> int:
        """Strikes at or after `since`; drops those older than the horizon (or than `since`
        when a window is longer than the horizon)."""
        key = (group_id, member_id)
        times = self._times.get(key)
        if not times:
            return 0
        expired = bisect_left(times, min(since, now - self.horizon))
        if expired:
            del times[:expired]
            if not times:
                del self._times[key]
                return 0
        return len(times) - bisect_left(times, since)

    def add(self, group_id: str, member_id: str, at: datetime) -> None:
        key = (group_id, member_id)
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= self._members:
                self._make_room(at)
            times = self._times[key] = []
        if not times or at >= times[-1]:
            times.append(at)
        else:
            insort(times, at)
        if len(times) > self._per_member:
            del times[0]

    def clear(self, member_id: str, group_id: str | None = None) -> int:
        """Forget a member's strikes (in one group, or everywhere); returns how many."""
        if group_id is not None:
            return len(self._times.pop((group_id, member_id), ()))
        keys = [k for k in self._times if k[1] == member_id]
        return sum(len(self._times.pop(k)) for k in keys)

    def drop_before(self, cutoff: datetime) -> None:
        """Forget every strike older than `cutoff` (before loading that span again)."""
        for key in list(self._times):
            times = self._times[key]
            del times[: bisect_left(times, cutoff)]
            if not times:
                del self._times[key]

    def _make_room(self, now: datetime) -> None:
        cutoff = now - self.horizon
        for key in [k for k, times in self._times.items() if times[-1] < cutoff]:
            del self._times[key]
        if len(self._times) >= self._members:
            # Still full of live strikes: forget the tenth quiet the longest (a tenth at
            # once, so a full book is not sorted on every add).
            quiet = sorted(self._times, key=lambda k: self._times[k][-1])[: max(1, self._members // 10)]
            for key in quiet:
                del self._times[key]
