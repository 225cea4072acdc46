"""Scheduled broadcasts: definitions and per-(broadcast, occurrence, group) delivery claims.

Revision ID: 0200_broadcast
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0200_broadcast"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("broadcast",)
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when the models do.
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broadcast_defs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(), nullable=False, unique=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("spec", JSON, nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created_in", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("checked_at", TS, nullable=True),
    )
    op.create_table(
        "broadcast_deliveries",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("broadcast", sa.String(), nullable=False),
        sa.Column("occurrence", TS, nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.UniqueConstraint("broadcast", "occurrence", "group_id", name="uq_broadcast_deliveries_claim"),
    )
    op.create_index("ix_broadcast_deliveries_broadcast_group", "broadcast_deliveries", ["broadcast", "group_id"])


def downgrade() -> None:
    op.drop_table("broadcast_deliveries")
    op.drop_table("broadcast_defs")
