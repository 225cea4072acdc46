"""Anti-spam tables (migration: bot/storage/migrations/versions/0300_antispam.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import BigIntPK, JSONType, UTCDateTime


class Outcome:
    """Values of `AntispamDecision.outcome`."""

    WARNED = "warned"
    REMOVED = "removed"
    WOULD_WARN = "would_warn"  # dry-run
    WOULD_REMOVE = "would_remove"  # dry-run
    EXEMPT = "exempt"  # owner, admin, allow-listed: checked, never acted on
    FAILED_CLOSED = "failed_closed"  # removal wanted, roles unknown or no right: warned instead
    PARDONED = "pardoned"


class AntispamDecision(SQLModel, table=True):
    """The audit trail: every decision with every check result, so an admin can see why."""

    __tablename__ = "antispam_decisions"
    __table_args__ = (
        sa.Index("ix_antispam_decisions_group_at", "group_id", "at"),
        sa.Index("ix_antispam_decisions_member_at", "member_id", "at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    group_id: str
    member_id: str
    member_name: str = ""
    message_id: str | None = None
    kind: str | None = None  # message kind, or "join" for a blacklisted member rejoining
    text: str | None = None  # kept only when storage.store_text is "full"
    action: str  # what the rules asked for: warn | kick | none
    outcome: str  # see Outcome
    rules: str = ""  # fired rule names, comma-separated
    checks: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONType)
    strikes: int = 0  # warnings within the window, this one included
    dry_run: bool = False
    by: str | None = None  # the admin, for a pardon
    # For the optional classifier: "spam" (a removal that stood) or "ham" (pardoned).
    label: str | None = None


class AntispamStrike(SQLModel, table=True):
    """One warning; warnings within the window add up to a removal."""

    __tablename__ = "antispam_strikes"
    __table_args__ = (sa.Index("ix_antispam_strikes_member", "group_id", "member_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    member_id: str
    at: datetime = Field(sa_type=UTCDateTime)
    rules: str = ""
    decision_id: int | None = None


class AntispamBan(SQLModel, table=True):
    """A removed member, refused when rejoining: everywhere, or in `group_id` only."""

    __tablename__ = "antispam_bans"
    __table_args__ = (sa.Index("uq_antispam_bans_member_group", "member_id", "group_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: str
    member_name: str = ""
    group_id: str  # where they were removed
    everywhere: bool = True
    at: datetime = Field(sa_type=UTCDateTime)
    rules: str = ""
    decision_id: int | None = None


class AntispamSample(SQLModel, table=True):
    """A message an admin taught the bot about in chat (广告 → spam, 误判 → normal): matched
    at once by the `taught` check, and part of the next `qunbot spam-train` model.
    (migration: 0310_antispam_samples)"""

    __tablename__ = "antispam_samples"
    __table_args__ = (sa.Index("ix_antispam_samples_at", "at"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    label: str  # "spam" | "normal" (a string, so a bad value is reported, not mistaken)
    text: str = Field(sa_type=sa.Text())
    kind: str = "text"
    group_id: str = ""
    member_id: str = ""
    member_name: str = ""
    by: str = ""  # the admin who taught it
    message_id: str | None = None
