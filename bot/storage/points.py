"""The points ledger shared by check-in, games and invites.

Every change of points is a row; a member's total is always the sum of the ledger, never
a counter kept on the side. A `ref` makes an award idempotent: awarding the same ref twice
(a retried handler, a replayed message) leaves one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import Field, SQLModel, col

from bot.storage.bulk import (
    SQLITE_JSON,
    SQLITE_MAX_PARAMS,
    BulkStatement,
    DriverValues,
    json_rows,
    sqlite_json_table,
)
from bot.storage.db import Database
from bot.storage.models import UTCDateTime, as_utc, table_of


class PointsEntry(SQLModel, table=True):
    __tablename__ = "points_ledger"
    __table_args__ = (
        sa.Index("ix_points_group_member", "group_id", "member_id"),
        sa.Index("uq_points_ref", "group_id", "member_id", "ref", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    member_id: str
    delta: int
    # What for: checkin, streak_bonus, makeup, activity, invite, invite_revoked, admin, game:<name> …
    reason: str
    ref: str | None = None
    by: str | None = None  # the admin who granted/deducted, for admin changes
    note: str = ""
    at: datetime = Field(sa_type=UTCDateTime)


def _same_entry(group_id: str, member_id: str, ref: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The conditions that identify one member's entry for a ref (the idempotency key)."""
    return (col(PointsEntry.group_id) == group_id, col(PointsEntry.member_id) == member_id, col(PointsEntry.ref) == ref)


# An entry to grow: (group, member, ref, points to add, cap, time of the change).
Accumulation = tuple[str, str, str, int, int, datetime]

_LEDGER = table_of(PointsEntry)

# A ledger entry's identity: (group, member, ref).
_Key = tuple[str, str, str]

_WRITE_COLUMNS = ("group_id", "member_id", "delta", "reason", "ref", "by", "note", "at")
_PG_CURRENT = (
    "SELECT p.group_id, p.member_id, p.ref, p.delta FROM points_ledger AS p"
    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(group_id, member_id, ref)"
    " ON p.group_id = k.group_id AND p.member_id = k.member_id AND p.ref = k.ref"
)
# CROSS JOIN fixes SQLite's join order: the keys first, each found through `uq_points_ref`
# (a row-value IN over VALUES is planned as a scan of the whole ledger).
_SQLITE_CURRENT = (
    "SELECT p.group_id, p.member_id, p.ref, p.delta FROM (VALUES {}) AS k CROSS JOIN points_ledger AS p"
    " ON p.group_id = k.column1 AND p.member_id = k.column2 AND p.ref = k.column3"
)
_SQLITE_KEYS = min(3_000, SQLITE_MAX_PARAMS // 3)  # keys per SQLite select without JSON
# With JSON: every key in one parameter, one statement.
_SQLITE_CURRENT_JSON = (
    f"SELECT p.group_id, p.member_id, p.ref, p.delta FROM {sqlite_json_table('g', 'm', 'r')} AS k"
    " CROSS JOIN points_ledger AS p ON p.group_id = k.g AND p.member_id = k.m AND p.ref = k.r"
)


def _set_delta_and_time(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(
        index_elements=["group_id", "member_id", "ref"], set_={"delta": stmt.excluded.delta, "at": stmt.excluded.at}
    )


class _LedgerBulk:
    """The driver-level statements of `PointsLedger.accumulate_many`, for one dialect."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.values = DriverValues.for_dialect(dialect.name)
        # The new deltas are worked out beforehand: a row that exists just takes its new
        # delta and time (one multi-row statement, not an update per row).
        self.write = BulkStatement(_LEDGER, _WRITE_COLUMNS, dialect, _set_delta_and_time)
        self._postgres = dialect.name == "postgresql"

    async def current(self, conn: AsyncConnection, keys: list[_Key]) -> dict[_Key, int]:
        """The deltas of the rows that exist for these (group, member, ref) keys; the
        unique index `uq_points_ref` finds each."""
        statements: list[tuple[str, tuple[Any, ...]]]
        if self._postgres:
            statements = [(_PG_CURRENT, tuple(list(c) for c in zip(*keys, strict=True)))] if keys else []
        elif SQLITE_JSON:
            statements = [(_SQLITE_CURRENT_JSON, (json_rows(keys),))] if keys else []
        else:
            statements = [
                (_SQLITE_CURRENT.format(", ".join(["(?, ?, ?)"] * len(chunk))), tuple(chain.from_iterable(chunk)))
                for chunk in (keys[i : i + _SQLITE_KEYS] for i in range(0, len(keys), _SQLITE_KEYS))
            ]
        found: dict[_Key, int] = {}
        for sql, params in statements:
            for row in await conn.exec_driver_sql(sql, params):
                g, m, ref, delta = tuple(row)  # a driver-level row: its width is not in its type
                found[(g, m, ref)] = int(delta)
        return found


class PointsLedger:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._bulk_statements: _LedgerBulk | None = None

    async def add(
        self,
        group_id: str,
        member_id: str,
        delta: int,
        reason: str,
        at: datetime,
        *,
        ref: str | None = None,
        by: str | None = None,
        note: str = "",
        session: AsyncSession | None = None,
    ) -> bool:
        """Record a change; False when `ref` was already recorded (nothing written).
        Pass `session` to write inside the caller's transaction."""
        if session is not None:
            return await self._add(session, group_id, member_id, delta, reason, at, ref, by, note)
        async with self._db.transaction() as s:
            return await self._add(s, group_id, member_id, delta, reason, at, ref, by, note)

    async def _add(
        self,
        s: AsyncSession,
        group_id: str,
        member_id: str,
        delta: int,
        reason: str,
        at: datetime,
        ref: str | None,
        by: str | None,
        note: str,
    ) -> bool:
        if ref is not None:
            exists = await s.execute(sa.select(col(PointsEntry.id)).where(*_same_entry(group_id, member_id, ref)))
            if exists.first() is not None:
                return False
        s.add(
            PointsEntry(
                group_id=group_id, member_id=member_id, delta=delta, reason=reason, ref=ref, by=by, note=note, at=at
            )
        )
        await s.flush()
        return True

    async def accumulate(
        self,
        group_id: str,
        member_id: str,
        delta: int,
        reason: str,
        at: datetime,
        *,
        ref: str,
        cap: int | None = None,
        session: AsyncSession | None = None,
    ) -> int:
        """Grow a running entry: one row per `ref` (e.g. a day's activity points) whose delta
        increases by `delta`, never past `cap`. Returns the entry's delta afterwards. Writing
        one growing row instead of a row per message keeps the ledger small."""
        if session is not None:
            return await self._accumulate(session, group_id, member_id, delta, reason, at, ref, cap)
        async with self._db.transaction() as s:
            return await self._accumulate(s, group_id, member_id, delta, reason, at, ref, cap)

    async def _accumulate(
        self,
        s: AsyncSession,
        group_id: str,
        member_id: str,
        delta: int,
        reason: str,
        at: datetime,
        ref: str,
        cap: int | None,
    ) -> int:
        row = (
            await s.execute(
                sa.select(col(PointsEntry.id), col(PointsEntry.delta)).where(*_same_entry(group_id, member_id, ref))
            )
        ).first()
        current = int(row[1]) if row is not None else 0
        new = current + delta
        if cap is not None:
            new = min(new, max(cap, current))
        if row is None:
            s.add(PointsEntry(group_id=group_id, member_id=member_id, delta=new, reason=reason, ref=ref, at=at))
        elif new != current:
            await s.execute(sa.update(PointsEntry).where(col(PointsEntry.id) == row[0]).values(delta=new, at=at))
        await s.flush()
        return new

    async def accumulate_many(self, reason: str, rows: Sequence[Accumulation]) -> list[int]:
        """`accumulate` for many entries in one transaction (e.g. every member's activity
        points at a flush), with exactly its rule: one row per group, member and ref, whose
        delta grows by the points but never past the cap, and a row already past it is left
        alone. Returns each entry's delta afterwards, in the order of `rows` (whose keys are
        distinct).

        A few driver-level statements instead of a round trip per entry: one select of the
        existing rows (a few on SQLite), then one multi-row upsert of the new deltas. A flush of
        ten thousand members is a burst of Python work on the event loop, so the rows skip
        SQLAlchemy's per-row parameter processing (`bot.storage.bulk`). All or nothing: on
        error nothing is written."""
        bulk = self._bulk()
        stamp = bulk.values.stamp
        async with self._db.transaction() as s:
            conn = await s.connection()
            current = await bulk.current(conn, [(g, m, ref) for g, m, ref, *_ in rows])
            writes: list[tuple[object, ...]] = []
            out: list[int] = []
            for g, m, ref, delta, cap, at in rows:
                found = current.get((g, m, ref))
                now_delta = found if found is not None else 0
                new = min(now_delta + delta, max(cap, now_delta))
                if found is None or new != now_delta:
                    writes.append((g, m, new, reason, ref, None, "", stamp(as_utc(at))))
                out.append(new)
            await bulk.write.execute(conn, writes)
        return out

    def _bulk(self) -> _LedgerBulk:
        if self._bulk_statements is None:
            self._bulk_statements = _LedgerBulk(self._db.engine.dialect)
        return self._bulk_statements

    async def with_ref(self, group_id: str, ref: str) -> list[PointsEntry]:
        """Every member's entry carrying `ref` in a group (e.g. who was paid for inviting X)."""
        stmt = (
            sa.select(PointsEntry)
            .where(col(PointsEntry.group_id) == group_id, col(PointsEntry.ref) == ref)
            .order_by(col(PointsEntry.at), col(PointsEntry.id))
        )
        async with self._db.session() as s:
            return list((await s.execute(stmt)).scalars().all())

    async def totals(self, group_id: str) -> list[tuple[str, int, datetime]]:
        """Every member of a group with entries: (member, total, time of the last change).
        Unordered; for leaderboards that rank with their own tie rules."""
        stmt = (
            sa.select(col(PointsEntry.member_id), sa.func.sum(col(PointsEntry.delta)), sa.func.max(col(PointsEntry.at)))
            .where(col(PointsEntry.group_id) == group_id)
            .group_by(col(PointsEntry.member_id))
        )
        async with self._db.session() as s:
            rows = (await s.execute(stmt)).all()
        return [(r[0], int(r[1]), _aware(r[2])) for r in rows]

    async def has_ref(self, group_id: str, member_id: str, ref: str) -> bool:
        async with self._db.session() as s:
            row = await s.execute(sa.select(col(PointsEntry.id)).where(*_same_entry(group_id, member_id, ref)))
            return row.first() is not None

    async def total(self, group_id: str, member_id: str, session: AsyncSession | None = None) -> int:
        stmt = sa.select(sa.func.coalesce(sa.func.sum(col(PointsEntry.delta)), 0)).where(
            col(PointsEntry.group_id) == group_id, col(PointsEntry.member_id) == member_id
        )
        if session is not None:
            return int((await session.execute(stmt)).scalar_one())
        async with self._db.session() as s:
            return int((await s.execute(stmt)).scalar_one())

    async def top(self, group_id: str, n: int = 10, since: datetime | None = None) -> list[tuple[str, int]]:
        """Members by total (or by points earned since `since`), highest first; ties by
        member id so the order is stable."""
        total = sa.func.sum(col(PointsEntry.delta)).label("total")
        stmt = sa.select(col(PointsEntry.member_id), total).where(col(PointsEntry.group_id) == group_id)
        if since is not None:
            stmt = stmt.where(col(PointsEntry.at) >= since)
        stmt = stmt.group_by(col(PointsEntry.member_id)).order_by(total.desc(), col(PointsEntry.member_id)).limit(n)
        async with self._db.session() as s:
            return [(row[0], int(row[1])) for row in (await s.execute(stmt)).all()]

    async def history(self, group_id: str, member_id: str, limit: int = 20) -> list[PointsEntry]:
        stmt = (
            sa.select(PointsEntry)
            .where(col(PointsEntry.group_id) == group_id, col(PointsEntry.member_id) == member_id)
            .order_by(col(PointsEntry.at).desc(), col(PointsEntry.id).desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            return list((await s.execute(stmt)).scalars().all())


def _aware(value: datetime | str) -> datetime:
    # An aggregate (max) bypasses the column type on SQLite and comes back as text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
