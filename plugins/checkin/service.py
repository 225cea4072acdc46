"""Check-in logic over the database: records, streaks, make-ups and leaderboards.

No chat here: callers pass business days and times (computed from the injected clock in
the configured timezone) and get plain results back, so it is tested without a bot.

Rules
- One record per member, group and business day (a unique index); a second check-in the
  same day returns the first one's rank and writes nothing.
- A record's `streak` is the run of consecutive days ending on its day. A make-up record for
  a missed day re-links the run: the records after it are renumbered.
- The current streak is the latest record's streak if that record is today's or
  yesterday's (the run is still alive), else 0.
- Points are ledger rows (refs `checkin:<day>`, `streak_bonus:<day>`, `makeup:<day>`), so
  totals are always ledger sums.

Leaderboard order and ties
- 签到榜 (today): by check-in time; ranks are distinct (same second: who was recorded first).
- 连续签到榜 and 积分榜: equal values share a rank (1, 2, 2, 4). Within a shared rank the
  list shows first whoever got there first: for streaks, who already checked in today, and
  earlier (same second: recorded first); for points, whose total last changed earlier, then
  by member id, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.db import Database
from bot.storage.points import PointsEntry, PointsLedger
from plugins.checkin.models import CheckinRecord

T = TypeVar("T")
R = CheckinRecord


@dataclass(frozen=True, slots=True)
class CheckinOutcome:
    created: bool  # False: already checked in this day (nothing written)
    day: date
    rank: int  # today's position (0 for a make-up record)
    streak: int
    longest: int
    base: int
    bonus: int
    total: int  # ledger sum
    days: int  # check-in days ever (make-ups included)

    @property
    def points(self) -> int:
        return self.base + self.bonus


@dataclass(frozen=True, slots=True)
class MemberStatus:
    streak: int  # current (0 if the run is broken)
    longest: int
    days: int
    today: CheckinRecord | None
    rank_today: int  # 0 when not checked in today


@dataclass(frozen=True, slots=True)
class BoardRow:
    rank: int
    member_id: str
    name: str
    value: int  # streak days or points; for the day board: the position
    at: datetime  # check-in time (day board), latest check-in (streaks), last change (points)


@dataclass(frozen=True, slots=True)
class MakeupOutcome:
    day: date
    cost: int
    points: int  # base points earned by the make-up day (award_base)
    streak: int  # current streak after the repair
    longest: int
    total: int
    used: int  # make-ups bought this month, this one included


class MakeupRefused(Exception):
    """Why a make-up cannot be done, in words for the member."""


def competition_ranks(items: Sequence[T], value: Callable[[T], object]) -> list[int]:
    """Standard competition ranking of items already sorted best first: equal values share
    the rank of the first of them (1, 2, 2, 4)."""
    ranks: list[int] = []
    for i, item in enumerate(items):
        if i and value(item) == value(items[i - 1]):
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is UTC else at.astimezone(UTC)


class CheckinService:
    def __init__(self, db: Database, ledger: PointsLedger) -> None:
        self.db = db
        self.ledger = ledger

    # --- check-in ---------------------------------------------------------------------
    async def check_in(
        self,
        group_id: str,
        member_id: str,
        name: str,
        day: date,
        now: datetime,
        *,
        base: int,
        bonus_for: Callable[[int], int],
    ) -> CheckinOutcome:
        """Check a member in for business day `day`, or report the existing check-in.
        `bonus_for(streak)` gives the streak bonus earned on reaching `streak`."""
        try:
            async with self.db.transaction() as s:
                # One look answers both "already today?" and "what came before?".
                latest = await self._latest(s, group_id, member_id, day)
                created, bonus = latest is None or latest.day != day, 0
                if not created:
                    record = latest
                else:
                    linked = latest is not None and latest.day == day - timedelta(days=1)
                    streak = latest.streak + 1 if latest is not None and linked else 1
                    bonus = bonus_for(streak)
                    record = R(
                        group_id=group_id,
                        member_id=member_id,
                        day=day,
                        at=now,
                        name=name,
                        streak=streak,
                        points=base + bonus,
                    )
                    s.add(record)
                    await s.flush()
                    if base:
                        await self.ledger.add(
                            group_id, member_id, base, "checkin", now, ref=f"checkin:{day}", note="签到", session=s
                        )
                    if bonus:
                        await self.ledger.add(
                            group_id,
                            member_id,
                            bonus,
                            "streak_bonus",
                            now,
                            ref=f"streak_bonus:{day}",
                            note=f"连续签到{streak}天",
                            session=s,
                        )
                assert record is not None
                outcome = await self._outcome(s, record, created, base if created else 0, bonus)
        except IntegrityError:
            # Another process checked this member in a moment ago: report that check-in.
            async with self.db.session() as s:
                record = await self._record(s, group_id, member_id, day)
                assert record is not None
                outcome = await self._outcome(s, record, False, 0, 0)
        return outcome

    async def _outcome(
        self, s: AsyncSession, record: CheckinRecord, created: bool, base: int, bonus: int
    ) -> CheckinOutcome:
        rank, longest, days, total = await self._stats(s, record)
        return CheckinOutcome(
            created=created,
            day=record.day,
            rank=rank,
            streak=record.streak,
            longest=longest,
            base=base,
            bonus=bonus,
            total=total,
            days=days,
        )

    # --- make-up ----------------------------------------------------------------------
    async def make_up(
        self,
        group_id: str,
        member_id: str,
        name: str,
        day: date,
        today: date,
        now: datetime,
        *,
        cost: int,
        monthly_limit: int,
        month_start: datetime,
        max_days_back: int,
        base: int = 0,
        by: str | None = None,
    ) -> MakeupOutcome:
        """Record a missed day. A member's own make-up (`by` None) costs `cost` points and
        counts against `monthly_limit` (make-ups bought since `month_start`); an admin's is
        free and unlimited. Raises MakeupRefused with the reason."""
        if day >= today:
            raise MakeupRefused("今天还没过完，直接签到就好～" if day == today else "不能补签未来的日子")
        if (today - day).days > max_days_back:
            raise MakeupRefused(f"只能补签最近 {max_days_back} 天内漏掉的日子")
        try:
            used = await self._make_up(group_id, member_id, name, day, now, cost, monthly_limit, month_start, base, by)
        except IntegrityError:  # the same day made up a moment ago (a double-sent message)
            raise MakeupRefused(f"{day.month}月{day.day}日已经签到过了，不用补签") from None
        status = await self.status(group_id, member_id, today)
        total = await self.ledger.total(group_id, member_id)
        return MakeupOutcome(
            day=day,
            cost=0 if by else cost,
            points=base,
            streak=status.streak,
            longest=status.longest,
            total=total,
            used=used + (0 if by else 1),
        )

    async def _make_up(
        self,
        group_id: str,
        member_id: str,
        name: str,
        day: date,
        now: datetime,
        cost: int,
        monthly_limit: int,
        month_start: datetime,
        base: int,
        by: str | None,
    ) -> int:
        async with self.db.transaction() as s:
            if await self._record(s, group_id, member_id, day) is not None:
                raise MakeupRefused(f"{day.month}月{day.day}日已经签到过了，不用补签")
            used = await self._makeups_since(s, group_id, member_id, month_start)
            if by is None:
                if used >= monthly_limit:
                    raise MakeupRefused(f"本月补签次数已用完（{used}/{monthly_limit} 次）")
                total = await self.ledger.total(group_id, member_id, session=s)
                if total < cost:
                    raise MakeupRefused(f"积分不足：补签需要 {cost} 积分，你现在有 {total} 积分")
            prev = await self._record(s, group_id, member_id, day - timedelta(days=1))
            record = R(
                group_id=group_id,
                member_id=member_id,
                day=day,
                at=now,
                name=name,
                streak=(prev.streak if prev is not None else 0) + 1,
                points=base,
                makeup=True,
                by=by,
            )
            s.add(record)
            await s.flush()
            await self._relink_after(s, record)
            if by is None and cost:
                await self.ledger.add(
                    group_id,
                    member_id,
                    -cost,
                    "makeup",
                    now,
                    ref=f"makeup:{day}",
                    note=f"补签{day.isoformat()}",
                    session=s,
                )
            if base:
                await self.ledger.add(
                    group_id, member_id, base, "checkin", now, ref=f"checkin:{day}", by=by, note="补签", session=s
                )
        return used

    async def makeups_since(self, group_id: str, member_id: str, since: datetime) -> int:
        async with self.db.session() as s:
            return await self._makeups_since(s, group_id, member_id, since)

    # --- queries ----------------------------------------------------------------------
    async def status(self, group_id: str, member_id: str, today: date) -> MemberStatus:
        async with self.db.session() as s:
            latest = await self._latest(s, group_id, member_id, today)
            longest, days = await self._longest_and_days(s, group_id, member_id)
            today_record = latest if latest is not None and latest.day == today else None
            rank = await self._rank(s, today_record) if today_record is not None else 0
        streak = latest.streak if latest is not None and latest.day >= today - timedelta(days=1) else 0
        return MemberStatus(streak=streak, longest=longest, days=days, today=today_record, rank_today=rank)

    async def month(self, group_id: str, member_id: str, first: date, last: date) -> dict[date, CheckinRecord]:
        """The member's records from `first` to `last` (inclusive), by day."""
        stmt = select(R).where(R.group_id == group_id, R.member_id == member_id, R.day >= first, R.day <= last)
        async with self.db.session() as s:
            return {r.day: r for r in (await s.exec(stmt)).all()}

    async def today_board(self, group_id: str, day: date) -> list[BoardRow]:
        stmt = (
            select(R.member_id, R.name, R.at)
            .where(R.group_id == group_id, R.day == day, col(R.makeup).is_(False))
            .order_by(col(R.at), col(R.id))
        )
        async with self.db.session() as s:
            rows = (await s.exec(stmt)).all()
        return [BoardRow(i, m, n, i, _utc(at)) for i, (m, n, at) in enumerate(rows, start=1)]

    async def groups_since(self, since: datetime) -> list[str]:
        """Groups with a check-in recorded at or after `since` (whom a daily summary concerns)."""
        stmt = select(R.group_id).where(col(R.at) >= since).distinct()
        async with self.db.session() as s:
            return list((await s.exec(stmt)).all())

    async def streak_board(self, group_id: str, today: date) -> list[BoardRow]:
        """Members whose run is alive (latest record today or yesterday), best first."""
        latest = (
            select(col(R.member_id).label("mid"), sa.func.max(R.day).label("last"))
            .where(R.group_id == group_id, R.day <= today)
            .group_by(col(R.member_id))
            .subquery()
        )
        stmt = (
            select(R.member_id, R.name, R.streak, R.day, R.at, R.id)
            .join(latest, sa.and_(col(R.member_id) == latest.c.mid, col(R.day) == latest.c.last))
            .where(R.group_id == group_id, R.day >= today - timedelta(days=1))
        )
        async with self.db.session() as s:
            rows = (await s.exec(stmt)).all()
        # Longest first; among equals, those already in today first, then who was recorded first.
        ordered = sorted(rows, key=lambda r: (-r[2], -r[3].toordinal(), _utc(r[4]), r[5]))
        ranks = competition_ranks(ordered, lambda r: r[2])
        return [BoardRow(k, r[0], r[1], r[2], _utc(r[4])) for k, r in zip(ranks, ordered, strict=True)]

    async def points_board(self, group_id: str) -> list[BoardRow]:
        """Members with a positive total, highest first."""
        totals = [t for t in await self.ledger.totals(group_id) if t[1] > 0]
        ordered = sorted(totals, key=lambda t: (-t[1], _utc(t[2]), t[0]))
        ranks = competition_ranks(ordered, lambda t: t[1])
        return [BoardRow(k, m, "", total, _utc(at)) for k, (m, total, at) in zip(ranks, ordered, strict=True)]

    async def points_rank(self, group_id: str, member_id: str, total: int) -> int:
        """The member's rank on the points board (ties share a rank)."""
        totals = await self.ledger.totals(group_id)
        return 1 + sum(1 for m, t, _ in totals if t > total and m != member_id)

    async def names(self, group_id: str, member_ids: Iterable[str]) -> dict[str, str]:
        """The display names members last checked in with."""
        ids = list(set(member_ids))
        if not ids:
            return {}
        stmt = (
            select(R.member_id, R.name)
            .where(R.group_id == group_id, col(R.member_id).in_(ids), R.name != "")
            .order_by(col(R.at))
        )
        async with self.db.session() as s:
            return {m: n for m, n in (await s.exec(stmt)).all()}

    # --- internals --------------------------------------------------------------------
    @staticmethod
    async def _record(s: AsyncSession, group_id: str, member_id: str, day: date) -> CheckinRecord | None:
        stmt = select(R).where(R.group_id == group_id, R.member_id == member_id, R.day == day)
        return (await s.exec(stmt)).first()

    @staticmethod
    async def _latest(s: AsyncSession, group_id: str, member_id: str, day: date) -> CheckinRecord | None:
        """The member's record for `day` or, failing that, the last one before it."""
        stmt = (
            select(R)
            .where(R.group_id == group_id, R.member_id == member_id, R.day <= day)
            .order_by(col(R.day).desc())
            .limit(1)
        )
        return (await s.exec(stmt)).first()

    @staticmethod
    async def _stats(s: AsyncSession, record: CheckinRecord) -> tuple[int, int, int, int]:
        """(rank that day, longest streak, check-in days, points total) in one round trip."""
        g, m = record.group_id, record.member_id
        mine = sa.and_(col(R.group_id) == g, col(R.member_id) == m)
        rank: Any = sa.literal(0)
        if not record.makeup:
            rank = (
                select(sa.func.count())
                .select_from(R)
                .where(
                    R.group_id == g,
                    R.day == record.day,
                    col(R.makeup).is_(False),
                    sa.or_(col(R.at) < record.at, sa.and_(col(R.at) == record.at, col(R.id) <= record.id)),
                )
                .scalar_subquery()
            )
        longest = select(sa.func.coalesce(sa.func.max(R.streak), 0)).where(mine).scalar_subquery()
        days = select(sa.func.count()).select_from(R).where(mine).scalar_subquery()
        total = (
            select(sa.func.coalesce(sa.func.sum(PointsEntry.delta), 0))
            .where(PointsEntry.group_id == g, PointsEntry.member_id == m)
            .scalar_subquery()
        )
        row = (await s.exec(select(rank, longest, days, total))).one()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    @staticmethod
    async def _rank(s: AsyncSession, record: CheckinRecord) -> int:
        if record.makeup:
            return 0
        stmt = (
            select(sa.func.count())
            .select_from(R)
            .where(
                R.group_id == record.group_id,
                R.day == record.day,
                col(R.makeup).is_(False),
                sa.or_(col(R.at) < record.at, sa.and_(col(R.at) == record.at, col(R.id) <= record.id)),
            )
        )
        return int((await s.exec(stmt)).one())

    @staticmethod
    async def _longest_and_days(s: AsyncSession, group_id: str, member_id: str) -> tuple[int, int]:
        stmt = select(sa.func.coalesce(sa.func.max(R.streak), 0), sa.func.count()).where(
            R.group_id == group_id, R.member_id == member_id
        )
        longest, days = (await s.exec(stmt)).one()
        return int(longest), int(days)

    @staticmethod
    async def _makeups_since(s: AsyncSession, group_id: str, member_id: str, since: datetime) -> int:
        stmt = (
            select(sa.func.count())
            .select_from(R)
            .where(
                R.group_id == group_id,
                R.member_id == member_id,
                col(R.makeup).is_(True),
                col(R.by).is_(None),
                R.at >= since,
            )
        )
        return int((await s.exec(stmt)).one())

    @staticmethod
    async def _relink_after(s: AsyncSession, record: CheckinRecord) -> None:
        """Renumber the run that follows a filled gap: each next consecutive day is one more."""
        stmt = (
            select(R)
            .where(R.group_id == record.group_id, R.member_id == record.member_id, R.day > record.day)
            .order_by(col(R.day))
        )
        expected, streak = record.day + timedelta(days=1), record.streak
        for later in (await s.exec(stmt)).all():
            if later.day != expected:
                break
            streak += 1
            if later.streak != streak:
                later.streak = streak
            expected += timedelta(days=1)
        await s.flush()
