"""Activity points (发言积分) counted in memory, written as one growing ledger row per
member and business day (ref ``activity:<day>``).

Counting a message costs no database access: tallies are written when a flush falls due
(`flush_seconds` after the first unwritten point), before any query that reports totals,
and on shutdown. The daily cap is enforced twice: in memory once a flush has told us the
day's amount, and in the write itself (so a restart, which forgets the tallies, cannot
pay past the cap).

Counting runs on every chat message, so it keeps per-message work to a few dict lookups:
the business day comes from `BusinessDays` (the current day's bounds, cached), and a
flush writes all due tallies in one transaction (`PointsLedger.accumulate_many`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from bot.core.clock import business_day
from bot.storage.points import PointsLedger

REASON = "activity"
_ONE_DAY = timedelta(days=1)
# Offset changes come in pairs further apart than this (a DST period lasts months): a day
# whose offset is the same at every probe has no change inside.
_PROBE = timedelta(minutes=15)
_TICK = timedelta(microseconds=1)


def activity_ref(day: date) -> str:
    return f"{REASON}:{day.isoformat()}"


class BusinessDays:
    """`business_day(at, tz, day_starts_at)` for a stream of instants that mostly stay in
    one day, without a timezone conversion per call.

    business_day() takes the wall-clock time of `at` in `tz`, subtracts the day start and
    keeps the date; so `at` belongs to day D exactly when its wall-clock time lies in
    [D + day start, D + 1 + day start). Both bounds are kept as datetimes in `tz`: Python
    compares datetimes sharing a tzinfo by their wall-clock fields alone (offset and fold
    ignored), which is the very arithmetic business_day() does, so a clock running in `tz`
    (the deployed bot's) gets the same answer even across DST changes, with no conversion.

    A clock on a fixed offset (UTC in tests, simulations and benchmarks) is compared with
    the day's bounds as instants instead; those are only used when the zone keeps one UTC
    offset over the whole business day (checked when the day is entered, every
    `_PROBE` of it), since then wall-clock time is the instant plus that offset. Days with
    a DST change convert each instant, as business_day() does.
    """

    __slots__ = ("_day", "_hi", "_hi_utc", "_lo", "_lo_utc", "start", "tz")

    def __init__(self, tz: tzinfo, day_starts_at: time = time(0, 0)) -> None:
        self.tz = tz
        # business_day() uses the hour and minute only.
        self.start = time(day_starts_at.hour, day_starts_at.minute)
        self._day = date.min
        self._lo: datetime | None = None  # wall-clock bounds of `_day`, in `tz`
        self._hi: datetime | None = None
        self._lo_utc: datetime | None = None  # the same as instants (None: not one offset all day)
        self._hi_utc: datetime | None = None

    def day_of(self, at: datetime) -> date:
        tz = self.tz
        if at.tzinfo is tz:
            local = at  # at.astimezone(tz) would return `at` itself
        else:
            lo, hi = self._lo_utc, self._hi_utc
            if lo is not None and hi is not None and type(at.tzinfo) is timezone and lo <= at < hi:
                return self._day
            local = at.astimezone(tz)
        lo, hi = self._lo, self._hi
        if lo is not None and hi is not None and lo <= local < hi:
            return self._day
        return self._enter(local)

    def _enter(self, local: datetime) -> date:
        """Make the business day of `local` (a datetime in `tz`) the cached one."""
        tz, start = self.tz, self.start
        day = business_day(local, tz, start)
        self._day = day
        self._lo_utc = self._hi_utc = None
        lo = datetime.combine(day, start, tzinfo=tz)
        try:
            hi = datetime.combine(day + _ONE_DAY, start, tzinfo=tz)
        except OverflowError:  # the last representable day: compute every time
            self._lo = self._hi = None
            return day
        self._lo, self._hi = lo, hi
        offset = local.utcoffset()
        if offset is None:
            return day
        try:
            lo_utc = (lo.replace(tzinfo=None) - offset).replace(tzinfo=UTC)
            hi_utc = (hi.replace(tzinfo=None) - offset).replace(tzinfo=UTC)
        except OverflowError:
            return day
        probe = lo_utc
        while probe < hi_utc:
            if probe.astimezone(tz).utcoffset() != offset:
                return day
            probe += _PROBE
        if (hi_utc - _TICK).astimezone(tz).utcoffset() != offset:
            return day
        self._lo_utc, self._hi_utc = lo_utc, hi_utc
        return day


# (group, member, business day): one tally each.
TallyKey = tuple[str, str, date]


@dataclass(slots=True, eq=False)
class _Tally:
    key: TallyKey
    cap: int
    at: datetime
    pending: int = 0
    written: int | None = None  # the day's entry after our last write (None: not known yet)


@dataclass(slots=True, eq=False)
class _Member:
    """One member's counting state in one group: when a message last counted, the days
    they have tallies for (oldest first), and the tally of the day last counted (today's,
    nearly always: a message finds it without a lookup of its own)."""

    last: datetime | None = None
    days: list[date] = field(default_factory=list)
    day: date | None = None
    tally: _Tally | None = None


class ActivityBuffer:
    """`on_pending` is called whenever a tally gets points to write; the plugin makes sure
    a flush is scheduled (it must be cheap and idempotent).

    A flush writes every due tally in one transaction (`PointsLedger.accumulate_many`);
    `batched=False` writes one `PointsLedger.accumulate` per tally instead (the reference
    the batched write is tested against)."""

    def __init__(
        self,
        ledger: PointsLedger,
        on_pending: Callable[[], None] | None = None,
        *,
        batched: bool = True,
        keep_members: int = 20_000,
    ) -> None:
        self._ledger = ledger
        self._batched = batched
        self.on_pending = on_pending
        self._tallies: dict[TallyKey, _Tally] = {}
        # The tallies with points to write: a flush takes these, not a scan of every tally
        # (a busy day holds tens of thousands, and a flush falls due every few seconds).
        self._due: dict[TallyKey, _Tally] = {}
        # group → member → state; nested rather than keyed by (group, member) so counting a
        # message builds no key tuple and probes small per-group tables.
        self._members: dict[str, dict[str, _Member]] = {}
        self._newest = date.min  # the latest business day any message was counted on
        # Past `keep_members` members, a full flush forgets those with nothing left to write
        # whose last counted message is older than the longest interval seen: the ledger's
        # write still enforces the daily cap, so all that costs is one more row write for a
        # member already at the cap. Without it a busy day keeps everyone who spoke.
        self.keep_members = keep_members
        self._latest = datetime.min.replace(tzinfo=UTC)
        self._longest_interval = timedelta()
        self._writing = asyncio.Lock()
        # Pruning scans every member, so a full flush prunes only when there may be something
        # to forget: a new business day, a member with a second day's tally, or what the last
        # prune kept for its unwritten points; and past `keep_members`, with some slack, so
        # that members still inside their interval are not rescanned at every flush.
        self._prune_due = False
        self._count = 0  # members kept, over all groups
        self._forget_above = 0

    @property
    def pending(self) -> int:
        return sum(t.pending for t in self._tallies.values())

    def count(
        self,
        group_id: str,
        member_id: str,
        day: date,
        now: datetime,
        *,
        points: int,
        cap: int,
        min_interval: timedelta,
    ) -> bool:
        """Count one message; True if it earned points (written at the next flush)."""
        group = self._members.get(group_id)
        if group is None:
            group = self._members[group_id] = {}
        member = group.get(member_id)
        if member is None:
            member = group[member_id] = _Member()
            self._count += 1
        tally = member.tally
        if tally is None or member.day != day:
            tally = self._tally(group_id, member_id, member, day, cap, now)
        tally.cap = cap
        written = tally.written or 0
        pending = tally.pending
        if written + pending >= cap:  # capped
            return False
        last = member.last
        if last is not None and now - last < min_interval:
            return False
        member.last = now
        if now > self._latest:
            self._latest = now
        if min_interval > self._longest_interval:
            self._longest_interval = min_interval
        tally.pending = min(pending + points, cap - written)
        tally.at = now
        if not pending:
            self._due[tally.key] = tally
            if self.on_pending is not None:
                self.on_pending()
        return True

    def _tally(self, group_id: str, member_id: str, member: _Member, day: date, cap: int, now: datetime) -> _Tally:
        key = (group_id, member_id, day)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(key, cap=cap, at=now)
            member.days.append(day)
            if day > self._newest:
                self._newest = day
                self._prune_due = True
            elif len(member.days) > 1:
                self._prune_due = True
        member.day, member.tally = day, tally
        return tally

    def take_pending(self) -> list[tuple[str, str, date, int, int, datetime]]:
        """Every unwritten tally as (group, member, day, points, cap, time), handed over and
        cleared: for keeping them elsewhere when they cannot be written (a stop while the
        database is away)."""
        out = []
        for (gid, mid, day), tally in self._due.items():
            if tally.pending > 0:
                out.append((gid, mid, day, tally.pending, tally.cap, tally.at))
                tally.pending = 0
        self._due.clear()
        return out

    async def flush_all(self) -> None:
        """Write every pending tally (a held job after a database outage)."""
        await self.flush()

    async def flush(self, group_id: str | None = None, member_id: str | None = None) -> int:
        """Write pending points (all, one group's, or one member's); returns the points
        handed to the ledger (its cap may still trim them). Once it returns, the ledger
        holds every point counted before the call, including any a concurrent flush (the
        scheduled one) had taken: flushes take turns."""
        async with self._writing:
            return await self._flush(group_id, member_id)

    async def _flush(self, group_id: str | None, member_id: str | None) -> int:
        due: list[tuple[TallyKey, _Tally]]
        if group_id is not None and member_id is not None:
            # Before every check-in and query: the member's few tallies, not everyone's.
            member = self._members.get(group_id, {}).get(member_id)
            tallies = self._tallies
            due = [
                (k, t)
                for d in (member.days if member is not None else ())
                if (t := tallies[k := (group_id, member_id, d)]).pending > 0
            ]
        else:
            due = [
                (k, t)
                for k, t in self._due.items()
                if t.pending > 0 and (group_id is None or k[0] == group_id) and (member_id is None or k[1] == member_id)
            ]
        # Taken off the due list before the write: points counted meanwhile put a tally back,
        # and a failed write puts back what it took.
        for key, _ in due:
            del self._due[key]
        handed = 0
        if due:
            if self._batched:
                handed = await self._write_together(due)
            else:
                for key, tally in due:
                    handed += await self._write_one(key, tally)
        if group_id is None and member_id is None:
            if self._prune_due:
                self._prune()
            if self._count > max(self.keep_members, self._forget_above):
                self._forget_idle()
        return handed

    async def _write_one(self, key: TallyKey, tally: _Tally) -> int:
        gid, mid, day = key
        taken, tally.pending = tally.pending, 0
        try:
            tally.written = await self._ledger.accumulate(
                gid, mid, taken, REASON, tally.at, ref=activity_ref(day), cap=tally.cap
            )
        except BaseException:
            tally.pending += taken  # kept for the next flush
            self._due[key] = tally
            raise
        return taken

    async def _write_together(self, due: list[tuple[TallyKey, _Tally]]) -> int:
        # Taken before the first await: points counted while the write runs stay pending.
        taken = [t.pending for _, t in due]
        for _, tally in due:
            tally.pending = 0
        try:
            written = await self._ledger.accumulate_many(
                REASON, [(g, m, activity_ref(d), n, t.cap, t.at) for ((g, m, d), t), n in zip(due, taken, strict=True)]
            )
        except BaseException:
            for (key, tally), n in zip(due, taken, strict=True):
                tally.pending += n  # all kept for the next flush: the transaction wrote nothing
                self._due[key] = tally
            raise
        for (_, tally), value in zip(due, written, strict=True):
            tally.written = value
        return sum(taken)

    def _prune(self) -> None:
        """Forget written tallies of past days (a member's latest day stays, for the cap), and
        members quiet since before yesterday altogether: nothing of theirs bears on today (the
        cap is per day, the interval minutes long), and a bot running for months would
        otherwise keep everyone who ever spoke."""
        tallies = self._tallies
        stale = self._newest - _ONE_DAY if self._newest > date.min else date.min
        again = False  # something kept for its unwritten points: prune after the next flush too
        for group_id, members in self._members.items():
            gone: list[str] = []
            for member_id, member in members.items():
                days = member.days
                if not days:
                    continue
                latest = max(days)
                if latest < stale:
                    if all(tallies[(group_id, member_id, d)].pending == 0 for d in days):
                        for d in days:
                            del tallies[(group_id, member_id, d)]
                        gone.append(member_id)
                        continue
                    again = True
                if len(days) < 2:
                    continue
                keep = [d for d in days if d == latest or tallies[(group_id, member_id, d)].pending != 0]
                if len(keep) > 1:
                    again = True
                if len(keep) == len(days):
                    continue
                for d in days:
                    if d not in keep:
                        del tallies[(group_id, member_id, d)]
                member.days = keep
                if member.day not in keep:  # a later message for that day starts a new tally
                    member.day = member.tally = None
            for member_id in gone:
                del members[member_id]
            self._count -= len(gone)
        self._prune_due = again
        for group_id in [g for g, members in self._members.items() if not members]:
            del self._members[group_id]

    def _forget_idle(self) -> None:
        """Forget members with every point written whose interval has passed (see __init__)."""
        tallies = self._tallies
        idle_since = self._latest - self._longest_interval
        for group_id, members in self._members.items():
            gone = [
                member_id
                for member_id, member in members.items()
                if (member.last is None or member.last <= idle_since)
                and all(tallies[(group_id, member_id, d)].pending == 0 for d in member.days)
            ]
            for member_id in gone:
                for d in members.pop(member_id).days:
                    del tallies[(group_id, member_id, d)]
            self._count -= len(gone)
        for group_id in [g for g, members in self._members.items() if not members]:
            del self._members[group_id]
        # Those still inside their interval stay; scan again once a quarter more have come.
        self._forget_above = self._count + self._count // 4 if self._count > self.keep_members else 0

    @property
    def members(self) -> int:
        """Members whose counting state is kept."""
        return sum(len(members) for members in self._members.values())
