"""Relay tables: the ledger of relayed messages, live sessions and their transcripts.

The migration is `bot/storage/migrations/versions/0240_relay.py`; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import BigIntPK, JSONType, UTCDateTime

OPEN_SESSION = sa.text("ended_at IS NULL")


class RelayLedger(SQLModel, table=True):
    """One row per human message the bot relayed. The unique `origin_key` is the claim:
    a message seen twice (a duplicate delivery, a replay, a second process) is relayed once."""

    __tablename__ = "relay_ledger"
    __table_args__ = (
        sa.Index("uq_relay_ledger_origin", "origin_key", unique=True),
        sa.Index("ix_relay_ledger_at", "at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    origin_key: str
    group_id: str
    member_id: str
    message_id: str | None = None
    at: datetime = Field(sa_type=UTCDateTime)
    targets: list[str] | None = Field(default=None, sa_type=JSONType)


class RelaySession(SQLModel, table=True):
    """A live session (开始直播 … 结束直播) of one relay. At most one open per relay."""

    __tablename__ = "relay_sessions"
    __table_args__ = (
        sa.Index(
            "uq_relay_sessions_open", "relay", unique=True, sqlite_where=OPEN_SESSION, postgresql_where=OPEN_SESSION
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    relay: str
    group_id: str  # where it was started
    started_at: datetime = Field(sa_type=UTCDateTime)
    started_by: str
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_by: str | None = None
    speakers: list[str] | None = Field(default=None, sa_type=JSONType)  # None: the relay's own


class RelayTranscript(SQLModel, table=True):
    """What was relayed (and asked) during a session, in order."""

    __tablename__ = "relay_transcript"
    __table_args__ = (sa.Index("ix_relay_transcript_session", "session_id", "at"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    session_id: int = Field(foreign_key="relay_sessions.id")
    at: datetime = Field(sa_type=UTCDateTime)
    group_id: str
    member_id: str
    member_name: str = ""
    kind: str = "text"
    text: str | None = None  # None when storage.store_text is "metadata"
    question: bool = False
    meta: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
