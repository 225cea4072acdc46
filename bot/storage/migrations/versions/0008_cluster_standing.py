"""Cluster: each account's standing (send budget left, trouble), published with its lease, so
that every account computes the same preferred account per group (bot.cluster.balance).

Revision ID: 0008_cluster_standing
Revises: 0006_cluster_handoff
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_cluster_standing"
down_revision: str | Sequence[str] | None = "0006_cluster_handoff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cluster_accounts") as batch:
        batch.add_column(sa.Column("budget_left", sa.Integer(), nullable=True))  # messages it may still send this hour
        batch.add_column(sa.Column("budget", sa.Integer(), nullable=True))  # its outbox.per_hour
        batch.add_column(sa.Column("trouble", sa.String(), nullable=True))  # why it hands its duties over


def downgrade() -> None:
    with op.batch_alter_table("cluster_accounts") as batch:
        batch.drop_column("trouble")
        batch.drop_column("budget")
        batch.drop_column("budget_left")
