"""Every group at a glance, for the console's 总览: members, today's active members, 7-day
retention and alerts. Read from the rollups (open stays, daily activity), never the raw log,
and in a fixed number of statements whatever the number of groups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import sqlalchemy as sa

from bot.stats.localtime import local_day
from bot.stats.table import ratio
from bot.storage.db import Database
from bot.storage.models import DailyActivity, Group, Membership

_G = Group.__table__.c  # type: ignore[attr-defined]
_M = Membership.__table__.c  # type: ignore[attr-defined]
_DA = DailyActivity.__table__.c  # type: ignore[attr-defined]


@dataclass
class GroupLine:
    id: str
    topic: str
    in_group: bool  # the bot is still a member
    members: int = 0
    active_today: int = 0
    active_week: int = 0  # the 7 days before today
    # Of the members active in the 7 days before those, the share active again in them.
    retained: int = 0
    retention_base: int = 0
    ads_removed: int = 0  # last 7 days
    failed_sends: int = 0  # last 7 days

    @property
    def retention(self) -> float | None:
        return ratio(self.retained, self.retention_base)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "topic": self.topic,
            "in_group": self.in_group,
            "members": self.members,
            "active_today": self.active_today,
            "active_7d": self.active_week,
            "retention_7d": self.retention,
            "ads_removed_7d": self.ads_removed,
            "failed_sends_7d": self.failed_sends,
        }


@dataclass(frozen=True)
class History:
    """The figures of complete days (cacheable for the whole of `day`): per group, members
    active in the 7 days before `day`, and of those active in the 7 days before that, how
    many were active again."""

    day: date
    weeks: dict[str, tuple[int, int, int]]  # group → (active last 7 days, retained, base)


async def history(db: Database, tz: tzinfo, now: datetime, exclude: tuple[str, ...] = ()) -> History:
    today = local_day(now, tz)
    d = sa.literal
    week, fortnight, yesterday = today - timedelta(days=7), today - timedelta(days=14), today - timedelta(days=1)
    this_week = sa.func.max(sa.case((_DA.day >= d(week, sa.Date), 1), else_=0))
    before = sa.func.max(sa.case((_DA.day < d(week, sa.Date), 1), else_=0))
    per_member = sa.select(_DA.group_id.label("gid"), this_week.label("w"), before.label("b")).where(
        _DA.day >= d(fortnight, sa.Date), _DA.day <= d(yesterday, sa.Date)
    )
    if exclude:
        per_member = per_member.where(_DA.member_id.not_in(exclude))
    pm = per_member.group_by(_DA.group_id, _DA.member_id).subquery()
    query = sa.select(pm.c.gid, sa.func.sum(pm.c.w), sa.func.sum(pm.c.w * pm.c.b), sa.func.sum(pm.c.b)).group_by(
        pm.c.gid
    )
    async with db.engine.connect() as conn:
        rows = await conn.execute(query)
        weeks = {gid: (int(w or 0), int(r or 0), int(b or 0)) for gid, w, r, b in rows}
    return History(today, weeks)


async def overview(
    db: Database,
    tz: tzinfo,
    now: datetime,
    groups: list[str] | None = None,
    exclude: tuple[str, ...] = (),
    past: History | None = None,
) -> list[GroupLine]:
    """One line per recorded group (or per id in `groups`), in id order. `past`: the
    complete days' figures when the caller keeps them (they change once a day)."""
    today = local_day(now, tz)
    if past is None or past.day != today:
        past = await history(db, tz, now, exclude)
    since = now - timedelta(days=7)
    lines: dict[str, GroupLine] = {}
    async with db.engine.connect() as conn:
        query = sa.select(_G.id, _G.topic, _G.active).order_by(_G.id)
        if groups is not None:
            query = query.where(_G.id.in_(groups))
        for gid, topic, active in await conn.execute(query):
            lines[gid] = GroupLine(gid, topic or "", bool(active))
        members = sa.select(_M.group_id, sa.func.count()).where(_M.left_at.is_(None))
        if exclude:
            members = members.where(_M.member_id.not_in(exclude))
        for gid, n in await conn.execute(members.group_by(_M.group_id)):
            if gid in lines:
                lines[gid].members = n
        active = sa.select(_DA.group_id, sa.func.count()).where(_DA.day == sa.literal(today, sa.Date))
        if exclude:
            active = active.where(_DA.member_id.not_in(exclude))
        for gid, n in await conn.execute(active.group_by(_DA.group_id)):
            if gid in lines:
                lines[gid].active_today = n
        for gid, n in await conn.execute(_alerts_removed(since)):
            if gid in lines:
                lines[gid].ads_removed = n
        for gid, n in await conn.execute(_alerts_failed(since)):
            if gid in lines:
                lines[gid].failed_sends = n
    for gid, (week_n, retained, base) in past.weeks.items():
        line = lines.get(gid)
        if line is not None:
            line.active_week, line.retained, line.retention_base = week_n, retained, base
    return list(lines.values())


def _alerts_removed(since: datetime) -> sa.Select[tuple[object, ...]]:
    t = sa.table("antispam_decisions", sa.column("group_id"), sa.column("at"), sa.column("outcome"))
    return (
        sa.select(t.c.group_id, sa.func.count())
        .where(t.c.outcome == "removed", t.c.at >= sa.literal(since, Group.__table__.c.registered_at.type))
        .group_by(t.c.group_id)
    )


def _alerts_failed(since: datetime) -> sa.Select[tuple[object, ...]]:
    t = sa.table("broadcast_deliveries", sa.column("group_id"), sa.column("claimed_at"), sa.column("state"))
    return (
        sa.select(t.c.group_id, sa.func.count())
        .where(t.c.state == "failed", t.c.claimed_at >= sa.literal(since, Group.__table__.c.registered_at.type))
        .group_by(t.c.group_id)
    )
