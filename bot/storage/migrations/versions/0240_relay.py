"""Relay (多群同步直播): ledger of relayed messages, live sessions, transcripts.

Revision ID: 0240_relay
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0240_relay"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("relay",)
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when the models do.
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN_SESSION = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "relay_ledger",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("origin_key", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("targets", JSON, nullable=True),
    )
    op.create_index("uq_relay_ledger_origin", "relay_ledger", ["origin_key"], unique=True)
    op.create_index("ix_relay_ledger_at", "relay_ledger", ["at"])
    op.create_table(
        "relay_sessions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("relay", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_by", sa.String(), nullable=True),
        sa.Column("speakers", JSON, nullable=True),
    )
    op.create_index(
        "uq_relay_sessions_open",
        "relay_sessions",
        ["relay"],
        unique=True,
        sqlite_where=OPEN_SESSION,
        postgresql_where=OPEN_SESSION,
    )
    op.create_table(
        "relay_transcript",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("relay_sessions.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("question", sa.Boolean(), nullable=False),
        sa.Column("meta", JSON, nullable=True),
    )
    op.create_index("ix_relay_transcript_session", "relay_transcript", ["session_id", "at"])


def downgrade() -> None:
    op.drop_table("relay_transcript")
    op.drop_table("relay_sessions")
    op.drop_table("relay_ledger")
