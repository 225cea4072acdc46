"""The event log's joins and leaves by group and member: what the event-based retention check
(`retention_from_events`) looks up per cohort entry. Partial, so chat messages, nearly every
row of the log, never touch it.

Revision ID: 0410_stats_event_stays
Revises: 0400_stats
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0410_stats_event_stays"
down_revision: str | Sequence[str] | None = "0400_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The queries repeat this condition word for word: SQLite uses a partial index only then.
STAYS = sa.text("type IN ('join', 'leave')")


def upgrade() -> None:
    op.create_index(
        "ix_stats_event_log_stays",
        "event_log",
        ["group_id", "member_id", "at"],
        sqlite_where=STAYS,
        postgresql_where=STAYS,
    )


def downgrade() -> None:
    op.drop_index("ix_stats_event_log_stays", table_name="event_log")
