"""Check-in records (plugins/checkin/models.py); points live in the shared ledger.

Revision ID: 0100_checkin
Revises: 0002_points
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100_checkin"
down_revision: str | Sequence[str] | None = "0002_points"
branch_labels: str | Sequence[str] | None = ("checkin",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checkin_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("name", sa.String(), nullable=False, server_default=""),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("makeup", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("by", sa.String(), nullable=True),
    )
    op.create_index("uq_checkin_member_day", "checkin_records", ["group_id", "member_id", "day"], unique=True)
    op.create_index("ix_checkin_group_day", "checkin_records", ["group_id", "day", "at"])


def downgrade() -> None:
    op.drop_table("checkin_records")
