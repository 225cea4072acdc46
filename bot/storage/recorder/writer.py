"""Writing one folded batch: one transaction that appends to the event log and upserts
groups, contacts, membership stays and the daily activity rollup in bulk."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import date, tzinfo
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.events import Event
from bot.storage.bulk import SQLITE_JSON, BulkStatement, DriverValues, json_rows, sqlite_json_table
from bot.storage.db import Database
from bot.storage.models import MESSAGE_KEY_WHERE, Contact, DailyActivity, EventLog, Group, table_of
from bot.storage.recorder.contacts import KnownContacts
from bot.storage.recorder.fold import CONTACT_COLUMNS, DAILY_COLUMNS, FOLD, LOG_COLUMNS, Batch, GroupChange
from bot.storage.recorder.membership import MembershipWriter

_LOG = table_of(EventLog)
_CONTACTS = table_of(Contact)
_GROUPS = table_of(Group)
_DAILY = table_of(DailyActivity)


def _contacts_conflict(stmt: Any) -> Any:
    new, old = stmt.excluded, _CONTACTS.c
    newer = new.last_seen >= old.last_seen
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            # An empty name never replaces a known one; an older event never wins.
            "name": sa.case((sa.and_(new.name != sa.literal_column("''"), newer), new.name), else_=old.name),
            "first_seen": sa.case((new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen),
            "last_seen": sa.case((newer, new.last_seen), else_=old.last_seen),
        },
    )


def _daily_conflict(stmt: Any) -> Any:
    new, old = stmt.excluded, _DAILY.c
    return stmt.on_conflict_do_update(
        index_elements=["group_id", "member_id", "day"],
        set_={
            "messages": old.messages + new.messages,
            "first_at": sa.case((new.first_at < old.first_at, new.first_at), else_=old.first_at),
            "last_at": sa.case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        },
    )


def _log_conflict(stmt: Any) -> Any:
    # A message another account (or an earlier delivery) logged: no second row (`count_new`
    # does not count it either).
    return stmt.on_conflict_do_nothing(index_elements=["group_id", "message_id"], index_where=MESSAGE_KEY_WHERE)


# pg_advisory_xact_lock(key1, key2) namespace of the per-group locks ("qlog" in ASCII).
_GROUP_LOCKS = 0x716C6F67


async def _lock_groups(conn: AsyncConnection, groups: set[str]) -> None:
    """Lock these groups' messages for this transaction (PostgreSQL), in one order for every
    writer. Another account's transaction with messages of these groups has committed before
    this returns, and none starts before this one ends: what `_logged_before` reads stays true
    until the commit. And two accounts' batches never wait for each other's rows in opposite
    orders (a deadlock). A group's key is a stable hash of its id; two groups sharing one only
    wait for each other."""
    keys = sorted({zlib.crc32(gid.encode()) - (1 << 31) for gid in groups})
    await conn.exec_driver_sql(
        f"SELECT count(pg_advisory_xact_lock({_GROUP_LOCKS}, k)) FROM unnest($1::int4[]) AS k", (keys,)
    )


# Which of a batch's (group, message id) the event log holds: a join of the pairs with the log,
# on the partial key's own condition so that each pair is one lookup in it. (A list of pairs in
# `IN` makes SQLite read the whole key; a list of groups and one of ids, every combination.)
_LOGGED_BEFORE_PG = (
    "SELECT e.group_id, e.message_id FROM unnest($1::varchar[], $2::varchar[]) AS k (g, m)"
    f" JOIN event_log e ON e.group_id = k.g AND e.message_id = k.m WHERE {MESSAGE_KEY_WHERE.text}"
)
_LOGGED_BEFORE_SQLITE = (
    "SELECT e.group_id, e.message_id FROM (VALUES {pairs}) AS k"
    f" JOIN event_log e ON e.group_id = k.column1 AND e.message_id = k.column2 WHERE {MESSAGE_KEY_WHERE.text}"
)
_PAIRS_PER_QUERY = 512  # SQLite without JSON: statements of 1, 2, 4 ... 512 pairs (sqlite3 keeps each one it prepares)
# Every pair in one JSON parameter: one statement, whatever the batch. CROSS JOIN fixes the
# join order (the keys first, each found through the log's key).
_LOGGED_BEFORE_SQLITE_JSON = (
    f"SELECT e.group_id, e.message_id FROM {sqlite_json_table('g', 'm')} AS k CROSS JOIN event_log e"
    f" ON e.group_id = k.g AND e.message_id = k.m WHERE {MESSAGE_KEY_WHERE.text}"
)


def _pairs(rows: Iterable[Any]) -> Iterable[tuple[str, str]]:
    return ((gid, message_id) for gid, message_id in rows)


class BatchWriter:
    """Folds events into rows and writes them in one transaction (`write`)."""

    def __init__(self, db: Database, tz: tzinfo, full_text: bool) -> None:
        self._db = db
        self._tz = tz
        self._full_text = full_text
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        dialect = db.engine.dialect
        self._values = DriverValues.for_dialect(dialect.name)
        self._known = KnownContacts()
        self._log_insert = BulkStatement(_LOG, LOG_COLUMNS, dialect, _log_conflict)
        self._contacts_upsert = BulkStatement(_CONTACTS, CONTACT_COLUMNS, dialect, _contacts_conflict)
        self._daily_upsert = BulkStatement(_DAILY, DAILY_COLUMNS, dialect, _daily_conflict)
        self._memberships = MembershipWriter(
            self._insert, self._values, self._contacts_upsert, self._log_insert, self._in_lock_order
        )

    async def _logged_before(self, conn: AsyncConnection, keyed: list[Any]) -> set[tuple[str, str]]:
        """Which of these (group, message id) the event log holds already."""
        keys = list({(gid, message_id) for gid, message_id, *_ in keyed})
        found: set[tuple[str, str]] = set()
        if self._db.dialect == "postgresql":
            groups, ids = zip(*keys, strict=True)
            found.update(_pairs(await conn.exec_driver_sql(_LOGGED_BEFORE_PG, (list(groups), list(ids)))))
            return found
        if SQLITE_JSON:
            found.update(_pairs(await conn.exec_driver_sql(_LOGGED_BEFORE_SQLITE_JSON, (json_rows(keys),))))
            return found
        for start in range(0, len(keys), _PAIRS_PER_QUERY):
            chunk = keys[start : start + _PAIRS_PER_QUERY]
            # Padded to a power of two (the last pair again), so that ten statements serve
            # every batch size.
            size = 1 << (len(chunk) - 1).bit_length()
            chunk += [chunk[-1]] * (size - len(chunk))
            sql = _LOGGED_BEFORE_SQLITE.format(pairs=", ".join(["(?, ?)"] * size))
            found.update(_pairs(await conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))))
        return found

    def fold(self, events: Iterable[Event], sources: dict[tuple[str, str], str]) -> Batch:
        """The rows of `events`; joins take (and remove) their source from `sources`."""
        batch = Batch(self._tz, self._full_text, sources, self._values, self._known)
        for event in events:
            FOLD[type(event)](batch, event)
        return batch

    async def write(self, events: Sequence[Event], sources: dict[tuple[str, str], str]) -> None:
        """Write `events` in one transaction. Sources are consumed by the fold: they are
        restored if the transaction fails."""
        saved = dict(sources) if sources else None
        try:
            batch = self.fold(events, sources)
            async with self._db.engine.begin() as conn:
                if batch.keyed and self._db.dialect == "postgresql":
                    await _lock_groups(conn, {gid for gid, *_ in batch.keyed})
                # Parents before memberships (foreign keys); see `_in_lock_order`. Also the
                # first write: on SQLite it takes the write lock (pysqlite begins there), so
                # that no other writer logs this batch's messages after the lookup below. Every
                # message's group is in `batch.groups`: it is never empty when that matters.
                await self.write_groups(conn, batch.groups)
                if batch.keyed:
                    # Only messages no account logged yet count (the log's key skips the rows
                    # of the others). Asking first, rather than having the insert return its
                    # rows, keeps SQLite's insert one step for all its rows.
                    batch.count_new(await self._logged_before(conn, batch.keyed))
                if batch.log:
                    await self._log_insert.execute(conn, batch.log)
                await self.write_contacts(conn, batch.contacts)
                await self._memberships.write(conn, batch.membership)
                await self.write_daily(conn, batch.daily)
            self._known.wrote(batch.contacts.values(), self._values.time)
        except BaseException:
            if saved is not None:
                sources.clear()
                sources.update(saved)
            raise

    def _in_lock_order(self, rows: dict[Any, list[Any]]) -> list[list[Any]]:
        """Upsert rows sorted by key on PostgreSQL, so that concurrent writers lock rows in the
        same order (no deadlock). SQLite has one writer at a time: sorting thousands of keys
        per batch would buy nothing there."""
        if self._db.dialect == "postgresql":
            return [rows[k] for k in sorted(rows)]
        return list(rows.values())

    async def write_contacts(self, conn: AsyncConnection, contacts: dict[str, list[Any]]) -> None:
        if contacts:
            await self._contacts_upsert.execute(conn, self._in_lock_order(contacts))

    async def write_groups(self, conn: AsyncConnection, groups: dict[str, GroupChange]) -> None:
        # Rows differ in what they change, so group them by shape: one statement per shape.
        shapes: dict[tuple[bool, bool | None], list[dict[str, Any]]] = {}
        for gid in sorted(groups):
            change = groups[gid]
            is_active = True if change.active is None else change.active
            row = {
                "id": gid,
                "topic": change.topic,
                "owner_id": None,
                "active": is_active,
                "registered_at": change.changed_at if change.active else change.first_at,
                "left_at": change.changed_at if change.active is False else None,
            }
            shapes.setdefault((bool(change.topic), change.active), []).append(row)
        for (has_topic, active), rows in shapes.items():
            stmt = self._insert(_GROUPS)
            new, old = stmt.excluded, _GROUPS.c
            set_: dict[str, Any] = {}
            if has_topic:
                set_["topic"] = new.topic
            if active is not None:
                set_["active"] = new.active
                set_["left_at"] = new.left_at
            if not set_:
                stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
            elif active is None:
                # Only the topic may change: skip the write when it did not.
                stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=set_, where=old.topic != new.topic)
            else:
                stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=set_)
            await conn.execute(stmt, rows)

    async def write_daily(self, conn: AsyncConnection, daily: dict[tuple[str, str, date], list[Any]]) -> None:
        if daily:
            await self._daily_upsert.execute(conn, self._in_lock_order(daily))
