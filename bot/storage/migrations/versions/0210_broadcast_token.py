"""Broadcast deliveries remember the duty token they were claimed under (several accounts):
a delivery claimed by an account that lost the group's duty before sending it is claimed
again by the account that took over (plugins/broadcast/store.py `reclaim`).

Revision ID: 0210_broadcast_token
Revises: 0200_broadcast
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0210_broadcast_token"
down_revision: str | Sequence[str] | None = "0200_broadcast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.add_column(sa.Column("token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcast_deliveries") as batch:
        batch.drop_column("token")
