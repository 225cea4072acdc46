"""What a report covers: which groups (one, a set, all) and which local days."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

import sqlalchemy as sa

from bot.stats.localtime import utc_start
from bot.storage.db import Database
from bot.storage.models import Group, table_of

# (done, total): called as a report works through chunks of groups, for progress bars.
ProgressFn = Callable[[int, int], None]

# Groups per query: keeps every statement an index seek per group and gives progress steps.
CHUNK = 100


@dataclass(frozen=True)
class Scope:
    """Groups a report covers. `groups=None` means every group the bot has recorded.

    Counts are per membership: a person in two groups of the scope counts in each."""

    groups: tuple[str, ...] | None = None
    label: str = "全部群"
    # Accounts never counted as members (the bot itself, other bots).
    exclude_members: tuple[str, ...] = field(default=())

    @classmethod
    def one(cls, group_id: str, label: str = "", exclude: Sequence[str] = ()) -> Scope:
        return cls((group_id,), label or group_id, tuple(exclude))

    @classmethod
    def many(cls, group_ids: Sequence[str], label: str, exclude: Sequence[str] = ()) -> Scope:
        return cls(tuple(dict.fromkeys(group_ids)), label, tuple(exclude))

    async def group_ids(self, db: Database) -> list[str]:
        if self.groups is not None:
            return list(self.groups)
        async with db.engine.connect() as conn:
            rows = await conn.execute(sa.select(table_of(Group).c.id).order_by(table_of(Group).c.id))
            return [r[0] for r in rows]

    def as_json(self) -> dict[str, object]:
        return {"label": self.label, "groups": list(self.groups) if self.groups is not None else "all"}


@dataclass(frozen=True)
class Period:
    """Local calendar days `start`..`end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def last(cls, days: int, end: date) -> Period:
        """The `days` days ending with `end`."""
        if days < 1:
            raise ValueError("a period has at least one day")
        return cls(end - timedelta(days=days - 1), end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> Iterator[date]:
        for i in range(self.days):
            yield self.start + timedelta(days=i)

    def utc_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[start, end) as UTC instants: midnight of `start` to midnight after `end`."""
        return utc_start(self.start, tz), utc_start(self.end + timedelta(days=1), tz)

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def chunks(ids: Sequence[str], size: int = CHUNK) -> Iterator[list[str]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def n_chunks(ids: Sequence[str], size: int = CHUNK) -> int:
    return -(-len(ids) // size)


class Progress:
    """Counts chunks done for an optional callback."""

    def __init__(self, total: int, fn: ProgressFn | None) -> None:
        self.total, self.done, self.fn = total, 0, fn
        if fn is not None:
            fn(0, total)

    def step(self) -> None:
        self.done += 1
        if self.fn is not None:
            self.fn(self.done, self.total)
