"""Invite records: every invite the bot made, with its source, for retention by source.

The migration is `bot/storage/migrations/versions/0250_invite.py`; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import UTCDateTime


class InviteStatus:
    """Values of `InviteRecord.status`."""

    QUEUED = "queued"  # waiting in the outbox
    SENT = "sent"  # the platform took it; above 40 members the invitee still has to accept
    JOINED = "joined"  # the member's join arrived
    FAILED = "failed"  # the platform refused it (after the outbox's retries)

    PENDING = (QUEUED, SENT)


class InviteRecord(SQLModel, table=True):
    __tablename__ = "invite_records"
    __table_args__ = (
        sa.Index("ix_invite_records_bot_created", "bot_id", "created_at"),
        sa.Index("ix_invite_records_group_contact", "group_id", "contact_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bot_id: str  # the account that invited (several may share one database)
    group_id: str
    contact_id: str
    contact_name: str = ""
    keyword: str  # what the contact sent, e.g. "进群" or "加群 读书"
    rule: str = ""  # the rule's name (or its first keyword)
    via: str = "private"  # private | friend_request
    source: str  # as given to the recorder: "keyword:进群"
    status: str = InviteStatus.QUEUED
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = None
