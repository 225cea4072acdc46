"""Memberships of people who were in a group before the bot: `joined_at` may be NULL (join
time unknown), and `known_from` says where the bot's record of each stay begins (the join
time when the join was seen, else when the bot first found the member present). Existing
stays were all seen joining: their `known_from` is their `joined_at`.

SQLite cannot drop NOT NULL in place: the table is rebuilt, and whatever indexes it had
(including other branches' indexes on it, e.g. the statistics ones) are created again from
their own SQL.

Revision ID: 0004_membership_known_from
Revises: 0001_core
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_membership_known_from"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("core_memberships",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)  # what UTCDateTime is in the database
_COLUMNS = "id, group_id, member_id, joined_at, known_from, left_at, inviter_id, source, removed"


def _create_indexes() -> None:
    op.create_index("ix_memberships_known", "memberships", ["group_id", "known_from", "left_at"])
    op.create_index("ix_memberships_member_known", "memberships", ["group_id", "member_id", "known_from", "left_at"])


def _rebuild_sqlite(joined_nullable: bool, copy_columns: str) -> None:
    bind = op.get_bind()
    index_sql = [
        row[0]
        for row in bind.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'memberships' "
                "AND sql IS NOT NULL AND name NOT IN ('ix_memberships_known', 'ix_memberships_member_known')"
            )
        )
    ]
    columns = [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("group_id", sa.String(), sa.ForeignKey("groups.id"), nullable=False),
        sa.Column("member_id", sa.String(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("joined_at", TS, nullable=joined_nullable),
    ]
    if joined_nullable:
        columns.append(sa.Column("known_from", TS, nullable=False))
    columns += [
        sa.Column("left_at", TS, nullable=True),
        sa.Column("inviter_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
    ]
    op.create_table("memberships_rebuilt", *columns)
    target = _COLUMNS if joined_nullable else _COLUMNS.replace(" known_from,", "")
    op.execute(f"INSERT INTO memberships_rebuilt ({target}) SELECT {copy_columns} FROM memberships")
    op.drop_table("memberships")
    op.rename_table("memberships_rebuilt", "memberships")
    for sql in index_sql:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(True, _COLUMNS.replace("known_from", "joined_at"))
    else:
        op.add_column("memberships", sa.Column("known_from", TS, nullable=True))
        op.execute("UPDATE memberships SET known_from = joined_at")
        op.alter_column("memberships", "known_from", nullable=False)
        op.alter_column("memberships", "joined_at", nullable=True)
    _create_indexes()


def downgrade() -> None:
    op.drop_index("ix_memberships_member_known", table_name="memberships")
    op.drop_index("ix_memberships_known", table_name="memberships")
    if op.get_bind().dialect.name == "sqlite":
        # A stay of unknown start keeps the time the bot first saw it.
        copy = _COLUMNS.replace("joined_at, known_from", "COALESCE(joined_at, known_from)")
        _rebuild_sqlite(False, copy)
    else:
        op.execute("UPDATE memberships SET joined_at = known_from WHERE joined_at IS NULL")
        op.alter_column("memberships", "joined_at", nullable=False)
        op.drop_column("memberships", "known_from")
