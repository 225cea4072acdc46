"""Database access for the games. Every state change that must happen once (a draw, closing
a round and awarding its points) is a conditional UPDATE ... WHERE status = 'open' inside a
transaction: a late timer, a restart or a duplicate message cannot do it twice."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from bot.storage.db import Database
from bot.storage.points import PointsLedger
from plugins.games.models import OPEN, Lottery, LotteryEntry, Poll, PollVote, Round


def draw_winners(seed: int, participant_ids: Iterable[str], k: int) -> list[str]:
    """The draw: `k` distinct members, reproducible from the recorded seed and the entries
    (sorted ids, so the order people joined in does not matter)."""
    pool = sorted(set(participant_ids))
    return random.Random(seed).sample(pool, min(k, len(pool)))


@dataclass(frozen=True, slots=True)
class DrawResult:
    lottery: Lottery
    entries: list[LotteryEntry]
    winners: list[LotteryEntry]  # in draw order


VoteOutcome = Literal["voted", "changed", "same", "locked", "closed"]


@dataclass(frozen=True, slots=True)
class Award:
    delta: int
    reason: str  # game:<name>
    ref: str


@dataclass(frozen=True, slots=True)
class RoundResult:
    round: Round
    total: int | None  # the winner's points total after the award


class GamesRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.ledger = PointsLedger(db)

    # --- lotteries ------------------------------------------------------------------
    async def add_lottery(self, lottery: Lottery) -> Lottery:
        async with self.db.transaction() as s:
            s.add(lottery)
            await s.flush()
            await s.refresh(lottery)
        return lottery

    async def open_lotteries(self, group_id: str | None = None) -> list[Lottery]:
        stmt = select(Lottery).where(Lottery.status == OPEN)
        if group_id is not None:
            stmt = stmt.where(Lottery.group_id == group_id)
        async with self.db.session() as s:
            return list((await s.exec(stmt.order_by(col(Lottery.id)))).all())

    async def lottery(self, lottery_id: int) -> Lottery | None:
        async with self.db.session() as s:
            return await s.get(Lottery, lottery_id)

    async def join(self, lottery_id: int, member_id: str, name: str, at: datetime) -> tuple[bool | None, int]:
        """(True, count) for a new entry, (False, count) for a repeat, (None, 0) when the
        lottery is no longer open."""
        try:
            async with self.db.transaction() as s:
                status = (await s.exec(select(Lottery.status).where(Lottery.id == lottery_id))).first()
                if status != OPEN:
                    return None, 0
                exists = await s.exec(
                    select(LotteryEntry.id).where(
                        LotteryEntry.lottery_id == lottery_id, LotteryEntry.member_id == member_id
                    )
                )
                new = exists.first() is None
                if new:
                    s.add(LotteryEntry(lottery_id=lottery_id, member_id=member_id, member_name=name, joined_at=at))
                    await s.flush()
                count = await self._count_entries(s, lottery_id)
        except IntegrityError:  # the same member's twin message, committed in between
            return False, await self.count_entries(lottery_id)
        return new, count

    async def _count_entries(self, s: Any, lottery_id: int) -> int:
        stmt = select(func.count()).select_from(LotteryEntry).where(LotteryEntry.lottery_id == lottery_id)
        return int((await s.exec(stmt)).one())

    async def count_entries(self, lottery_id: int) -> int:
        async with self.db.session() as s:
            return await self._count_entries(s, lottery_id)

    async def entries(self, lottery_id: int) -> list[LotteryEntry]:
        async with self.db.session() as s:
            return await self._entries(s, lottery_id)

    async def _entries(self, s: Any, lottery_id: int) -> list[LotteryEntry]:
        stmt = select(LotteryEntry).where(LotteryEntry.lottery_id == lottery_id).order_by(col(LotteryEntry.id))
        return list((await s.exec(stmt)).all())

    async def draw(self, lottery_id: int, at: datetime, reason: str, by: str | None) -> DrawResult | None:
        """Close an open lottery and draw its winners; None if it was not open."""
        async with self.db.transaction() as s:
            claimed = await s.exec(
                sa.update(Lottery)
                .where(col(Lottery.id) == lottery_id, col(Lottery.status) == OPEN)
                .values(status="drawn", closed_at=at, close_reason=reason, closed_by=by)
            )
            if claimed.rowcount != 1:
                return None
            lottery = (await s.exec(select(Lottery).where(Lottery.id == lottery_id))).one()
            entries = await self._entries(s, lottery_id)
            winner_ids = draw_winners(lottery.seed, (e.member_id for e in entries), lottery.winners)
            await s.exec(sa.update(Lottery).where(col(Lottery.id) == lottery_id).values(winner_ids=winner_ids))
            lottery.winner_ids = winner_ids
        by_id = {e.member_id: e for e in entries}
        return DrawResult(lottery, entries, [by_id[w] for w in winner_ids])

    async def cancel_lottery(self, lottery_id: int, at: datetime, by: str | None) -> bool:
        async with self.db.transaction() as s:
            done = await s.exec(
                sa.update(Lottery)
                .where(col(Lottery.id) == lottery_id, col(Lottery.status) == OPEN)
                .values(status="cancelled", closed_at=at, close_reason="cancelled", closed_by=by)
            )
            return done.rowcount == 1

    # --- polls ----------------------------------------------------------------------
    async def add_poll(self, poll: Poll) -> Poll:
        async with self.db.transaction() as s:
            s.add(poll)
            await s.flush()
            await s.refresh(poll)
        return poll

    async def open_polls(self) -> list[Poll]:
        async with self.db.session() as s:
            stmt = select(Poll).where(Poll.status == OPEN).order_by(col(Poll.id))
            return list((await s.exec(stmt)).all())

    async def latest_poll(self, group_id: str) -> Poll | None:
        """The group's most recent poll that was not cancelled."""
        stmt = (
            select(Poll)
            .where(Poll.group_id == group_id, Poll.status != "cancelled")
            .order_by(col(Poll.id).desc())
            .limit(1)
        )
        async with self.db.session() as s:
            return (await s.exec(stmt)).first()

    async def vote(
        self, poll_id: int, member_id: str, option: int, at: datetime, *, allow_change: bool
    ) -> tuple[VoteOutcome, int | None]:
        """Record a vote; returns the outcome and the member's option before this call."""
        try:
            async with self.db.transaction() as s:
                status = (await s.exec(select(Poll.status).where(Poll.id == poll_id))).first()
                if status != OPEN:
                    return "closed", None
                previous = (
                    await s.exec(
                        select(PollVote.option).where(PollVote.poll_id == poll_id, PollVote.member_id == member_id)
                    )
                ).first()
                if previous is None:
                    s.add(PollVote(poll_id=poll_id, member_id=member_id, option=option, voted_at=at))
                    await s.flush()
                    return "voted", None
                if previous == option:
                    return "same", previous
                if not allow_change:
                    return "locked", previous
                await s.exec(
                    sa.update(PollVote)
                    .where(col(PollVote.poll_id) == poll_id, col(PollVote.member_id) == member_id)
                    .values(option=option, voted_at=at)
                )
                return "changed", previous
        except IntegrityError:  # a twin message won the insert; treat as a repeat
            return "same", option

    async def tally(self, poll_id: int) -> dict[int, int]:
        stmt = (
            select(col(PollVote.option), func.count())
            .where(col(PollVote.poll_id) == poll_id)
            .group_by(col(PollVote.option))
        )
        async with self.db.session() as s:
            return {int(o): int(n) for o, n in (await s.exec(stmt)).all()}

    async def close_poll(self, poll_id: int, at: datetime, status: str = "closed") -> bool:
        async with self.db.transaction() as s:
            done = await s.exec(
                sa.update(Poll)
                .where(col(Poll.id) == poll_id, col(Poll.status) == OPEN)
                .values(status=status, closed_at=at)
            )
            return done.rowcount == 1

    # --- rounds (quiz questions, guess-the-number games) -----------------------------
    async def add_round(self, rnd: Round) -> Round:
        async with self.db.transaction() as s:
            s.add(rnd)
            await s.flush()
            await s.refresh(rnd)
        return rnd

    async def open_rounds(self) -> list[Round]:
        async with self.db.session() as s:
            stmt = select(Round).where(Round.status == OPEN).order_by(col(Round.id))
            return list((await s.exec(stmt)).all())

    async def times_asked(self, group_id: str) -> dict[str, int]:
        """How often each quiz question was asked in the group (to go through the bank
        before repeating)."""
        stmt = (
            select(Round.question, func.count())
            .where(Round.group_id == group_id, Round.kind == "quiz")
            .group_by(Round.question)
        )
        async with self.db.session() as s:
            return {q: int(n) for q, n in (await s.exec(stmt)).all()}

    async def update_extra(self, round_id: int, extra: dict[str, Any]) -> None:
        async with self.db.transaction() as s:
            await s.exec(sa.update(Round).where(col(Round.id) == round_id).values(extra=extra))

    async def finish_round(
        self,
        round_id: int,
        status: str,
        at: datetime,
        *,
        winner: str | None = None,
        award: Award | None = None,
        extra: dict[str, Any] | None = None,
    ) -> RoundResult | None:
        """Close an open round (and award its points, in the same transaction); None if it
        was already closed."""
        values: dict[str, Any] = {"status": status, "closed_at": at, "winner_id": winner}
        if extra is not None:
            values["extra"] = extra
        async with self.db.transaction() as s:
            done = await s.exec(
                sa.update(Round).where(col(Round.id) == round_id, col(Round.status) == OPEN).values(**values)
            )
            if done.rowcount != 1:
                return None
            rnd = (await s.exec(select(Round).where(Round.id == round_id))).one()
            total = None
            if winner is not None and award is not None:
                if award.delta:
                    await self.ledger.add(rnd.group_id, winner, award.delta, award.reason, at, ref=award.ref, session=s)
                total = await self.ledger.total(rnd.group_id, winner, session=s)
            return RoundResult(rnd, total)
