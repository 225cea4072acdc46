"""Anti-spam samples taught by admins in chat (plugins/antispam/models.py: AntispamSample).

Revision ID: 0310_antispam_samples
Revises: 0300_antispam
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0310_antispam_samples"
down_revision: str | Sequence[str] | None = "0300_antispam"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "antispam_samples",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False, server_default="text"),
        sa.Column("group_id", sa.String(), nullable=False, server_default=""),
        sa.Column("member_id", sa.String(), nullable=False, server_default=""),
        sa.Column("member_name", sa.String(), nullable=False, server_default=""),
        sa.Column("by", sa.String(), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(), nullable=True),
    )
    op.create_index("ix_antispam_samples_at", "antispam_samples", ["at"])


def downgrade() -> None:
    op.drop_table("antispam_samples")
