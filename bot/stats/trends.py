"""Growth (members over time, joins, leaves, removals) and activity (DAU/WAU/MAU, messages,
active ratio), from the membership stays and the daily activity rollup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from bot.stats.localtime import LocalTime, as_date
from bot.stats.presence import members_by_day, present_at
from bot.stats.scope import Period, Progress, ProgressFn, Scope, chunks, n_chunks
from bot.stats.table import Table, pct, ratio
from bot.storage.db import Database
from bot.storage.models import DailyActivity, Membership, UTCDateTime

_M = Membership.__table__
_DA = DailyActivity.__table__


# --- growth ----------------------------------------------------------------------------------


@dataclass
class GrowthDay:
    day: date
    members: int = 0  # members at the end of the day
    joins: int = 0  # joins the bot saw
    found: int = 0  # members found in a member list, there since before the bot (join time unknown)
    left: int = 0  # left by themselves
    removed: int = 0  # removed by an admin or the bot

    @property
    def net(self) -> int:
        """Joins less departures. Members also grow by `found`: people who were there already."""
        return self.joins - self.left - self.removed

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "members": self.members,
            "joins": self.joins,
            "found": self.found,
            "left": self.left,
            "removed": self.removed,
            "net": self.net,
        }


@dataclass
class GrowthReport:
    scope: Scope
    period: Period
    members_before: int  # members at the start of the period
    days: list[GrowthDay]

    @property
    def joins(self) -> int:
        return sum(d.joins for d in self.days)

    @property
    def found(self) -> int:
        return sum(d.found for d in self.days)

    @property
    def left(self) -> int:
        return sum(d.left for d in self.days)

    @property
    def removed(self) -> int:
        return sum(d.removed for d in self.days)

    @property
    def net(self) -> int:
        return self.joins - self.left - self.removed

    @property
    def members_after(self) -> int:
        return self.days[-1].members if self.days else self.members_before

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "growth",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "members_before": self.members_before,
            "members_after": self.members_after,
            "joins": self.joins,
            "found": self.found,
            "left": self.left,
            "removed": self.removed,
            "net": self.net,
            "days": [d.as_json() for d in self.days],
        }

    def table(self) -> Table:
        t = Table(
            f"growth — {self.scope.label}, {self.period.start}..{self.period.end}",
            ["day", "members", "joins", "found", "left", "removed", "net"],
        )
        for d in self.days:
            t.rows.append([d.day.isoformat(), d.members, d.joins, d.found, d.left, d.removed, f"{d.net:+d}"])
        t.rows.append(["total", self.members_after, self.joins, self.found, self.left, self.removed, f"{self.net:+d}"])
        t.notes.append(
            f"members at the start: {self.members_before}; members at the end of each day, including people "
            "who were in the group before the bot; found: such people first recorded that day (from the "
            "member list the bot reads at start-up, on joining a group and hourly; join time unknown); "
            "net = joins - left - removed"
        )
        return t


def _scoped(col: Any, chunk: list[str], member_col: Any, scope: Scope) -> list[Any]:
    where = [col.in_(chunk)]
    if scope.exclude_members:
        where.append(member_col.not_in(scope.exclude_members))
    return where


async def growth(
    db: Database, tz: tzinfo, scope: Scope, period: Period, *, progress: ProgressFn | None = None
) -> GrowthReport:
    start, end = period.utc_bounds(tz)
    lt = LocalTime.build(db.dialect, tz, start, end)
    lo, hi = sa.literal(start, UTCDateTime()), sa.literal(end, UTCDateTime())
    m = _M.c
    ids = await scope.group_ids(db)
    days = {d: GrowthDay(d) for d in period.each_day()}
    before = 0
    steps = Progress(n_chunks(ids), progress)
    for chunk in chunks(ids):
        where = _scoped(m.group_id, chunk, m.member_id, scope)
        base = sa.select(sa.func.count()).where(*where, *present_at(m, start))
        # A stay begins at `known_from`: a seen join (joined_at, the same time), or found.
        began = lt.day(m.known_from)
        joins = (
            sa.select(began.label("d"), m.joined_at.is_(None).label("found"), sa.func.count())
            .where(*where, m.known_from >= lo, m.known_from < hi)
            .group_by(sa.literal_column("d"), sa.literal_column("found"))
        )
        gone = lt.day(m.left_at)
        leaves = (
            sa.select(gone.label("d"), m.removed, sa.func.count())
            .where(*where, m.left_at >= lo, m.left_at < hi)
            .group_by(sa.literal_column("d"), m.removed)
        )
        async with db.engine.connect() as conn:
            before += int((await conn.execute(base)).scalar_one())
            for d, found, n in await conn.execute(joins):
                if found:
                    days[as_date(d)].found += int(n)
                else:
                    days[as_date(d)].joins += int(n)
            for d, removed, n in await conn.execute(leaves):
                row = days[as_date(d)]
                if removed:
                    row.removed += int(n)
                else:
                    row.left += int(n)
        steps.step()
    members = before
    for row in days.values():
        members += row.net + row.found
        row.members = members
    return GrowthReport(scope, period, before, list(days.values()))


# --- activity --------------------------------------------------------------------------------


@dataclass
class ActivityDay:
    day: date
    members: int  # in the group at some time that day (everyone who posted included)
    active: int  # members who posted that day (DAU)
    messages: int

    @property
    def active_ratio(self) -> float | None:
        return ratio(self.active, self.members)

    def as_json(self) -> dict[str, Any]:
        r = self.active_ratio
        return {
            "day": self.day.isoformat(),
            "members": self.members,
            "active": self.active,
            "messages": self.messages,
            "active_ratio": None if r is None else round(r, 4),
        }


@dataclass
class ActivityBucket:
    """A calendar week (Monday) or month, clipped to the period: distinct active members."""

    start: date
    end: date
    active: int
    messages: int

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "active": self.active,
            "messages": self.messages,
        }


@dataclass
class ActivityReport:
    scope: Scope
    period: Period
    days: list[ActivityDay]
    weeks: list[ActivityBucket]
    months: list[ActivityBucket]
    active_in_period: int  # distinct members who posted at all in the period
    wau: int  # distinct active in the 7 days ending with the period's last day
    mau: int  # ... in the 30 days ending with it
    members_end: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return sum(d.messages for d in self.days)

    @property
    def avg_dau(self) -> float:
        return sum(d.active for d in self.days) / len(self.days) if self.days else 0.0

    @property
    def avg_messages(self) -> float:
        return self.messages / len(self.days) if self.days else 0.0

    @property
    def avg_active_ratio(self) -> float | None:
        ratios = [r for d in self.days if (r := d.active_ratio) is not None]
        return sum(ratios) / len(ratios) if ratios else None

    def as_json(self) -> dict[str, Any]:
        r = self.avg_active_ratio
        return {
            "report": "activity",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "messages": self.messages,
            "avg_dau": round(self.avg_dau, 2),
            "avg_messages": round(self.avg_messages, 2),
            "avg_active_ratio": None if r is None else round(r, 4),
            "active_in_period": self.active_in_period,
            "wau": self.wau,
            "mau": self.mau,
            "members_end": self.members_end,
            "days": [d.as_json() for d in self.days],
            "weeks": [w.as_json() for w in self.weeks],
            "months": [m.as_json() for m in self.months],
        }

    def table(self) -> Table:
        t = Table(
            f"activity — {self.scope.label}, {self.period.start}..{self.period.end}",
            ["day", "members", "active", "messages", "active_ratio"],
        )
        for d in self.days:
            t.rows.append([d.day.isoformat(), d.members, d.active, d.messages, pct(d.active_ratio, 1)])
        t.notes.append(
            f"average DAU {self.avg_dau:.1f}, {self.avg_messages:.1f} messages/day, average active ratio "
            f"{pct(self.avg_active_ratio, 1)}; WAU (last 7 days) {self.wau}, MAU (last 30 days) {self.mau}; "
            f"{self.active_in_period} members posted in the period"
        )
        return t

    def bucket_table(self) -> Table:
        t = Table("weekly and monthly active members", ["bucket", "start", "end", "active", "messages"])
        for kind, buckets in (("week", self.weeks), ("month", self.months)):
            for b in buckets:
                t.rows.append([kind, b.start.isoformat(), b.end.isoformat(), b.active, b.messages])
        return t


async def _distinct_active(db: Database, chunk: list[str], scope: Scope, lo: date, hi: date) -> int:
    a = _DA.c
    inner = (
        sa.select(a.group_id, a.member_id)
        .where(
            *_scoped(a.group_id, chunk, a.member_id, scope),
            a.day >= sa.literal(lo, sa.Date),
            a.day <= sa.literal(hi, sa.Date),
        )
        .distinct()
        .subquery()
    )
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(inner))).scalar_one())


async def activity(
    db: Database, tz: tzinfo, scope: Scope, period: Period, *, progress: ProgressFn | None = None
) -> ActivityReport:
    grown = await growth(db, tz, scope, period)
    start, end = period.utc_bounds(tz)
    lt = LocalTime.build(db.dialect, tz, start, end)
    a = _DA.c
    lo, hi = sa.literal(period.start, sa.Date), sa.literal(period.end, sa.Date)
    ids = await scope.group_ids(db)
    per_day: dict[date, list[int]] = {d: [0, 0] for d in period.each_day()}
    buckets: dict[tuple[str, date], list[int]] = {}
    in_period = wau = mau = 0
    members_that_day = await members_by_day(db, tz, scope, period, ids, grown)
    steps = Progress(n_chunks(ids), progress)
    for chunk in chunks(ids):
        where = [*_scoped(a.group_id, chunk, a.member_id, scope), a.day >= lo, a.day <= hi]
        daily = sa.select(a.day, sa.func.count(), sa.func.sum(a.messages)).where(*where).group_by(a.day)
        async with db.engine.connect() as conn:
            for d, n, msgs in await conn.execute(daily):
                per_day[as_date(d)] = [int(n), int(msgs or 0)]
            for kind, key in (("week", lt.week(a.day)), ("month", lt.month(a.day))):
                members = (
                    sa.select(key.label("b"), a.group_id, a.member_id, sa.func.sum(a.messages).label("msgs"))
                    .where(*where)
                    .group_by(sa.literal_column("b"), a.group_id, a.member_id)
                    .subquery()
                )
                stmt = sa.select(members.c.b, sa.func.count(), sa.func.sum(members.c.msgs)).group_by(members.c.b)
                for b, n, msgs in await conn.execute(stmt):
                    slot = buckets.setdefault((kind, as_date(b)), [0, 0])
                    slot[0] += int(n)
                    slot[1] += int(msgs or 0)
        in_period += await _distinct_active(db, chunk, scope, period.start, period.end)
        wau += await _distinct_active(db, chunk, scope, period.end - timedelta(days=6), period.end)
        mau += await _distinct_active(db, chunk, scope, period.end - timedelta(days=29), period.end)
        steps.step()
    days = [ActivityDay(d, members_that_day[d], v[0], v[1]) for d, v in sorted(per_day.items())]
    weeks, months = [], []
    for (kind, b), (n, msgs) in sorted(buckets.items()):
        if kind == "week":
            weeks.append(ActivityBucket(max(b, period.start), min(b + timedelta(days=6), period.end), n, msgs))
        else:
            nxt = (b.replace(day=28) + timedelta(days=4)).replace(day=1)
            months.append(ActivityBucket(max(b, period.start), min(nxt - timedelta(days=1), period.end), n, msgs))
    return ActivityReport(scope, period, days, weeks, months, in_period, wau, mau, grown.members_after)
