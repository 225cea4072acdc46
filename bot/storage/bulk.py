"""Bulk statements: many rows in one driver call, on rows that already hold driver values.

SQLAlchemy's per-row parameter processing (type decorators, dict keys) costs more than the
database's own work for small rows written by the thousand (the recorder's event log, the
check-in activity points): these statements skip it. `DriverValues` makes the values the
column types would have bound.
"""

from __future__ import annotations

import contextlib
import json
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
_JSON_ROWS = 5_000  # rows per statement when they travel as one JSON text (bounds that text: about a megabyte)


def _sqlite_has_json() -> bool:
    """Whether the SQLite that sqlite3 links has the JSON functions (built in since 3.38,
    and enabled by nearly every build before)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute("SELECT value FROM json_each('[1]')")
        except sqlite3.OperationalError:
            return False
    return True


SQLITE_JSON = _sqlite_has_json()


def json_rows(rows: Sequence[Sequence[Any]]) -> str:
    """Rows of driver values (text, numbers, None) as one JSON array of arrays: the single
    parameter of a statement that reads them with `json_each` (`sqlite_json_columns`)."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), check_circular=False)


def sqlite_json_columns(width: int) -> str:
    """The `width` columns of a `json_each` row holding one array of `json_rows`."""
    return ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))


def sqlite_json_table(*names: str) -> str:
    """The rows of a `json_rows` parameter as a table with these column names, to join on.
    A subquery, so that `json_each`'s own columns (`key`, `type`, `id` …) cannot be taken
    for the other table's."""
    columns = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
    return f"(SELECT {columns} FROM json_each(?))"


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
    - SQLite: ``INSERT ... SELECT ... FROM json_each(?)``, every row in one JSON text (up to
      `_JSON_ROWS` a statement). Not an executemany: that steps once per row and takes the GIL
      back after each step, which, while the event loop is busy, waits for a hand-over every
      time (`bot.app`); one statement releases the GIL once for all its rows, so the write
      runs beside the bot. Not multi-row VALUES either (``VALUES (?, ...), (?, ...)``, the
      fallback where SQLite lacks JSON): sqlite3 keeps every such statement it prepared, so
      they held 512 rows at most, and the pipeline bench's 100,000 messages took some 850
      statements, 3,100 round trips to the database thread, each waiting for the busy event
      loop's next turn: the recorder ended the burst 35,000-57,000 events behind. With JSON,
      160 statements and 1,000 round trips, and it ends 300-10,000 behind;
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
            # `WHERE true`: SQLite's grammar needs it between a SELECT and an ON CONFLICT.
            select = f"SELECT {sqlite_json_columns(len(self.columns))} FROM json_each(?) WHERE true"
            self._json_sql = f"{self._head}{select}{self._tail}"
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
        if SQLITE_JSON:
            for start in range(0, len(rows), _JSON_ROWS):
                await conn.exec_driver_sql(self._json_sql, (json_rows(rows[start : start + _JSON_ROWS]),))
            return
        for start, end in self.chunks(len(rows)):
            chunk = rows[start:end]
            await conn.exec_driver_sql(self.sql_for(len(chunk)), tuple(self.params(chunk)))
