"""Broadcast storage: definitions, delivery claims and the delivery report.

The claim is the heart of at-most-once delivery: `claim()` inserts one row per (broadcast,
occurrence, group) with ON CONFLICT DO NOTHING and returns only the rows it inserted. A row
another process (or an earlier run) already holds is not returned, so nothing is sent for it.
The same statement runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bot.storage.db import Database
from bot.storage.models import table_of
from plugins.broadcast.models import BroadcastDef, BroadcastDelivery, DeliveryState

# Rows per INSERT statement (SQLite allows 32766 bound parameters; 8 columns each).
_CHUNK = 500


@dataclass
class Claimed:
    id: int
    group_id: str
    state: str


@dataclass
class Report:
    """Sent / failed / missed (and claimed, skipped) per group and per occurrence."""

    name: str
    per_group: dict[str, Counter[str]] = field(default_factory=dict)
    per_occurrence: list[tuple[datetime, Counter[str]]] = field(default_factory=list)  # newest first
    failures: list[tuple[datetime, str, str]] = field(default_factory=list)  # (occurrence, group, detail)

    @property
    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.per_group.values():
            total.update(counts)
        return total

    @property
    def occurrences(self) -> int:
        return len(self.per_occurrence)


class BroadcastStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: Any) -> Any:
        make: Callable[..., Any] = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        return make(table)

    # --- definitions ------------------------------------------------------------------
    async def ensure_yaml(self, names: Iterable[str], now: datetime) -> None:
        """Register YAML broadcasts not seen before; `checked_at` starts now (a new
        broadcast has nothing to catch up on). Existing rows keep their state."""
        rows = [
            {
                "name": n,
                "source": "yaml",
                "spec": None,
                "paused": False,
                "deleted": False,
                "created_by": None,
                "created_in": None,
                "created_at": now,
                "checked_at": now,
            }
            for n in names
        ]
        if not rows:
            return
        stmt = self._insert(table_of(BroadcastDef)).values(rows).on_conflict_do_nothing(index_elements=["name"])
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def create_chat(
        self, spec: dict[str, Any], by: str | None, group_id: str | None, now: datetime
    ) -> BroadcastDef:
        """A broadcast made in chat; its name is its numeric id."""
        row = BroadcastDef(
            name=f"new-{uuid.uuid4().hex}",
            source="chat",
            spec=spec,
            created_by=by,
            created_in=group_id,
            created_at=now,
            checked_at=now,
        )
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
            row.name = str(row.id)
            s.add(row)
        return row

    async def get(self, name: str) -> BroadcastDef | None:
        async with self._db.session() as s:
            return (await s.exec(select(BroadcastDef).where(col(BroadcastDef.name) == name))).first()

    async def all(self) -> list[BroadcastDef]:
        async with self._db.session() as s:
            return list((await s.exec(select(BroadcastDef).order_by(col(BroadcastDef.id)))).all())

    async def chat_defs(self) -> list[BroadcastDef]:
        query = select(BroadcastDef).where(col(BroadcastDef.source) == "chat", col(BroadcastDef.deleted).is_(False))
        async with self._db.session() as s:
            return list((await s.exec(query.order_by(col(BroadcastDef.id)))).all())

    async def set_paused(self, name: str, paused: bool, now: datetime) -> bool:
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            # Resuming does not replay what fell due while paused.
            values["checked_at"] = now
        return await self._update(name, values)

    async def mark_deleted(self, name: str) -> bool:
        return await self._update(name, {"deleted": True, "paused": True})

    async def _update(self, name: str, values: dict[str, Any]) -> bool:
        stmt = sa.update(BroadcastDef).where(col(BroadcastDef.name) == name).values(**values)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def mark_checked(self, name: str, through: datetime) -> None:
        """Occurrences up to `through` have been dealt with. Only moves forward (several
        processes may write it)."""
        table = table_of(BroadcastDef).c
        stmt = (
            sa.update(BroadcastDef)
            .where(table.name == name, sa.or_(table.checked_at.is_(None), table.checked_at < through))
            .values(checked_at=through)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    # --- deliveries ---------------------------------------------------------------------
    async def claim(
        self,
        name: str,
        occurrence: datetime,
        states: Sequence[tuple[str, str, str | None]],
        now: datetime,
        *,
        only_if_active: bool = False,
        tokens: dict[str, int | None] | None = None,
    ) -> list[Claimed] | None:
        """Insert (group, state, detail) rows for one occurrence and return those this call
        inserted; move the broadcast's `checked_at` up to the occurrence. One transaction.

        With `only_if_active`, a broadcast paused or deleted (possibly by another process)
        claims nothing and None is returned. `tokens`: the duty token per group (several
        accounts), kept on the row for `reclaim`."""
        tokens = tokens or {}
        rows = [_row(name, occurrence, gid, state, detail, now, tokens.get(gid)) for gid, state, detail in states]
        defs = table_of(BroadcastDef).c
        if only_if_active:
            # Read apart from the claim: on SQLite a read that later writes can fail with
            # SQLITE_BUSY when another process wrote in between.
            async with self._db.engine.connect() as conn:
                found = (await conn.execute(sa.select(defs.paused, defs.deleted).where(defs.name == name))).first()
            if found is None or found.paused or found.deleted:
                return None
        async with self._db.engine.begin() as conn:
            return await self._insert_rows(conn, name, rows, occurrence)

    async def record_missed(
        self, name: str, occurrences: Sequence[datetime], groups: Sequence[str], now: datetime, detail: str = ""
    ) -> int:
        """Occurrences nobody sent: a row each per group, unless one exists already."""
        if not occurrences:
            return 0
        rows = [
            _row(name, occurrence, gid, DeliveryState.MISSED.value, detail or None, now)
            for occurrence in occurrences
            for gid in groups
        ]
        async with self._db.engine.begin() as conn:
            return len(await self._insert_rows(conn, name, rows, max(occurrences)))

    async def _insert_rows(
        self, conn: AsyncConnection, name: str, rows: list[dict[str, Any]], checked: datetime
    ) -> list[Claimed]:
        # A fixed order (occurrence, group) so concurrent claimers never deadlock.
        rows.sort(key=lambda r: (r["occurrence"], r["group_id"]))
        table = table_of(BroadcastDelivery)
        defs = table_of(BroadcastDef).c
        won: list[Claimed] = []
        for start in range(0, len(rows), _CHUNK):
            stmt = (
                self._insert(table)
                .values(rows[start : start + _CHUNK])
                .on_conflict_do_nothing(index_elements=["broadcast", "occurrence", "group_id"])
                .returning(table.c.id, table.c.group_id, table.c.state)
            )
            won.extend(Claimed(r.id, r.group_id, r.state) for r in await conn.execute(stmt))
        await conn.execute(
            sa.update(BroadcastDef)
            .where(defs.name == name, sa.or_(defs.checked_at.is_(None), defs.checked_at < checked))
            .values(checked_at=checked)
        )
        return won

    async def reclaim(
        self, name: str, occurrence: datetime, group_id: str, token: int, now: datetime
    ) -> Claimed | None:
        """Several accounts: claim one group's delivery for the account that has just taken the
        group's duty under `token`. Inserted if nobody claimed it (it fell due while nobody
        held the duty); taken over if it was claimed under an older token and never sent (the
        claimer lost the duty first). Anything sent, failed, missed or skipped stays as it is."""
        table = table_of(BroadcastDelivery)
        row = _row(name, occurrence, group_id, DeliveryState.CLAIMED.value, None, now, token)
        stmt = self._insert(table).values([row])
        stmt = stmt.on_conflict_do_update(
            index_elements=["broadcast", "occurrence", "group_id"],
            set_={"token": token, "claimed_at": now},
            where=sa.and_(
                table.c.state == DeliveryState.CLAIMED.value, table.c.token.is_not(None), table.c.token < token
            ),
        ).returning(table.c.id, table.c.group_id, table.c.state)
        async with self._db.engine.begin() as conn:
            found = (await conn.execute(stmt)).first()
        return Claimed(found.id, found.group_id, found.state) if found is not None else None

    async def finish(
        self, delivery_id: int, state: DeliveryState, detail: str | None, now: datetime, *, token: int | None = None
    ) -> None:
        """Record how a delivery ended; with `token`, only while the row is still ours (not
        taken over by the account now on duty)."""
        c = table_of(BroadcastDelivery).c
        stmt = (
            sa.update(BroadcastDelivery)
            .where(col(BroadcastDelivery.id) == delivery_id)
            .values(state=state.value, detail=detail, done_at=now)
        )
        if token is not None:
            stmt = stmt.where(c.token == token)
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def deliveries(self, name: str) -> list[BroadcastDelivery]:
        query = (
            select(BroadcastDelivery)
            .where(col(BroadcastDelivery.broadcast) == name)
            .order_by(col(BroadcastDelivery.occurrence), col(BroadcastDelivery.group_id))
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def report(self, name: str, recent: int = 10) -> Report:
        c = table_of(BroadcastDelivery).c
        report = Report(name)
        by_group = (
            sa.select(c.group_id, c.state, sa.func.count()).where(c.broadcast == name).group_by(c.group_id, c.state)
        )
        latest = (
            sa.select(c.occurrence)
            .where(c.broadcast == name)
            .group_by(c.occurrence)
            .order_by(c.occurrence.desc())
            .limit(recent)
            .subquery()
        )
        by_occurrence = (
            sa.select(c.occurrence, c.state, sa.func.count())
            .where(c.broadcast == name, c.occurrence.in_(sa.select(latest.c.occurrence)))
            .group_by(c.occurrence, c.state)
        )
        failures = (
            sa.select(c.occurrence, c.group_id, c.detail)
            .where(c.broadcast == name, c.state == DeliveryState.FAILED.value)
            .order_by(c.occurrence.desc())
            .limit(5)
        )
        async with self._db.engine.connect() as conn:
            for gid, state, count in await conn.execute(by_group):
                report.per_group.setdefault(gid, Counter())[state] += count
            occ: dict[datetime, Counter[str]] = {}
            for occurrence, state, count in await conn.execute(by_occurrence):
                occ.setdefault(occurrence, Counter())[state] += count
            report.failures = [(o, g, d or "") for o, g, d in await conn.execute(failures)]
        report.per_occurrence = sorted(occ.items(), key=lambda kv: kv[0], reverse=True)
        return report


def _row(
    name: str, occurrence: datetime, gid: str, state: str, detail: str | None, now: datetime, token: int | None = None
) -> dict[str, Any]:
    return {
        "token": token,
        "broadcast": name,
        "occurrence": occurrence,
        "group_id": gid,
        "state": state,
        "detail": detail,
        "claimed_at": now,
        "done_at": None if state == DeliveryState.CLAIMED else now,
    }
