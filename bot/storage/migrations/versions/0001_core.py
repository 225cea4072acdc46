"""Core tables: groups, contacts, memberships, event log, daily rollups, plugin switches, kv.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_core"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("core",)
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when models.py does.
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN_ROW = sa.text("left_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("owner_id", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("left_at", TS, nullable=True),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), sa.ForeignKey("groups.id"), nullable=False),
        sa.Column("member_id", sa.String(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("left_at", TS, nullable=True),
        sa.Column("inviter_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_memberships_group_member", "memberships", ["group_id", "member_id"])
    op.create_index(
        "uq_memberships_open",
        "memberships",
        ["group_id", "member_id"],
        unique=True,
        sqlite_where=OPEN_ROW,
        postgresql_where=OPEN_ROW,
    )
    op.create_table(
        "event_log",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.Column("member_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=True),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("meta", JSON, nullable=True),
    )
    op.create_index("ix_event_log_group_at", "event_log", ["group_id", "at"])
    op.create_index("ix_event_log_member_at", "event_log", ["member_id", "at"])
    op.create_table(
        "daily_activity",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("member_id", sa.String(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "group_plugin_state",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("plugin", sa.String(), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(), nullable=True),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_table(
        "kv",
        sa.Column("namespace", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", JSON, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "kv",
        "group_plugin_state",
        "daily_activity",
        "event_log",
        "memberships",
        "contacts",
        "groups",
    ):
        op.drop_table(table)
