"""Who counts as a member, when: the one definition every report's denominator uses.

A stay counts from `known_from` (its join when the bot saw it, else when the bot first found
the member present: people in a group before the bot have no join time) to `left_at`.
Someone who posted (or checked in) on a day is in the group that day, whatever the stays
say (a join between two member lists, data from before member lists were read): the
"members that day" of a ratio are the stays that overlap the day plus such people, so no
ratio can pass 100%.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa

from bot.stats.localtime import LocalTime, as_date, local_day
from bot.stats.scope import Period, Scope
from bot.storage.db import Database
from bot.storage.models import DailyActivity, Membership, UTCDateTime

_M = Membership.__table__
_DA = DailyActivity.__table__


def _at(value: datetime) -> Any:
    return sa.literal(value, UTCDateTime())


def not_excluded(member_col: Any, scope: Scope) -> list[Any]:
    return [member_col.not_in(scope.exclude_members)] if scope.exclude_members else []


def present_at(m: Any, at: datetime) -> list[Any]:
    """Stays of members in the group at the instant `at` (`m`: the memberships columns)."""
    return [m.known_from < _at(at), sa.or_(m.left_at.is_(None), m.left_at >= _at(at))]


def present_during(m: Any, lo: datetime, hi: datetime) -> list[Any]:
    """Stays that overlap [lo, hi)."""
    return [m.known_from < _at(hi), sa.or_(m.left_at.is_(None), m.left_at >= _at(lo))]


async def members_during(db: Database, tz: tzinfo, chunk: list[str], scope: Scope, period: Period) -> int:
    """Distinct (group, member) with a stay overlapping the period, plus everyone who posted
    in the group in the period without one."""
    lo, hi = period.utc_bounds(tz)
    m, a = _M.c, _DA.c
    stays = (
        sa.select(m.group_id, m.member_id)
        .where(m.group_id.in_(chunk), *not_excluded(m.member_id, scope), *present_during(m, lo, hi))
        .distinct()
        .subquery()
    )
    s = _M.alias("s")
    stayed = sa.exists().where(s.c.group_id == a.group_id, s.c.member_id == a.member_id, *present_during(s.c, lo, hi))
    posters = (
        sa.select(a.group_id, a.member_id)
        .where(
            a.group_id.in_(chunk),
            *not_excluded(a.member_id, scope),
            a.day >= sa.literal(period.start, sa.Date),
            a.day <= sa.literal(period.end, sa.Date),
            ~stayed,
        )
        .distinct()
        .subquery()
    )
    async with db.engine.connect() as conn:
        n = int((await conn.execute(sa.select(sa.func.count()).select_from(stays))).scalar_one())
        return n + int((await conn.execute(sa.select(sa.func.count()).select_from(posters))).scalar_one())


async def posters_without_stay(
    db: Database, tz: tzinfo, chunk: list[str], scope: Scope, start: date, end: date, lo: datetime, hi: datetime
) -> dict[date, int]:
    """Per local day of `start`..`end` ([lo, hi) in UTC), members who posted that day with no
    stay overlapping it: they are in the group that day too."""
    lt = LocalTime.build(db.dialect, tz, lo, hi)
    a = _DA.c
    s = _M.alias("s")
    # The stay overlaps day d: it starts before d ends and ends after d starts, in local days
    # (stays that start before the period or end after it need no conversion).
    starts_by = sa.or_(s.c.known_from < _at(lo), lt.day(s.c.known_from) <= a.day)
    ends_after = sa.or_(s.c.left_at.is_(None), s.c.left_at >= _at(hi), lt.day(s.c.left_at) >= a.day)
    stayed = sa.exists().where(s.c.group_id == a.group_id, s.c.member_id == a.member_id, starts_by, ends_after)
    stmt = (
        sa.select(a.day, sa.func.count())
        .where(
            a.group_id.in_(chunk),
            *not_excluded(a.member_id, scope),
            a.day >= sa.literal(start, sa.Date),
            a.day <= sa.literal(end, sa.Date),
            ~stayed,
        )
        .group_by(a.day)
    )
    async with db.engine.connect() as conn:
        return {as_date(d): int(n) for d, n in await conn.execute(stmt)}


def covers(known_from: datetime, left_at: datetime | None, day: date, tz: tzinfo) -> bool:
    """Whether a stay overlaps the local day `day` (the Python twin of the SQL above)."""
    return local_day(known_from, tz) <= day and (left_at is None or local_day(left_at, tz) >= day)


async def members_by_day(
    db: Database, tz: tzinfo, scope: Scope, period: Period, ids: list[str], grown: Any
) -> dict[date, int]:
    """Members in the group at some time on each day of the period: those at the end of the
    day before, those whose stay began that day, and everyone who posted that day without a
    stay. `grown`: the period's growth report (members at each day's end, stays begun)."""
    from bot.stats.scope import chunks

    out: dict[date, int] = {}
    at_start = grown.members_before
    for g in grown.days:
        out[g.day] = at_start + g.joins + g.found
        at_start = g.members
    lo, hi = period.utc_bounds(tz)
    for chunk in chunks(ids):
        for d, n in (await posters_without_stay(db, tz, chunk, scope, period.start, period.end, lo, hi)).items():
            out[d] += n
    return out


async def stays_and_posts(
    db: Database, tz: tzinfo, pairs: set[tuple[str, str]], period: Period
) -> tuple[dict[tuple[str, str], list[tuple[datetime, datetime | None]]], set[tuple[str, str, date]]]:
    """For a few (group, member) pairs (who checked in, say): their stays, and the days of the
    period they posted on."""
    m, a = _M.c, _DA.c
    by_group: dict[str, list[str]] = {}
    for g, mid in pairs:
        by_group.setdefault(g, []).append(mid)
    stays: dict[tuple[str, str], list[tuple[datetime, datetime | None]]] = {}
    posted: set[tuple[str, str, date]] = set()
    async with db.engine.connect() as conn:
        for g, members in by_group.items():
            for i in range(0, len(members), 500):
                part = members[i : i + 500]
                rows = await conn.execute(
                    sa.select(m.member_id, m.known_from, m.left_at).where(m.group_id == g, m.member_id.in_(part))
                )
                for mid, known_from, left_at in rows:
                    stays.setdefault((g, mid), []).append((known_from, left_at))
                rows = await conn.execute(
                    sa.select(a.member_id, a.day).where(
                        a.group_id == g,
                        a.member_id.in_(part),
                        a.day >= sa.literal(period.start, sa.Date),
                        a.day <= sa.literal(period.end, sa.Date),
                    )
                )
                posted.update((g, mid, as_date(d)) for mid, d in rows)
    return stays, posted
