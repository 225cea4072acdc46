"""The games' tables (migration: bot/storage/migrations/versions/0150_games.py).

Everything a game needs to survive a restart is here: a lottery's seed and entries (so the
draw can be re-derived and checked), poll votes, and open quiz / guess rounds with their
deadlines. Status values are plain strings: open → drawn / cancelled (lotteries),
open → closed / cancelled (polls), open → won / timeout / stopped (rounds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.storage.models import JSONType, UTCDateTime

OPEN = "open"


class Lottery(SQLModel, table=True):
    __tablename__ = "games_lotteries"
    __table_args__ = (sa.Index("ix_games_lotteries_group_status", "group_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    prize: str
    keyword: str
    winners: int
    max_participants: int | None = None  # draw as soon as this many joined
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The draw is random.Random(seed).sample(sorted member ids, winners): recorded at
    # creation so the result can be re-derived from this row and its entries.
    seed: int = Field(sa_type=sa.BigInteger)
    status: str = OPEN
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: str | None = None  # time | full | admin | cancelled
    closed_by: str | None = None
    winner_ids: list[str] | None = Field(default=None, sa_type=JSONType)


class LotteryEntry(SQLModel, table=True):
    __tablename__ = "games_lottery_entries"
    __table_args__ = (sa.UniqueConstraint("lottery_id", "member_id", name="uq_games_lottery_entries_member"),)

    id: int | None = Field(default=None, primary_key=True)
    lottery_id: int = Field(foreign_key="games_lotteries.id", index=True)
    member_id: str
    member_name: str = ""
    joined_at: datetime = Field(sa_type=UTCDateTime)


class Poll(SQLModel, table=True):
    __tablename__ = "games_polls"
    __table_args__ = (sa.Index("ix_games_polls_group_status", "group_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    title: str
    options: list[str] = Field(sa_type=JSONType)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: str = OPEN
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PollVote(SQLModel, table=True):
    __tablename__ = "games_poll_votes"
    __table_args__ = (sa.UniqueConstraint("poll_id", "member_id", name="uq_games_poll_votes_member"),)

    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="games_polls.id", index=True)
    member_id: str
    option: int  # 1-based, as members type it
    voted_at: datetime = Field(sa_type=UTCDateTime)


class Round(SQLModel, table=True):
    """One quiz question or one guess-the-number game."""

    __tablename__ = "games_rounds"
    __table_args__ = (sa.Index("ix_games_rounds_group_status", "group_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: str
    kind: str  # quiz | guess
    question: str  # quiz: the question; guess: "low-high"
    answers: list[str] = Field(sa_type=JSONType)
    hint: str | None = None
    number: int = 1  # quiz: the question's number in its session
    total: int = 1  # quiz: questions in the session
    extra: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # guess: narrowed range, tries
    status: str = OPEN
    started_by: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    winner_id: str | None = None
