"""Bulk statements: many rows in one driver call, on rows that already hold driver values.

SQLAlchemy's per-row parameter processing (type decorators, dict keys) costs more than the
database's own work for small rows written by the thousand (the recorder's event log, the
check-in activity points): these statements skip it. `DriverValues` makes the values the
column types would have bound.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

# Bound parameters per statement: SQLite's default limit since 3.32 (999 before).
SQLITE_MAX_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_SQLITE_MAX_ROWS = 512  # sqlite3 keeps each prepared statement, and their size grows with the rows: see `chunks`


def _same(value: Any) -> Any:
    return value


def _utc_text(at: datetime) -> str:
    """`sqlite_utc_text` for a time already in UTC (callers convert first)."""
    return at.isoformat(" ", "microseconds")[:26]


def _from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DriverValues:
    """Times and days as the bulk statements' drivers take them, made once per value while
    building the rows: SQLite stores the fixed-width UTC text `UTCDateTime` writes (its order
    is time order, so the recorder's folded rows compare stamps directly); PostgreSQL takes
    the values as they are."""

    stamp: Callable[[datetime], Any]
    day: Callable[[date], Any]
    time: Callable[[Any], datetime]  # the inverse of `stamp`

    @classmethod
    def for_dialect(cls, dialect: str) -> DriverValues:
        if dialect == "postgresql":
            return cls(_same, _same, _same)
        return cls(_utc_text, date.isoformat, _from_utc_text)


class BulkStatement:
    """A bulk insert (optionally with ON CONFLICT) compiled once for the engine's dialect.

    SQLAlchemy's per-row parameter processing costs more than the database's own work for
    these small rows, so the statement runs as a plain driver call on rows that already hold
    driver values, as the column types would bind them (times and days through
    `DriverValues`, JSON as text):
    - SQLite: ``INSERT ... VALUES (?, ...), (?, ...), ...``, thousands of rows per statement.
      Not an executemany: that steps once per row and takes the GIL back after each step,
      which, while the event loop is busy, waits for a hand-over every time (`bot.app`);
      one statement releases the GIL once for all its rows, so the write runs beside the bot;
    - PostgreSQL: ``INSERT ... SELECT * FROM unnest($1::type[], ...)``, a single statement
      with one array per column (several times faster than an executemany).
    """

    def __init__(
        self,
        table: sa.Table,
        columns: Sequence[str],
        dialect: sa.Dialect,
        on_conflict: Callable[[Any], Any] | None = None,
    ) -> None:
        self.columns = tuple(columns)
        self._by_column = dialect.name == "postgresql"
        stmt: Any
        if self._by_column:
            arrays = [sa.bindparam(f"p_{c}", type_=postgresql.ARRAY(table.c[c].type)) for c in self.columns]
            rows = sa.func.unnest(*arrays).table_valued(*self.columns).render_derived()
            stmt = postgresql.insert(table).from_select(self.columns, sa.select(*(rows.c[c] for c in self.columns)))
            expected = [f"p_{c}" for c in self.columns]
        else:
            stmt = sqlite.insert(table)
            expected = list(self.columns)
        if on_conflict is not None:
            stmt = on_conflict(stmt)
        # column_keys: bind exactly these columns (the others, e.g. the id, take defaults).
        compiled = stmt.compile(dialect=dialect, column_keys=list(self.columns), for_executemany=not self._by_column)
        if list(compiled.positiontup or ()) != expected:
            raise ValueError(f"unexpected parameters {compiled.positiontup} for {table.name}")
        self.sql = str(compiled)
        if not self._by_column:
            one_row = "VALUES (" + ", ".join("?" * len(self.columns)) + ")"
            if self.sql.count(one_row) != 1:
                raise ValueError(f"cannot find the VALUES clause in {self.sql!r}")
            self._head, _, self._tail = self.sql.partition(one_row)
            self._row_marks = one_row.removeprefix("VALUES ")
            self._rows_per_statement = max(1, min(_SQLITE_MAX_ROWS, SQLITE_MAX_PARAMS // len(self.columns)))
            self._sql_by_rows: dict[int, str] = {}

    def params(self, rows: Sequence[Sequence[Any]]) -> list[Any] | tuple[list[Any], ...]:
        """Driver parameters from rows of driver values in column order: every value in one
        flat list, row after row (SQLite), or one list per column (PostgreSQL)."""
        if self._by_column:
            return tuple(list(values) for values in zip(*rows, strict=True))
        return list(chain.from_iterable(rows))

    def sql_for(self, rows: int) -> str:
        """The SQLite statement inserting `rows` rows at once (a full chunk or a power of two:
        see `chunks`), built once."""
        sql = self._sql_by_rows.get(rows)
        if sql is None:
            sql = self._sql_by_rows[rows] = f"{self._head}VALUES {', '.join([self._row_marks] * rows)}{self._tail}"
        return sql

    def chunks(self, rows: int) -> list[tuple[int, int]]:
        """(start, end) of each statement for `rows` rows: full-size chunks, then the rest in
        powers of two. sqlite3 keeps every distinct statement it prepared (per connection, up
        to 128), and one for a thousand rows holds megabytes: a remainder of a new size every
        batch made that cache grow with every batch; now there are at most a dozen sizes."""
        out: list[tuple[int, int]] = []
        step, start = self._rows_per_statement, 0
        while rows - start >= step:
            out.append((start, start + step))
            start += step
        while start < rows:
            size = 1 << ((rows - start).bit_length() - 1)
            out.append((start, start + size))
            start += size
        return out

    async def execute(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._by_column:
            await conn.exec_driver_sql(self.sql, self.params(rows))
            return
        for start, end in self.chunks(len(rows)):
            chunk = rows[start:end]
            await conn.exec_driver_sql(self.sql_for(len(chunk)), tuple(self.params(chunk)))
