"""Cluster hand-overs (DESIGN §6): an action for a group that another account is on duty in
(a relay line, a keyword invite) waits here until that account takes it.

Revision ID: 0006_cluster_handoff
Revises: 0005_cluster
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_cluster_handoff"
down_revision: str | Sequence[str] | None = "0005_cluster"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # One row per action handed over. `key` makes a hand-over idempotent; `id` orders the
    # actions of one group (taken and sent in id order); state: pending → taken → sent |
    # failed, or pending → expired when nobody on duty took it in time. Times are the
    # database's (now()).
    op.create_table(
        "cluster_handoff",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(), nullable=False, unique=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("from_account", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("taken_by", sa.String(), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
    )
    op.create_index("ix_cluster_handoff_pending", "cluster_handoff", ["state", "group_id", "id"])
    op.create_index("ix_cluster_handoff_created", "cluster_handoff", ["created_at"])


def downgrade() -> None:
    op.drop_table("cluster_handoff")
