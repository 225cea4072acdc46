"""The plugin's table. Its schema is created by the plugin's own migration branch
(qunbot_thanks/migrations/thanks_0001.py): keep the two in step."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import UTCDateTime


class Thanks(SQLModel, table=True):
    """One member thanking another in a group."""

    # Prefixed with the plugin's name, as every plugin table is.
    __tablename__ = "thanks_given"
    __table_args__ = (sa.Index("ix_thanks_given_group_receiver", "group_id", "receiver_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    group_id: str
    giver_id: str
    receiver_id: str
