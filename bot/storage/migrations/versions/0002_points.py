"""The shared points ledger (check-in, games, invites).

Revision ID: 0002_points
Revises: 0001_core
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_points"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("points",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=True),
        sa.Column("by", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=False, server_default=""),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_points_group_member", "points_ledger", ["group_id", "member_id"])
    op.create_index("uq_points_ref", "points_ledger", ["group_id", "member_id", "ref"], unique=True)


def downgrade() -> None:
    op.drop_table("points_ledger")
