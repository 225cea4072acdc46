"""Core tables. Plugins define their own tables (prefixed with the plugin name) next to
their code and add them with their own migration branch (see migrations/README.md).

Every datetime column is timezone-aware and stored as UTC (`UTCDateTime`); values read back
are aware on SQLite too. Table names are plural to stay clear of SQL keywords (`group`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware times")
    return value.astimezone(UTC)


def sqlite_utc_text(value: datetime) -> str:
    """How a timestamp is stored on SQLite: UTC, SQLAlchemy's fixed-width text format
    ("2026-12-01 16:30:00.000000", so text order is time order), built by the C isoformat
    because the recorder binds many of these."""
    return as_utc(value).isoformat(" ", "microseconds")[:26]


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core `Table` of a SQLModel table class, typed: SQLModel sets `__table__` only when
    the class is created, so a type checker cannot see it (bulk inserts and raw column access
    need the Table)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class _SQLiteUTCText(sqlite.DATETIME):
    """SQLite DATETIME whose bind values arrive already formatted by `UTCDateTime`."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None


class UTCDateTime(sa.TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that refuses naive values, stores UTC and always returns
    aware UTC datetimes (SQLite keeps no offset, so the driver hands back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteUTCText())
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return sqlite_utc_text(value)
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite. Python None is SQL NULL.
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Group(SQLModel, table=True):
    __tablename__ = "groups"

    id: str = Field(primary_key=True)
    topic: str = ""
    owner_id: str | None = None
    active: bool = True  # the bot is currently in the group
    registered_at: datetime = Field(sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    # Text primary keys: one clustered b-tree on SQLite instead of a table plus an index.
    __table_args__ = {"sqlite_with_rowid": False}

    id: str = Field(primary_key=True)
    name: str = ""
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)


class Membership(SQLModel, table=True):
    """One stay of a member in a group: a rejoin after leaving is a new row. At most one row
    per (group, member) is open (left_at NULL), enforced by a partial unique index.

    `known_from` is where the bot's record of the stay begins, and what "a member at time t"
    reads: the join time when the bot saw the join, else when it first found the member
    present (a member list read at start-up, on joining a group, or hourly; a leave of someone
    never seen). `joined_at` is the join time, NULL when the member was there before the bot
    could see them join: nobody knows when that was. When set, it equals `known_from`."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.Index("ix_memberships_group_member", "group_id", "member_id"),
        sa.Index(
            "uq_memberships_open",
            "group_id",
            "member_id",
            unique=True,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        ),
        # Members at a time, per group (every report's denominator), and one member's stays.
        sa.Index("ix_memberships_known", "group_id", "known_from", "left_at"),
        sa.Index("ix_memberships_member_known", "group_id", "member_id", "known_from", "left_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(foreign_key="groups.id")
    member_id: str = Field(foreign_key="contacts.id")
    joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    known_from: datetime = Field(sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    inviter_id: str | None = None
    source: str | None = None  # how they came, e.g. "keyword:进群"
    removed: bool = False


class EventType:
    """Values of `EventLog.type`."""

    MESSAGE = "message"
    PRIVATE = "private"
    JOIN = "join"
    LEAVE = "leave"
    RENAME = "rename"
    FRIEND_REQUEST = "friend_request"
    BOT_JOINED = "bot_joined"
    BOT_LEFT = "bot_left"
    BOT_MESSAGE = "bot_message"

    # Types whose `text` is message content (subject to store_text and purging).
    WITH_TEXT = (MESSAGE, PRIVATE, FRIEND_REQUEST, BOT_MESSAGE)


# The rows the unique key on (group, platform message id) covers: chat messages whose id is known.
MESSAGE_KEY_WHERE = sa.text("type = 'message' AND message_id IS NOT NULL")


class EventLog(SQLModel, table=True):
    """The raw, append-only event log. Reports read `DailyActivity`, not this."""

    __tablename__ = "event_log"
    __table_args__ = (
        # By group and time only: an index by member takes every message at a random place
        # and makes writing the log about three times dearer on SQLite (see migration 0003).
        sa.Index("ix_event_log_group_at", "group_id", "at"),
        # A platform message is logged once per group, however many accounts (or replays)
        # deliver it: statistics count it once (migration 0006).
        sa.Index(
            "uq_event_log_group_message",
            "group_id",
            "message_id",
            unique=True,
            sqlite_where=MESSAGE_KEY_WHERE,
            postgresql_where=MESSAGE_KEY_WHERE,
        ),
    )

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    type: str
    group_id: str | None = None
    member_id: str | None = None
    kind: str | None = None
    text: str | None = None
    message_id: str | None = None
    meta: dict[str, Any] | None = Field(default=None, sa_type=JSONType)


class DailyActivity(SQLModel, table=True):
    """Messages per member, group and local calendar day, maintained as events arrive."""

    __tablename__ = "daily_activity"
    __table_args__ = {"sqlite_with_rowid": False}

    group_id: str = Field(primary_key=True)
    member_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    messages: int = 0
    first_at: datetime = Field(sa_type=UTCDateTime)
    last_at: datetime = Field(sa_type=UTCDateTime)


class GroupPluginState(SQLModel, table=True):
    """An admin's on/off switch for a plugin in one group, kept across restarts."""

    __tablename__ = "group_plugin_state"

    group_id: str = Field(primary_key=True)
    plugin: str = Field(primary_key=True)
    enabled: bool
    changed_by: str | None = None
    changed_at: datetime = Field(sa_type=UTCDateTime)


class KeyValue(SQLModel, table=True):
    """Small bits of state, namespaced by owner (usually a plugin name)."""

    __tablename__ = "kv"

    namespace: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: Any = Field(default=None, sa_type=JSONType, nullable=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


CORE_TABLES: tuple[type[SQLModel], ...] = (
    Group,
    Contact,
    Membership,
    EventLog,
    DailyActivity,
    GroupPluginState,
    KeyValue,
)
CORE_TABLE_NAMES = frozenset(table_of(t).name for t in CORE_TABLES)
