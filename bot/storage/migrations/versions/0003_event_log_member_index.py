"""Drop the event log's per-member index.

Senders take turns, so every message landed at a random place in it. On SQLite, bulk inserts
of the same rows ran at 16,000–19,000 rows/s with it and 47,000–52,000 without (dev VM). It
served one reader: the retention check that recomputes cohorts from raw events (bot/stats),
which now reads messages by group and time, and looks joins and leaves up in a narrow index
of its own (revision 0410_stats_event_stays).

Revision ID: 0003_event_log_member_index
Revises: 0001_core
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_event_log_member_index"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("core_event_log",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_log_member_at", table_name="event_log")


def downgrade() -> None:
    op.create_index("ix_event_log_member_at", "event_log", ["member_id", "at"])
