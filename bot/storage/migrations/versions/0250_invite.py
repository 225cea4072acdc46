"""Keyword invites (关键词拉好友入群): one row per invite, with its source and status.

Revision ID: 0250_invite
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0250_invite"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("invite",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invite_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("bot_id", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("contact_id", sa.String(), nullable=False),
        sa.Column("contact_name", sa.String(), nullable=False),
        sa.Column("keyword", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("joined_at", TS, nullable=True),
        sa.Column("error", sa.String(), nullable=True),
    )
    op.create_index("ix_invite_records_bot_created", "invite_records", ["bot_id", "created_at"])
    op.create_index("ix_invite_records_group_contact", "invite_records", ["group_id", "contact_id", "status"])


def downgrade() -> None:
    op.drop_table("invite_records")
