"""Indexes for the statistics reports (bot/stats): membership stays read by group and time.

The core's (group_id, member_id) index leaves every report reading the memberships table
row by row in random order. These cover what the reports read, so a retention report over
hundreds of thousands of stays is a walk along an index: joins of a period by group, the
stays of a member (first join in the period, later rejoins), and leaves by group and time.

Revision ID: 0400_stats
Revises: 0001_core
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0400_stats"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("stats",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_stats_memberships_joined",
        "memberships",
        ["group_id", "joined_at", "member_id", "left_at", "inviter_id", "source"],
    )
    op.create_index("ix_stats_memberships_stay", "memberships", ["group_id", "member_id", "joined_at", "left_at"])
    op.create_index("ix_stats_memberships_left", "memberships", ["group_id", "left_at", "removed"])


def downgrade() -> None:
    op.drop_index("ix_stats_memberships_left", table_name="memberships")
    op.drop_index("ix_stats_memberships_stay", table_name="memberships")
    op.drop_index("ix_stats_memberships_joined", table_name="memberships")
