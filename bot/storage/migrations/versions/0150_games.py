"""群活互动 (plugins/games): lotteries and their entries, polls and votes, quiz / guess rounds.

Revision ID: 0150_games
Revises: 0002_points
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0150_games"
down_revision: str | Sequence[str] | None = "0002_points"
branch_labels: str | Sequence[str] | None = ("games",)
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types: a migration must not change when the models do.
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "games_lotteries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("prize", sa.String(), nullable=False),
        sa.Column("keyword", sa.String(), nullable=False),
        sa.Column("winners", sa.Integer(), nullable=False),
        sa.Column("max_participants", sa.Integer(), nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.String(), nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.Column("winner_ids", JSON, nullable=True),
    )
    op.create_index("ix_games_lotteries_group_status", "games_lotteries", ["group_id", "status"])
    op.create_table(
        "games_lottery_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lottery_id", sa.Integer(), sa.ForeignKey("games_lotteries.id"), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.UniqueConstraint("lottery_id", "member_id", name="uq_games_lottery_entries_member"),
    )
    op.create_index("ix_games_lottery_entries_lottery_id", "games_lottery_entries", ["lottery_id"])
    op.create_table(
        "games_polls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
    )
    op.create_index("ix_games_polls_group_status", "games_polls", ["group_id", "status"])
    op.create_table(
        "games_poll_votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer(), sa.ForeignKey("games_polls.id"), nullable=False),
        sa.Column("member_id", sa.String(), nullable=False),
        sa.Column("option", sa.Integer(), nullable=False),
        sa.Column("voted_at", TS, nullable=False),
        sa.UniqueConstraint("poll_id", "member_id", name="uq_games_poll_votes_member"),
    )
    op.create_index("ix_games_poll_votes_poll_id", "games_poll_votes", ["poll_id"])
    op.create_table(
        "games_rounds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column("hint", sa.String(), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("extra", JSON, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("winner_id", sa.String(), nullable=True),
    )
    op.create_index("ix_games_rounds_group_status", "games_rounds", ["group_id", "status"])


def downgrade() -> None:
    op.drop_table("games_rounds")
    op.drop_table("games_poll_votes")
    op.drop_table("games_polls")
    op.drop_table("games_lottery_entries")
    op.drop_table("games_lotteries")
