"""Database access of the anti-spam plugin: audit rows, strikes, bans, labels, and the
start-up reads of recent joins and strikes. The executor's audit writer (off the message
path), the commands and start-up call it: the per-message path never touches the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.core.clock import business_day
from bot.storage.db import Database
from bot.storage.health import DatabaseHealth
from bot.storage.models import DailyActivity, Membership

from .models import AntispamBan, AntispamDecision, AntispamSample, AntispamStrike, Outcome

# One action's audit rows: the decision, and the strike or the ban it caused.
AuditRows = tuple[AntispamDecision, AntispamStrike | None, AntispamBan | None]


@dataclass(frozen=True, slots=True)
class RecentJoin:
    group_id: str
    member_id: str
    joined_at: datetime
    messages: int


class AntispamStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def health(self) -> DatabaseHealth:
        return self._db.health

    # --- audit -------------------------------------------------------------------------------
    async def record(self, row: AntispamDecision) -> int:
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
            assert row.id is not None
            return row.id

    async def record_action(
        self, decision: AntispamDecision, *, strike: AntispamStrike | None = None, ban: AntispamBan | None = None
    ) -> int:
        """An action's rows in one transaction: the decision, and the strike or ban it
        caused, linked to it by `decision_id`. Returns the decision's id."""
        return (await self.record_actions([(decision, strike, ban)]))[0]

    async def record_actions(self, actions: Sequence[AuditRows]) -> list[int]:
        """Several actions' rows (as `record_action`), all in one transaction, in order.
        Returns the decisions' ids."""
        ids: list[int] = []
        async with self._db.transaction() as s:
            for decision, strike, ban in actions:
                s.add(decision)
                await s.flush()
                assert decision.id is not None
                ids.append(decision.id)
                if strike is not None:
                    strike.decision_id = decision.id
                    s.add(strike)
                if ban is not None:  # one row per member and group: a new ban refreshes it
                    ban.decision_id = decision.id
                    same = select(AntispamBan).where(
                        col(AntispamBan.member_id) == ban.member_id, col(AntispamBan.group_id) == ban.group_id
                    )
                    existing = (await s.exec(same)).first()
                    if existing is None:
                        s.add(ban)
                    else:
                        existing.everywhere, existing.at, existing.rules = ban.everywhere, ban.at, ban.rules
                        existing.member_name = ban.member_name or existing.member_name
                        existing.decision_id = ban.decision_id
                        s.add(existing)
        return ids

    async def decisions(self, group_id: str | None = None, limit: int = 50) -> list[AntispamDecision]:
        query = select(AntispamDecision).order_by(col(AntispamDecision.at).desc(), col(AntispamDecision.id).desc())
        if group_id is not None:
            query = query.where(col(AntispamDecision.group_id) == group_id)
        async with self._db.session() as s:
            return list((await s.exec(query.limit(limit))).all())

    async def decision(self, decision_id: int) -> AntispamDecision | None:
        async with self._db.session() as s:
            return await s.get(AntispamDecision, decision_id)

    async def labelled(self, limit: int = 5000) -> list[tuple[str, bool]]:
        """(text, spam) of decisions labelled by what happened next, newest first."""
        query = (
            select(AntispamDecision.text, AntispamDecision.label)
            .where(col(AntispamDecision.label).is_not(None), col(AntispamDecision.text).is_not(None))
            .order_by(col(AntispamDecision.id).desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            rows = (await s.exec(query)).all()
        return [(text, label == "spam") for text, label in rows if text]

    async def relabel_last_removal(self, member_id: str, label: str, group_id: str | None = None) -> None:
        """A pardon says the last removal was wrong: relabel it (for the classifier)."""
        query = select(AntispamDecision.id).where(
            col(AntispamDecision.member_id) == member_id,
            col(AntispamDecision.outcome) == Outcome.REMOVED,
        )
        if group_id is not None:
            query = query.where(col(AntispamDecision.group_id) == group_id)
        async with self._db.transaction() as s:
            last = (await s.exec(query.order_by(col(AntispamDecision.id).desc()).limit(1))).first()
            if last is not None:
                await s.exec(sa.update(AntispamDecision).where(col(AntispamDecision.id) == last).values(label=label))

    # --- taught samples --------------------------------------------------------------------------
    async def add_sample(self, sample: AntispamSample) -> int:
        async with self._db.transaction() as s:
            s.add(sample)
            await s.flush()
            assert sample.id is not None
            return sample.id

    async def samples(self, limit: int = 20_000) -> tuple[list[tuple[int, str, bool]], list[str]]:
        """(row id, text, is spam) of the newest `limit` taught samples, oldest first, and one
        problem per row that cannot be used (naming the table and the row id): a bad row is
        skipped, never fatal. Only the columns needed are read, each checked by hand, so a
        damaged value in one row cannot fail the whole read."""
        t = AntispamSample.__table__  # type: ignore[attr-defined]
        query = sa.select(t.c.id, t.c.label, t.c.text).order_by(t.c.id.desc()).limit(limit)
        async with self._db.session() as s:
            rows = list((await s.execute(query)).all())
        good: list[tuple[int, str, bool]] = []
        problems: list[str] = []
        for row_id, label, text in reversed(rows):
            if label not in ("spam", "normal"):
                problems.append(f"antispam_samples row {row_id}: label {label!r} is neither spam nor normal")
            elif not isinstance(text, str) or not text.strip():
                problems.append(f"antispam_samples row {row_id}: no text")
            else:
                good.append((int(row_id), text, label == "spam"))
        return good, problems

    async def delete_samples(self, ids: Sequence[int]) -> None:
        if ids:
            async with self._db.transaction() as s:
                await s.exec(sa.delete(AntispamSample).where(col(AntispamSample.id).in_(list(ids))))

    async def last_acted(self, member: str, group_id: str | None = None) -> AntispamDecision | None:
        """The newest decision that acted (or would have) on a member, by id or display name."""
        query = select(AntispamDecision).where(
            (col(AntispamDecision.member_id) == member) | (col(AntispamDecision.member_name) == member),
            col(AntispamDecision.outcome).in_(
                [Outcome.WARNED, Outcome.REMOVED, Outcome.FAILED_CLOSED, Outcome.WOULD_WARN, Outcome.WOULD_REMOVE]
            ),
        )
        if group_id is not None:
            query = query.where(col(AntispamDecision.group_id) == group_id)
        async with self._db.session() as s:
            return (await s.exec(query.order_by(col(AntispamDecision.id).desc()).limit(1))).first()

    # --- strikes ------------------------------------------------------------------------------
    async def recent_strikes(self, since: datetime, until: datetime | None = None) -> list[tuple[str, str, datetime]]:
        """(group id, member id, time) of the strikes at or after `since` (and before
        `until`), oldest first: what the executor's strike book starts from."""
        query = select(AntispamStrike.group_id, AntispamStrike.member_id, AntispamStrike.at).where(
            col(AntispamStrike.at) >= since
        )
        if until is not None:
            query = query.where(col(AntispamStrike.at) < until)
        async with self._db.session() as s:
            rows = (await s.exec(query.order_by(col(AntispamStrike.at)))).all()
        return [(gid, mid, at) for gid, mid, at in rows]

    async def clear_strikes(self, member_id: str, group_id: str | None = None) -> int:
        stmt = sa.delete(AntispamStrike).where(col(AntispamStrike.member_id) == member_id)
        if group_id is not None:
            stmt = stmt.where(col(AntispamStrike.group_id) == group_id)
        async with self._db.transaction() as s:
            result = await s.exec(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- bans -----------------------------------------------------------------------------------
    async def bans(self) -> list[AntispamBan]:
        async with self._db.session() as s:
            return list((await s.exec(select(AntispamBan).order_by(col(AntispamBan.at)))).all())

    async def unban(self, member_id: str, group_ids: Sequence[str] | None = None) -> list[AntispamBan]:
        """Lift a member's bans (those made in `group_ids`, or every one); returns them."""
        query = select(AntispamBan).where(col(AntispamBan.member_id) == member_id)
        if group_ids is not None:
            query = query.where(col(AntispamBan.group_id).in_(list(group_ids)) | col(AntispamBan.everywhere))
        async with self._db.transaction() as s:
            rows = list((await s.exec(query)).all())
            for row in rows:
                await s.delete(row)
        return rows

    # --- start-up -------------------------------------------------------------------------------
    async def recent_joins(self, since: datetime, tz: tzinfo) -> list[RecentJoin]:
        """Open memberships that began after `since`, with the messages sent since joining
        (from the daily rollup): the history the new-member rules need after a restart."""
        query = select(Membership.group_id, Membership.member_id, Membership.joined_at).where(
            col(Membership.left_at).is_(None), col(Membership.joined_at) >= since
        )
        async with self._db.session() as s:
            joins = (await s.exec(query)).all()
            if not joins:
                return []
            first_day: date = business_day(since, tz)
            daily = (
                await s.exec(
                    select(
                        DailyActivity.group_id, DailyActivity.member_id, DailyActivity.day, DailyActivity.messages
                    ).where(col(DailyActivity.day) >= first_day)
                )
            ).all()
        per_member: dict[tuple[str, str], list[tuple[date, int]]] = {}
        for gid, mid, day, n in daily:
            per_member.setdefault((gid, mid), []).append((day, n))
        out = []
        for gid, mid, joined_at in joins:
            join_day = business_day(joined_at, tz)
            sent = sum(n for day, n in per_member.get((gid, mid), ()) if day >= join_day)
            out.append(RecentJoin(gid, mid, joined_at, sent))
        return out


def checks_json(results: Sequence[Any]) -> list[dict[str, Any]]:
    return [r.as_json() for r in results]
