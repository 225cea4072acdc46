"""The thanks_given table (qunbot_thanks/models.py).

Revision ID: thanks_0001
Revises: 0001_core
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision ids start with the plugin's name, so they never collide with qunbot's (NNNN_name)
# or another plugin's.
revision: str = "thanks_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("thanks",)
depends_on: str | Sequence[str] | None = None

# The column type written out: a migration must not change when the models do.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "thanks_given",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("giver_id", sa.String(), nullable=False),
        sa.Column("receiver_id", sa.String(), nullable=False),
    )
    op.create_index("ix_thanks_given_group_receiver", "thanks_given", ["group_id", "receiver_id"])


def downgrade() -> None:
    op.drop_index("ix_thanks_given_group_receiver", table_name="thanks_given")
    op.drop_table("thanks_given")
