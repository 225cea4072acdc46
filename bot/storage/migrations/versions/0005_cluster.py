"""Cluster coordination (DESIGN §6): account leases, group memberships and per-group duty leases.

Used only when several accounts share one PostgreSQL (`cluster.enabled`); on SQLite the tables
exist and stay empty. Every time in these rows comes from the database's clock (now()), never
from a process, so clock skew between machines cannot make a lease look longer or shorter.

Revision ID: 0005_cluster
Revises: 0001_core
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_cluster"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("cluster",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # One row per bot account: which process (instance) serves it, until when.
    op.create_table(
        "cluster_accounts",
        sa.Column("account_id", sa.String(), primary_key=True),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    # Which accounts are in which group (who may take the duty there, and whether a pinned
    # account can serve it).
    op.create_table(
        "cluster_members",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("account_id", sa.String(), primary_key=True),
        sa.Column("seen_at", TS, nullable=False),
    )
    # One row per group: the account on duty, its fencing token (+1 on every takeover), until when.
    op.create_table(
        "cluster_duty",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_duty")
    op.drop_table("cluster_members")
    op.drop_table("cluster_accounts")
