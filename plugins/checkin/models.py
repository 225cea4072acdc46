"""Check-in tables (migration: bot/storage/migrations/versions/0100_checkin.py).

Points are not here: every point lives in the shared ledger (`bot.storage.points`).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import UTCDateTime


class CheckinRecord(SQLModel, table=True):
    """One checked-in (or made-up) business day of a member in a group."""

    __tablename__ = "checkin_records"
    __table_args__ = (
        sa.Index("uq_checkin_member_day", "group_id", "member_id", "day", unique=True),
        sa.Index("ix_checkin_group_day", "group_id", "day", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    member_id: str
    day: date  # the business day (configured timezone and day start)
    at: datetime = Field(sa_type=UTCDateTime)  # when it was recorded (for a make-up: when bought)
    name: str = ""  # the member's display name then, for leaderboards
    # Consecutive days ending on `day`; kept right when a make-up repairs a gap.
    streak: int = 1
    points: int = 0  # points this record earned (base + streak bonus)
    makeup: bool = False
    by: str | None = None  # the admin, for an admin's make-up (free, outside the monthly limit)
