"""Anti-spam audit, strikes and bans (plugins/antispam/models.py).

Revision ID: 0300_antispam
Revises: 0001_core
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0300_antispam"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("antispam",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "antispam_decisions",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("rules", sa.String(), nullable=False, server_default=""),
        sa.Column("checks", JSON, nullable=True),
        sa.Column("strikes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("by", sa.String(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
    )
    op.create_index("ix_antispam_decisions_group_at", "antispam_decisions", ["group_id", "at"])
    op.create_index("ix_antispam_decisions_member_at", "antispam_decisions", ["member_id", "at"])
    op.create_table(
        "antispam_strikes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("rules", sa.String(), nullable=False, server_default=""),
        sa.Column("decision_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_antispam_strikes_member", "antispam_strikes", ["group_id", "member_id", "at"])
    op.create_table(
        "antispam_bans",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False, server_default=""),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("everywhere", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("at", TS, nullable=False),
        sa.Column("rules", sa.String(), nullable=False, server_default=""),
        sa.Column("decision_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("uq_antispam_bans_member_group", "antispam_bans", ["member_id", "group_id"], unique=True)


def downgrade() -> None:
    op.drop_table("antispam_bans")
    op.drop_table("antispam_strikes")
    op.drop_table("antispam_decisions")
