"""The console's tables: one-time login links, API tokens and the audit of every change.
Secrets are stored as SHA-256 of 256-bit random tokens (a slow hash adds nothing to a
token nobody can guess; passwords are argon2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import JSONType, UTCDateTime


class WebLoginLink(SQLModel, table=True):
    __tablename__ = "web_login_links"

    token_hash: str = Field(primary_key=True)
    user_id: str
    user_name: str = ""
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebApiToken(SQLModel, table=True):
    __tablename__ = "web_api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    token_hash: str = Field(sa_column=sa.Column(sa.String(), nullable=False, unique=True))
    scopes: str  # comma-separated: read, send, broadcast
    groups: list[str] | None = Field(default=None, sa_type=JSONType)  # None: every group its creator sees
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebAudit(SQLModel, table=True):
    __tablename__ = "web_audit"
    __table_args__ = (sa.Index("ix_web_audit_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    user_id: str  # who: a member id, "password" or "api:<token name>"
    action: str  # what: e.g. broadcast.create, antispam.pardon, config.save
    target: str = ""
    group_id: str | None = None
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
