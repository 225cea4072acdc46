"""Events the account on duty in a group took for handling (DESIGN §6; bot/cluster/catchup.py).

When the account on duty dies, the account that takes its groups over answers what arrived in
the meantime, except what the dead one had taken: the rows here. One row per (group, event
key); rows are deleted once no account would replay their event any more.

Revision ID: 0009_cluster_handled
Revises: 0006_cluster_handoff
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_cluster_handled"
down_revision: str | Sequence[str] | None = "0008_cluster_standing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cluster_handled",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("cluster_handled")
