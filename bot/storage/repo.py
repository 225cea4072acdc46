"""Thin async repositories over the core tables, for the core and plugins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from bot.storage.db import Database
from bot.storage.models import DailyActivity, Group, GroupPluginState, KeyValue, Membership


class _Repo:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: Any) -> Any:
        # Dialect insert constructs are the ones with ON CONFLICT support.
        make: Callable[..., Any] = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        return make(table)


class GroupRepo(_Repo):
    async def list(self, active_only: bool = True) -> list[Group]:
        query = select(Group).order_by(col(Group.id))
        if active_only:
            query = query.where(col(Group.active).is_(True))
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def get(self, group_id: str) -> Group | None:
        async with self._db.session() as s:
            return await s.get(Group, group_id)

    async def upsert(self, group_id: str, topic: str, owner_id: str | None, *, at: datetime) -> Group:
        """Register a group the bot is in (or refresh it): active again, topic and owner
        updated (a None owner keeps the known one). `at` is the registration time of a new row."""
        stmt = self._insert(Group.__table__).values(
            id=group_id, topic=topic, owner_id=owner_id, active=True, registered_at=at, left_at=None
        )
        old = Group.__table__.c
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "topic": stmt.excluded.topic,
                "owner_id": sa.func.coalesce(stmt.excluded.owner_id, old.owner_id),
                "active": True,
                "left_at": None,
            },
        )
        async with self._db.transaction() as s:
            await s.exec(stmt)
        group = await self.get(group_id)
        assert group is not None
        return group

    async def mark_inactive(self, group_id: str, at: datetime) -> bool:
        """The bot is no longer in the group. Returns False for an unknown group."""
        async with self._db.transaction() as s:
            result = await s.exec(sa.update(Group).where(col(Group.id) == group_id).values(active=False, left_at=at))
        return bool(result.rowcount)  # type: ignore[attr-defined]


class PluginStateRepo(_Repo):
    async def load_all(self) -> dict[tuple[str, str], bool]:
        """Every admin switch: (group_id, plugin) → enabled."""
        async with self._db.session() as s:
            rows = (await s.exec(select(GroupPluginState))).all()
        return {(r.group_id, r.plugin): r.enabled for r in rows}

    async def set(self, group_id: str, plugin: str, enabled: bool, by: str | None, at: datetime) -> None:
        stmt = self._insert(GroupPluginState.__table__).values(
            group_id=group_id, plugin=plugin, enabled=enabled, changed_by=by, changed_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["group_id", "plugin"],
            set_={
                "enabled": stmt.excluded.enabled,
                "changed_by": stmt.excluded.changed_by,
                "changed_at": stmt.excluded.changed_at,
            },
        )
        async with self._db.transaction() as s:
            await s.exec(stmt)


class MembershipRepo(_Repo):
    async def current_members(self, group_id: str) -> list[Membership]:
        """Open stays in the group, longest known first: members the recorder saw join, and
        members found in a member list (there before the bot: `joined_at` None)."""
        query = (
            select(Membership)
            .where(col(Membership.group_id) == group_id, col(Membership.left_at).is_(None))
            .order_by(col(Membership.known_from), col(Membership.id))
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def history(self, group_id: str, member_id: str) -> list[Membership]:
        """Every stay of a member in a group, oldest first."""
        query = (
            select(Membership)
            .where(col(Membership.group_id) == group_id, col(Membership.member_id) == member_id)
            .order_by(col(Membership.known_from), col(Membership.id))
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def member_since(self, group_id: str, member_id: str) -> datetime | None:
        """When the member's current stay began; None if not a member, or a member since
        before the bot (join time unknown)."""
        query = select(Membership.joined_at).where(
            col(Membership.group_id) == group_id,
            col(Membership.member_id) == member_id,
            col(Membership.left_at).is_(None),
        )
        async with self._db.session() as s:
            return (await s.exec(query)).first()

    async def message_count(self, group_id: str, member_id: str, since: date | None = None) -> int:
        """Messages the member sent in the group (from the daily rollup), optionally
        counting only days from `since` (a local calendar day) on."""
        query = select(sa.func.coalesce(sa.func.sum(DailyActivity.messages), 0)).where(
            col(DailyActivity.group_id) == group_id, col(DailyActivity.member_id) == member_id
        )
        if since is not None:
            query = query.where(col(DailyActivity.day) >= since)
        async with self._db.session() as s:
            return int((await s.exec(query)).one())


class KeyValueRepo(_Repo):
    """Small JSON values by (namespace, key); use your plugin's name as the namespace."""

    async def get(self, namespace: str, key: str, default: Any = None) -> Any:
        async with self._db.session() as s:
            row = await s.get(KeyValue, (namespace, key))
        return default if row is None else row.value

    async def items(self, namespace: str) -> dict[str, Any]:
        query = select(KeyValue).where(col(KeyValue.namespace) == namespace)
        async with self._db.session() as s:
            return {r.key: r.value for r in (await s.exec(query)).all()}

    async def set(self, namespace: str, key: str, value: Any, at: datetime) -> None:
        stmt = self._insert(KeyValue.__table__).values(namespace=namespace, key=key, value=value, updated_at=at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["namespace", "key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self._db.transaction() as s:
            await s.exec(stmt)

    async def delete(self, namespace: str, key: str) -> bool:
        async with self._db.transaction() as s:
            result = await s.exec(
                sa.delete(KeyValue).where(col(KeyValue.namespace) == namespace, col(KeyValue.key) == key)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]
