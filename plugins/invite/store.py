"""Invite records: counting (daily caps, pending invitations) and status changes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from bot.storage.db import Database
from bot.storage.models import Group, Membership
from plugins.invite.models import InviteRecord, InviteStatus


class InviteStore:
    def __init__(self, db: Database, bot_id: str) -> None:
        self._db = db
        self.bot_id = bot_id

    async def add(self, record: InviteRecord) -> InviteRecord:
        async with self._db.transaction() as s:
            s.add(record)
            await s.flush()
        return record

    async def count_since(self, since: datetime, until: datetime) -> tuple[int, dict[str, int]]:
        """Invites this account made in [since, until): in total and per group."""
        r = InviteRecord
        query = (
            select(col(r.group_id), sa.func.count())
            .where(col(r.bot_id) == self.bot_id, col(r.created_at) >= since, col(r.created_at) < until)
            .group_by(col(r.group_id))
        )
        async with self._db.session() as s:
            rows = (await s.exec(query)).all()
        per_group = {str(g): int(n) for g, n in rows}
        return sum(per_group.values()), per_group

    async def pending(self, group_ids: Iterable[str], since: datetime) -> dict[str, int]:
        """Invitations still open (queued or sent, not joined) per group, made since `since`."""
        r = InviteRecord
        query = (
            select(col(r.group_id), sa.func.count())
            .where(
                col(r.group_id).in_(list(group_ids)),
                col(r.status).in_(InviteStatus.PENDING),
                col(r.created_at) >= since,
            )
            .group_by(col(r.group_id))
        )
        async with self._db.session() as s:
            rows = (await s.exec(query)).all()
        return {str(g): int(n) for g, n in rows}

    async def open_invite(self, contact_id: str, group_ids: Iterable[str], since: datetime) -> InviteRecord | None:
        """The contact's most recent open invitation into one of these groups, if any."""
        r = InviteRecord
        query = (
            select(r)
            .where(
                col(r.contact_id) == contact_id,
                col(r.group_id).in_(list(group_ids)),
                col(r.status).in_(InviteStatus.PENDING),
                col(r.created_at) >= since,
            )
            .order_by(col(r.created_at).desc(), col(r.id).desc())
            .limit(1)
        )
        async with self._db.session() as s:
            return (await s.exec(query)).first()

    async def open_invites(self, since: datetime) -> list[InviteRecord]:
        r = InviteRecord
        query = select(r).where(
            col(r.bot_id) == self.bot_id, col(r.status).in_(InviteStatus.PENDING), col(r.created_at) >= since
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def mark_sent(self, record_id: int, at: datetime) -> None:
        # Only from queued: a join that arrived first is not turned back into "sent".
        await self._update(record_id, InviteStatus.QUEUED, status=InviteStatus.SENT, sent_at=at)

    async def mark_failed(self, record_id: int, error: str) -> None:
        await self._update(record_id, InviteStatus.QUEUED, status=InviteStatus.FAILED, error=error[:500])

    async def mark_joined(self, group_id: str, contact_ids: Iterable[str], at: datetime) -> int:
        r = InviteRecord
        async with self._db.transaction() as s:
            result = await s.exec(
                sa.update(r)
                .where(
                    col(r.group_id) == group_id,
                    col(r.contact_id).in_(list(contact_ids)),
                    col(r.status).in_(InviteStatus.PENDING),
                )
                .values(status=InviteStatus.JOINED, joined_at=at)
            )
        return int(result.rowcount or 0)

    async def _update(self, record_id: int, from_status: str, **values: object) -> None:
        r = InviteRecord
        async with self._db.transaction() as s:
            await s.exec(sa.update(r).where(col(r.id) == record_id, col(r.status) == from_status).values(**values))

    async def recorded_groups(self, group_ids: Iterable[str], contact_id: str) -> dict[str, tuple[str, int, bool]]:
        """For groups this account cannot see itself (several accounts: another one is in
        them), what the database knows: group id -> (topic, members now, whether `contact_id`
        is one of them). Groups the database has no member of are left out."""
        ids = list(group_ids)
        if not ids:
            return {}
        m, g = Membership, Group
        open_ = col(m.left_at).is_(None)
        query = (
            select(
                col(m.group_id),
                sa.func.max(col(g.topic)),
                sa.func.count(),
                sa.func.count().filter(col(m.member_id) == contact_id),
            )
            .join(g, col(g.id) == col(m.group_id))
            .where(col(m.group_id).in_(ids), open_)
            .group_by(col(m.group_id))
        )
        async with self._db.session() as s:
            rows = (await s.exec(query)).all()
        return {str(gid): (str(topic or ""), int(n), bool(mine)) for gid, topic, n, mine in rows}

    async def all(self) -> list[InviteRecord]:
        async with self._db.session() as s:
            return list((await s.exec(select(InviteRecord).order_by(col(InviteRecord.id)))).all())
