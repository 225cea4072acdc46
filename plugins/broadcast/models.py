"""The broadcast plugin's tables (migration: bot/storage/migrations/versions/0200_broadcast.py).

- `broadcast_defs`: one row per broadcast, from YAML (synced at start) or made in chat (the
  definition is stored here and survives restarts); pause/delete state; `checked_at`, the
  time through which occurrences have been dealt with (start-up looks back from it).
- `broadcast_deliveries`: one row per (broadcast, occurrence, group), inserted BEFORE the
  send under a unique key: the insert that loses the race (another process, or a restart
  that already sent it) sends nothing. Its state is the delivery report.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import BigIntPK, JSONType, UTCDateTime


class DeliveryState(StrEnum):
    CLAIMED = "claimed"  # claimed and queued; the outbox has not reported yet
    SENT = "sent"
    FAILED = "failed"
    MISSED = "missed"  # fell due while the bot was down, beyond the grace period
    SKIPPED = "skipped"  # the plugin is switched off in that group


class BroadcastDef(SQLModel, table=True):
    __tablename__ = "broadcast_defs"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column_kwargs={"unique": True})
    source: str  # "yaml" | "chat"
    spec: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # chat-made: the definition
    paused: bool = False
    deleted: bool = False
    created_by: str | None = None
    created_in: str | None = None  # the group the command was given in (None: private chat)
    created_at: datetime = Field(sa_type=UTCDateTime)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BroadcastDelivery(SQLModel, table=True):
    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("broadcast", "occurrence", "group_id", name="uq_broadcast_deliveries_claim"),
        sa.Index("ix_broadcast_deliveries_broadcast_group", "broadcast", "group_id"),
    )

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    broadcast: str  # BroadcastDef.name
    occurrence: datetime = Field(sa_type=UTCDateTime)  # the scheduled time, not the send time
    group_id: str
    state: str
    detail: str | None = None
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Several accounts: the group's duty token it was claimed under (None with one account).
    token: int | None = Field(default=None, sa_type=sa.BigInteger)
