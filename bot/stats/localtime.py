"""Local calendar days, hours and weekdays in SQL, the same on SQLite and PostgreSQL.

Timestamps are stored in UTC. A report needs them as days of the configured timezone, in
the database (a GROUP BY over millions of rows must not come back to Python). SQLite has no
timezone database, so the zone's UTC offsets over the report's span are computed here once
(`offset_segments`) and written into the SQL as a constant or a short CASE over the DST
transitions; PostgreSQL gets the same arithmetic, so both engines give the same days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

_STEP = timedelta(hours=6)  # shorter than any gap between two transitions of a real zone


def _offset(tz: tzinfo, at: datetime) -> int:
    """The zone's UTC offset at the UTC instant `at`, in whole minutes."""
    off = at.astimezone(tz).utcoffset()
    assert off is not None
    return int(off.total_seconds() // 60)


def offset_segments(tz: tzinfo, lo: datetime, hi: datetime) -> list[tuple[datetime | None, int]]:
    """[(since, offset_minutes), ...] covering [lo, hi]: the first item has since=None (it
    also covers everything before lo); each later one starts at a transition instant (UTC)."""
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    segments: list[tuple[datetime | None, int]] = [(None, _offset(tz, lo))]
    at = lo
    while at < hi:
        nxt = min(at + _STEP, hi)
        if _offset(tz, nxt) != segments[-1][1]:
            # Bisect to the second at which the offset changes.
            a, b = at, nxt
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                if _offset(tz, mid) == segments[-1][1]:
                    a = mid
                else:
                    b = mid
            segments.append((b.replace(microsecond=0), _offset(tz, nxt)))
        at = nxt
    return segments


def utc_start(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which local day `day` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


@dataclass(frozen=True)
class LocalTime:
    """SQL expressions for local days of UTC timestamp columns, for one dialect, zone and
    span (instants outside the span use the nearest segment's offset)."""

    dialect: str
    segments: tuple[tuple[datetime | None, int], ...]

    @classmethod
    def build(cls, dialect: str, tz: tzinfo, lo: datetime, hi: datetime) -> LocalTime:
        # A margin so that leave times a little after the horizon still convert exactly.
        segs = offset_segments(tz, lo - timedelta(days=2), hi + timedelta(days=2))
        return cls(dialect, tuple(segs))

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def date_literal(self, day: date) -> str:
        """SQL text for a date constant (values computed by code, never user text)."""
        return f"'{day.isoformat()}'" if self.sqlite else f"DATE '{day.isoformat()}'"

    def instant_literal(self, at: datetime) -> str:
        """SQL text for a UTC instant, as `UTCDateTime` stores it on this dialect."""
        utc = at.astimezone(UTC)
        if self.sqlite:
            return f"'{utc.replace(tzinfo=None).isoformat(' ', 'microseconds')}'"
        return f"TIMESTAMPTZ '{utc.isoformat()}'"

    def _offset_expr(self, col: Any) -> Any:
        """The offset to add to `col`: SQLite modifier text ('+480 minutes') or PG interval."""

        def value(minutes: int) -> Any:
            if self.sqlite:
                return sa.literal_column(f"'{minutes:+d} minutes'")
            return sa.literal_column(f"interval '{minutes} minutes'")

        if len(self.segments) == 1:
            return value(self.segments[0][1])
        whens = []
        for (_, off), (nxt, _) in zip(self.segments, self.segments[1:], strict=False):
            assert nxt is not None  # only the first segment has no start
            whens.append((col < sa.literal_column(self.instant_literal(nxt)), value(off)))
        return sa.case(*whens, else_=value(self.segments[-1][1]))

    def _local_ts(self, col: Any) -> Any:
        """PostgreSQL: the local wall time (timestamp without zone) of a UTC column."""
        return sa.func.timezone("UTC", col) + self._offset_expr(col)

    def day(self, col: Any, plus: int = 0) -> Any:
        """The local calendar day of timestamp column `col`, plus `plus` days."""
        if self.sqlite:
            args = [col, self._offset_expr(col)]
            if plus:
                args.append(sa.literal_column(f"'{plus:+d} days'"))
            return sa.func.date(*args, type_=sa.String)
        expr = sa.cast(self._local_ts(col), sa.Date)
        return self.add_days(expr, plus) if plus else expr

    def add_days(self, day_expr: Any, days: int) -> Any:
        """A day expression (a date column or `day()`), `days` later."""
        if not days:
            return day_expr
        if self.sqlite:
            return sa.func.date(day_expr, sa.literal_column(f"'{days:+d} days'"), type_=sa.String)
        # Inline integer: `date + $1` is ambiguous to PostgreSQL's parameter inference.
        return sa.type_coerce(day_expr + sa.literal_column(str(int(days)), sa.Integer), sa.Date)

    def week(self, day_expr: Any) -> Any:
        """The Monday starting the ISO week of a day expression."""
        if self.sqlite:
            return sa.func.date(
                day_expr, sa.literal_column("'-6 days'"), sa.literal_column("'weekday 1'"), type_=sa.String
            )
        return sa.cast(sa.func.date_trunc("week", day_expr), sa.Date)

    def month(self, day_expr: Any) -> Any:
        """The first day of the month of a day expression."""
        if self.sqlite:
            return sa.func.date(day_expr, sa.literal_column("'start of month'"), type_=sa.String)
        return sa.cast(sa.func.date_trunc("month", day_expr), sa.Date)

    def weekday_hour(self, col: Any) -> tuple[Any, Any]:
        """(weekday 0=Sunday..6, hour 0..23) of a timestamp column, in local time."""
        if self.sqlite:
            off = self._offset_expr(col)
            return (
                sa.cast(sa.func.strftime("%w", col, off), sa.Integer),
                sa.cast(sa.func.strftime("%H", col, off), sa.Integer),
            )
        local = self._local_ts(col)
        return (
            sa.cast(sa.extract("dow", local), sa.Integer),
            sa.cast(sa.extract("hour", local), sa.Integer),
        )


def as_date(value: Any) -> date:
    """A day as the driver returns it (text on SQLite, date on PostgreSQL)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
