"""A platform message is logged once per group: a unique key on (group, platform message id)
for chat messages whose id is known.

Several accounts in one group (several `qunbot run` sharing one PostgreSQL) each record every
message, and a reconnect may deliver one again: the recorder now inserts with ON CONFLICT DO
NOTHING, and only the insert that won counts the message in the daily rollup. Rows logged
twice before this revision are removed first (the earliest row of each is kept), so that the
key can be made. The daily rollup of those past days is left as it is: recounting it needs
the business time zone, which is configuration, not schema.

Revision ID: 0007_event_log_message_key
Revises: 0003_event_log_member_index
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_event_log_message_key"
down_revision: str | Sequence[str] | None = "0003_event_log_member_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYED = "type = 'message' AND message_id IS NOT NULL"


def upgrade() -> None:
    # Window functions: SQLite 3.25+ and PostgreSQL; one pass, whatever the table's size.
    op.execute(
        "DELETE FROM event_log WHERE id IN ("
        " SELECT id FROM ("
        "  SELECT id, row_number() OVER (PARTITION BY group_id, message_id ORDER BY id) AS n"
        f"  FROM event_log WHERE {_KEYED}"
        " ) AS numbered WHERE n > 1"
        ")"
    )
    op.create_index(
        "uq_event_log_group_message",
        "event_log",
        ["group_id", "message_id"],
        unique=True,
        sqlite_where=sa.text(_KEYED),
        postgresql_where=sa.text(_KEYED),
    )


def downgrade() -> None:
    op.drop_index("uq_event_log_group_message", table_name="event_log")
