"""Retention by join cohort, from the membership stays and the daily activity rollup.

Definitions (also in the README, "Statistics"):

- Cohorts are observed joins only: a member who was in a group before the bot (a stay of
  unknown join time, `joined_at` NULL) is in no cohort.
- A cohort entry is a member's first join of a group within the report's period (a rejoin
  in the same period does not make a second entry; a rejoin after leaving before the period
  does). Its join day d0 is the local calendar day of that join.
- "In group on day N": a member of the group at the end of local day d0+N — by this stay or
  by a later rejoin.
- "Active on day N": posted at least one message in the group during the `window` days
  d0+N .. d0+N+window-1 (window=1: exactly on day N).
- A value is only measured once the days it needs are complete (before the horizon, the
  last complete local day at `as_of`); the share is over the entries measured so far.

`retention_from_events` computes the same report from the raw event log (join, leave and
message events) — the slow reference the rollup-based report is checked and benchmarked
against.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal

import sqlalchemy as sa

from bot.stats.localtime import LocalTime, as_date, local_day, utc_start
from bot.stats.scope import Period, Progress, ProgressFn, Scope, chunks, n_chunks
from bot.stats.table import Table, pct
from bot.storage.db import Database
from bot.storage.models import DailyActivity, EventLog, EventType, Membership, UTCDateTime

CohortBy = Literal["day", "week", "source", "inviter"]
COHORT_BY: tuple[str, ...] = ("day", "week", "source", "inviter")
DEFAULT_DAYS = (1, 7, 30)
DEFAULT_WINDOW = 7
# Cohort keys for joins without a recorded source.
INVITED = "invited"  # added by a member (inviter known), no source recorded
UNKNOWN = "unknown"  # no inviter, no source (e.g. joined by QR code or before recording)
NO_INVITER = "-"
# Bounds are bind parameters, ~20 per join day: stay far below the drivers' limits.
MAX_PERIOD_DAYS = 1500
# Connections a report uses at once, and groups per query.
PARALLEL = 4
RETENTION_CHUNK = 50

_M = Membership.__table__
# Where a chunk's group ids go in the compiled SQL (see `_compiled`).
_CHUNK_MARK = "(/*chunk*/NULL)"
_CHUNK = sa.literal_column(_CHUNK_MARK)
_DA = DailyActivity.__table__
_LOG = EventLog.__table__


@dataclass
class Cell:
    """One retention figure: of `measured` entries old enough to tell, `count` qualified."""

    measured: int = 0
    count: int = 0

    @property
    def share(self) -> float | None:
        return self.count / self.measured if self.measured else None

    def as_json(self) -> dict[str, Any]:
        share = self.share
        return {"measured": self.measured, "count": self.count, "share": None if share is None else round(share, 4)}


@dataclass
class CohortRow:
    key: str  # ISO date (day / week cohorts), a source, or an inviter id
    size: int = 0
    in_group: dict[int, Cell] = field(default_factory=dict)
    active: dict[int, Cell] = field(default_factory=dict)

    def add(self, other: CohortRow) -> None:
        self.size += other.size
        for mine, theirs in ((self.in_group, other.in_group), (self.active, other.active)):
            for n, cell in theirs.items():
                c = mine.setdefault(n, Cell())
                c.measured += cell.measured
                c.count += cell.count

    def as_json(self) -> dict[str, Any]:
        return {
            "cohort": self.key,
            "size": self.size,
            "in_group": {str(n): c.as_json() for n, c in sorted(self.in_group.items())},
            "active": {str(n): c.as_json() for n, c in sorted(self.active.items())},
        }


@dataclass
class RetentionReport:
    scope: Scope
    period: Period
    by: str
    days: tuple[int, ...]
    window: int
    horizon: date  # the last complete local day the figures could see
    rows: list[CohortRow]
    total: CohortRow
    labels: dict[str, str] = field(default_factory=dict)  # inviter id → name, for display

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "retention",
            # Members from before the bot have no join time: they are in no cohort.
            "cohorts_of": "observed joins",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "by": self.by,
            "days": list(self.days),
            "window": self.window,
            "horizon": self.horizon.isoformat(),
            "cohorts": [r.as_json() for r in self.rows],
            "total": self.total.as_json(),
        }

    def table(self) -> Table:
        cols = ["cohort", "size"]
        cols += [f"in d{n}" for n in self.days]
        cols += [f"active d{n}" for n in self.days]
        title = f"retention by {self.by} — {self.scope.label}, {self.period.start}..{self.period.end}"
        t = Table(title, cols)
        for row in [*self.rows, self.total]:
            key = self.labels.get(row.key, row.key) if row is not self.total else "total"
            t.rows.append(
                [key, row.size]
                + [_cell(row.in_group.get(n)) for n in self.days]
                + [_cell(row.active.get(n)) for n in self.days]
            )
        t.notes.append(
            f"in dN: still a member at the end of day N after joining; active dN: posted during days "
            f"N..N+{self.window - 1}; '-' = not measurable yet (data up to {self.horizon})"
        )
        t.notes.append(
            "cohorts are the joins the bot saw: members who were in a group before the bot (join time "
            "unknown) belong to no cohort"
        )
        return t

    def as_rows(self) -> list[dict[str, Any]]:
        """Flat rows for CSV: one per cohort (and the total), with counts and shares."""
        out = []
        for row in [*self.rows, self.total]:
            flat: dict[str, Any] = {"cohort": row.key if row is not self.total else "total", "size": row.size}
            for kind, cells in (("in_group", row.in_group), ("active", row.active)):
                for n in self.days:
                    c = cells.get(n, Cell())
                    flat[f"{kind}_d{n}_measured"] = c.measured
                    flat[f"{kind}_d{n}_count"] = c.count
                    flat[f"{kind}_d{n}_share"] = None if c.share is None else round(c.share, 4)
            out.append(flat)
        return out


def _cell(cell: Cell | None) -> str:
    if cell is None or not cell.measured:
        return "-"
    return f"{pct(cell.share)} {cell.count}/{cell.measured}"


# --- the SQL -------------------------------------------------------------------------------
#
# Per cohort entry the work must be a few index seeks and no date arithmetic: SQLite parses
# a date string at every date() call. So every bound an entry needs is computed here, in
# Python, once per local join day (a VALUES table `bounds`, joined on the join day): the UTC
# instant each "end of day N" falls on, the day range of each activity window, and whether
# each figure is measurable yet. One correlated look-up per entry then answers
# all N at once as a bit mask (bit i for days[i]), and the masks are summed per cohort.


@dataclass(frozen=True)
class _Plan:
    lt: LocalTime
    tz: tzinfo
    days: tuple[int, ...]
    window: int
    horizon: date
    by: str

    def bit(self, i: int) -> int:
        return 1 << i

    @property
    def all_bits(self) -> int:
        return (1 << len(self.days)) - 1


@functools.lru_cache(maxsize=32)
def _bounds(plan: _Plan, period: Period) -> Any:
    """The VALUES table of per-join-day bounds (see above). Written as plain `VALUES`
    selected by position (column1...), which SQLite and PostgreSQL both accept, with the
    values inlined as literals: they are dates and instants computed here, and thousands of
    bind parameters would cost more to process than the query takes to run."""
    lit_date, lit_ts = plan.lt.date_literal, plan.lt.instant_literal
    cols: list[tuple[str, Any]] = [
        ("d0", sa.Date()),
        ("wk", sa.Date()),
        ("due_in", sa.Integer()),
        ("due_act", sa.Integer()),
    ]
    for i, _ in enumerate(plan.days):
        cols += [(f"end{i}", UTCDateTime()), (f"lo{i}", sa.Date()), (f"hi{i}", sa.Date())]
    cols += [("lo_all", sa.Date()), ("hi_all", sa.Date())]
    tz, w = plan.tz, plan.window
    tuples = []
    for d0 in period.each_day():
        due_in = due_act = 0
        for i, n in enumerate(plan.days):
            if d0 + timedelta(days=n) <= plan.horizon:
                due_in |= plan.bit(i)
            if d0 + timedelta(days=n + w - 1) <= plan.horizon:
                due_act |= plan.bit(i)
        values = [lit_date(d0), lit_date(d0 - timedelta(days=d0.weekday())), str(due_in), str(due_act)]
        for n in plan.days:
            lo, hi = d0 + timedelta(days=n), d0 + timedelta(days=n + w - 1)
            values += [lit_ts(utc_start(lo + timedelta(days=1), tz)), lit_date(lo), lit_date(hi)]
        # Activity is only looked at up to the last window that is due: what is not due yet
        # is never counted, and recent cohorts skip most of their look-ups.
        due_days = [n for i, n in enumerate(plan.days) if due_act & plan.bit(i)]
        first = d0 + timedelta(days=min(plan.days))
        last = d0 + timedelta(days=max(due_days) + w - 1) if due_days else first - timedelta(days=1)
        values += [lit_date(first), lit_date(last)]
        tuples.append(f"({', '.join(values)})")
    select_list = ", ".join(f"column{j + 1} AS {name}" for j, (name, _) in enumerate(cols))
    text = sa.text(f"SELECT {select_list} FROM (VALUES {', '.join(tuples)}) AS v")
    return text.columns(*(sa.column(name, type_) for name, type_ in cols)).cte("bounds")


def _key(by: str, x: Any, b: Any) -> Any:
    if by == "day":
        return b.d0
    if by == "week":
        return b.wk
    if by == "source":
        return sa.func.coalesce(
            x.source, sa.case((x.inviter_id.is_not(None), sa.literal(INVITED)), else_=sa.literal(UNKNOWN))
        )
    return sa.func.coalesce(x.inviter_id, sa.literal(NO_INVITER))


def _mask(plan: _Plan, flags: Sequence[Any]) -> Any:
    """Bit i set where flags[i] holds (each flag a boolean SQL expression)."""
    terms = [sa.func.max(sa.case((f, plan.bit(i)), else_=0)) for i, f in enumerate(flags)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return sa.func.coalesce(total, 0)


def _summed(scored: Any) -> Any:
    """Entries counted per cohort and combination of masks: a few rows per cohort, which
    `_rows` turns into the table (cheaper than a dozen conditional sums per entry)."""
    x = scored.c
    return sa.select(x.k, x.due_in, x.due_act, x.in_mask, x.act_mask, sa.func.count()).group_by(
        x.k, x.due_in, x.due_act, x.in_mask, x.act_mask
    )


def _from_rollups(plan: _Plan, b: Any, scope: Scope, period: Period) -> Any:
    lt, tz = plan.lt, plan.tz
    start, end = period.utc_bounds(tz)
    e, p = _M.alias("e"), _M.alias("p")
    since = sa.literal_column(lt.instant_literal(start))
    earlier_in_period = sa.exists().where(
        p.c.group_id == e.c.group_id,
        p.c.member_id == e.c.member_id,
        p.c.joined_at >= since,
        # Two stays of one member cannot start at the same instant: no tie-break needed
        # (and without `id` the look-up stays inside the covering index).
        p.c.joined_at < e.c.joined_at,
    )
    until = sa.literal_column(lt.instant_literal(end))
    where = [e.c.group_id.op("IN")(_CHUNK), e.c.joined_at >= since, e.c.joined_at < until, ~earlier_in_period]
    if scope.exclude_members:
        where.append(e.c.member_id.not_in(scope.exclude_members))
    entries = (
        sa.select(
            e.c.group_id,
            e.c.member_id,
            e.c.joined_at,
            e.c.left_at,
            e.c.source,
            e.c.inviter_id,
            lt.day(e.c.joined_at).label("d0"),
        )
        .where(*where)
        .cte("entries")
        .prefix_with("MATERIALIZED")
    )
    x, bc = entries.c, b.c
    ends = [getattr(bc, f"end{i}") for i in range(len(plan.days))]
    # In the group at the end of day N by this stay ...
    own = sa.case(
        (x.left_at.is_(None), plan.all_bits),
        else_=sum(
            (sa.case((x.left_at >= end, plan.bit(i)), else_=0) for i, end in enumerate(ends)), start=sa.literal(0)
        ),
    )
    # ... or by a later one (looked up for leavers only).
    s = _M.alias("s")
    later = (
        sa.select(
            _mask(
                plan,
                [sa.and_(s.c.known_from < end, sa.or_(s.c.left_at.is_(None), s.c.left_at >= end)) for end in ends],
            )
        )
        # A later stay may be one the bot found (no join seen): it starts at `known_from`.
        .where(s.c.group_id == x.group_id, s.c.member_id == x.member_id, s.c.known_from > x.joined_at)
        .scalar_subquery()
    )
    in_mask = own.op("|")(sa.case((sa.or_(x.left_at.is_(None), bc.due_in == 0), 0), else_=later))
    a = _DA.alias("a")
    posted = (
        sa.select(
            _mask(
                plan,
                [
                    sa.and_(a.c.day >= getattr(bc, f"lo{i}"), a.c.day <= getattr(bc, f"hi{i}"))
                    for i in range(len(plan.days))
                ],
            )
        )
        .where(a.c.group_id == x.group_id, a.c.member_id == x.member_id, a.c.day >= bc.lo_all, a.c.day <= bc.hi_all)
        .scalar_subquery()
    )
    act_mask = sa.case((bc.due_act == 0, 0), else_=posted)
    scored = (
        sa.select(
            _key(plan.by, x, bc).label("k"), bc.due_in, bc.due_act, in_mask.label("in_mask"), act_mask.label("act_mask")
        )
        .select_from(entries.join(b, bc.d0 == x.d0))
        .cte("scored")
        .prefix_with("MATERIALIZED")
    )
    return _summed(scored)


def _json_field(dialect: str, col: Any, key: str) -> Any:
    if dialect == "postgresql":
        return col.op("->>")(sa.literal_column(f"'{key}'"))
    return sa.func.json_extract(col, f"$.{key}")


def _from_events(plan: _Plan, b: Any, scope: Scope, period: Period) -> Any:
    """The same entries and masks from join, leave and message events only.

    The log has no index by member (one would take every message at a random place and make
    writing the log several times dearer), so nothing here looks messages up per member. Joins
    and leaves, a small part of the log, have a partial index, looked up per entry (each
    condition on `type` repeats the index's own, which SQLite needs to use it). The chunk's
    messages are read once, by group and time, put beside the entries (`UNION ALL`) and
    sorted by member with a window function, which hands each member's messages the entry's
    join day: their local days then give the activity bits. Bits of windows that are not due
    yet are ignored when the rows are counted, as in `_from_rollups`."""
    lt, tz = plan.lt, plan.tz
    start, end = period.utc_bounds(tz)
    stays = (EventType.JOIN, EventType.LEAVE)
    e, p = _LOG.alias("e"), _LOG.alias("p")
    since = sa.literal_column(lt.instant_literal(start))
    earlier_in_period = sa.exists().where(
        p.c.group_id == e.c.group_id,
        p.c.member_id == e.c.member_id,
        p.c.type.in_(stays),
        p.c.type == EventType.JOIN,
        p.c.at >= since,
        sa.or_(p.c.at < e.c.at, sa.and_(p.c.at == e.c.at, p.c.id < e.c.id)),
    )
    where = [
        e.c.group_id.op("IN")(_CHUNK),
        e.c.type.in_(stays),
        e.c.type == EventType.JOIN,
        e.c.at >= since,
        e.c.at < sa.literal_column(lt.instant_literal(end)),
        ~earlier_in_period,
    ]
    if scope.exclude_members:
        where.append(e.c.member_id.not_in(scope.exclude_members))
    joins = sa.select(
        e.c.group_id,
        e.c.member_id,
        lt.day(e.c.at).label("d0"),
        e.c.at.label("joined_at"),
        _json_field(lt.dialect, e.c.meta, "source").label("source"),
        _json_field(lt.dialect, e.c.meta, "inviter").label("inviter_id"),
        sa.null().label("day"),
    ).where(*where)
    # Messages from the first day any window starts to the last complete day any can end.
    w, last_day = plan.window, min(period.end + timedelta(days=max(plan.days) + plan.window - 1), plan.horizon)
    lo = utc_start(period.start + timedelta(days=min(plan.days)), tz)
    hi = max(lo, utc_start(last_day + timedelta(days=1), tz))
    mt = LocalTime.build(lt.dialect, tz, lo, hi)  # a span of its own: it reaches past the period
    m = _LOG.alias("m")
    messages = sa.select(m.c.group_id, m.c.member_id, sa.null(), sa.null(), sa.null(), sa.null(), mt.day(m.c.at)).where(
        m.c.group_id.op("IN")(_CHUNK),
        m.c.type == EventType.MESSAGE,
        m.c.at >= sa.literal_column(lt.instant_literal(lo)),
        m.c.at < sa.literal_column(lt.instant_literal(hi)),
    )
    stream = sa.union_all(joins, messages).cte("stream")
    s = stream.c
    tagged = sa.select(
        s.group_id,
        s.member_id,
        s.joined_at,
        s.source,
        s.inviter_id,
        s.day,
        sa.func.max(s.d0).over(partition_by=(s.group_id, s.member_id)).label("d0"),
    ).cte("tagged")
    t = tagged.c
    posted = [sa.and_(t.day >= lt.add_days(t.d0, n), t.day <= lt.add_days(t.d0, n + w - 1)) for n in plan.days]
    entries = (
        sa.select(
            t.group_id,
            t.member_id,
            sa.func.max(t.d0).label("d0"),
            sa.func.max(t.joined_at).label("joined_at"),
            sa.func.max(t.source).label("source"),
            sa.func.max(t.inviter_id).label("inviter_id"),
            _mask(plan, posted).label("posted"),
        )
        .where(t.d0.is_not(None))
        .group_by(t.group_id, t.member_id)
        .cte("entries")
        .prefix_with("MATERIALIZED")
    )
    x, bc = entries.c, b.c
    in_terms = []
    for i in range(len(plan.days)):
        q = _LOG.alias(f"q{i}")
        last_change = (
            sa.select(q.c.type)
            .where(
                q.c.group_id == x.group_id,
                q.c.member_id == x.member_id,
                q.c.type.in_(stays),
                q.c.at >= x.joined_at,
                q.c.at < getattr(bc, f"end{i}"),
            )
            .order_by(q.c.at.desc(), q.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        in_terms.append(sa.case((last_change == EventType.JOIN, plan.bit(i)), else_=0))
    in_mask = sum(in_terms[1:], start=in_terms[0])
    act_mask = sa.case((bc.due_act == 0, 0), else_=x.posted)
    scored = (
        sa.select(
            _key(plan.by, x, bc).label("k"), bc.due_in, bc.due_act, in_mask.label("in_mask"), act_mask.label("act_mask")
        )
        .select_from(entries.join(b, bc.d0 == x.d0))
        .cte("scored")
        .prefix_with("MATERIALIZED")
    )
    return _summed(scored)


@functools.lru_cache(maxsize=32)
def _compiled(
    source: Callable[[_Plan, Any, Scope, Period], Any],
    plan: _Plan,
    period: Period,
    exclude: tuple[str, ...],
    dialect: sa.Dialect,
) -> str:
    """The report's SQL, compiled once with every value inlined (SQLAlchemy quotes them), and
    a marker where each chunk's group ids go. Building and compiling a statement this size
    costs more than running it for one group; a report runs it once per chunk, and a
    repeated report (the chat command, the bench) reuses it."""
    stmt = source(plan, _bounds(plan, period), Scope(None, "", exclude), period)
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "sqlite":
        # SQLite keeps the order of a CROSS JOIN: entries outside (in index order, so the
        # look-ups walk the indexes forwards), the small bounds table inside (indexed on the
        # fly). Left to itself the planner sometimes puts bounds outside and rescans entries.
        assert sql.count(" JOIN bounds ON ") == 1
        sql = sql.replace(" JOIN bounds ON ", " CROSS JOIN bounds ON ")
    return sql


def _add_counts(merged: dict[str, CohortRow], r: Sequence[Any], by: str, days: Sequence[int]) -> None:
    """Fold one (cohort, due_in, due_act, in_mask, act_mask, entries) row into the table."""
    raw_key, due_in, due_act, in_mask, act_mask, n = r
    key = as_date(raw_key).isoformat() if by in ("day", "week") else str(raw_key)
    row = merged.get(key)
    if row is None:
        row = merged[key] = CohortRow(key, 0, {d: Cell() for d in days}, {d: Cell() for d in days})
    row.size += n
    due_in, due_act, in_mask, act_mask = int(due_in), int(due_act), int(in_mask or 0), int(act_mask or 0)
    for i, d in enumerate(days):
        bit = 1 << i
        if due_in & bit:
            row.in_group[d].measured += n
            if in_mask & bit:
                row.in_group[d].count += n
        if due_act & bit:
            row.active[d].measured += n
            if act_mask & bit:
                row.active[d].count += n


async def _retention(
    source: Callable[[_Plan, Any, Scope, Period], Any],
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    as_of: datetime,
    by: str,
    days: Sequence[int],
    window: int,
    progress: ProgressFn | None,
) -> RetentionReport:
    if by not in COHORT_BY:
        raise ValueError(f"unknown cohort breakdown {by!r} (use one of {', '.join(COHORT_BY)})")
    days = tuple(sorted(set(days)))
    if not days or days[0] < 0 or len(days) > 16:
        raise ValueError("retention days: 1 to 16 non-negative integers")
    if window < 1:
        raise ValueError("the activity window is at least one day")
    if period.days > MAX_PERIOD_DAYS:
        raise ValueError(f"a retention report covers at most {MAX_PERIOD_DAYS} days of joins")
    horizon = local_day(as_of, tz) - timedelta(days=1)
    start, end = period.utc_bounds(tz)
    plan = _Plan(LocalTime.build(db.dialect, tz, start, end), tz, days, window, horizon, by)
    ids = await scope.group_ids(db)
    merged: dict[str, CohortRow] = {}
    steps = Progress(n_chunks(ids, RETENTION_CHUNK), progress)
    sql = _compiled(source, plan, period, scope.exclude_members, db.engine.dialect)
    quote = sa.String().literal_processor(db.engine.dialect)
    assert quote is not None
    # Chunks run on a few connections at once: the database works on each in its own
    # thread (SQLite) or backend (PostgreSQL), so a many-group report uses several cores.
    # An in-memory SQLite database is one shared connection: one query at a time there.
    shared = db.dialect == "sqlite" and db.settings.sqlite_path is None
    gate = asyncio.Semaphore(1 if shared else PARALLEL)

    async def run(chunk: list[str]) -> None:
        in_chunk = "(" + ", ".join(quote(g) for g in chunk) + ")"
        async with gate, db.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(sql.replace(_CHUNK_MARK, in_chunk))).all()
        for r in rows:
            _add_counts(merged, r, by, days)
        steps.step()

    await asyncio.gather(*(run(chunk) for chunk in chunks(ids, RETENTION_CHUNK)))
    total = CohortRow("total")
    for row in merged.values():
        total.add(row)
    for n in days:
        total.in_group.setdefault(n, Cell())
        total.active.setdefault(n, Cell())
    if by in ("day", "week"):
        ordered = sorted(merged.values(), key=lambda r: r.key)
    else:
        ordered = sorted(merged.values(), key=lambda r: (-r.size, r.key))
    return RetentionReport(scope, period, by, days, window, horizon, ordered, total)


async def retention(
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    as_of: datetime,
    by: str = "day",
    days: Sequence[int] = DEFAULT_DAYS,
    window: int = DEFAULT_WINDOW,
    progress: ProgressFn | None = None,
) -> RetentionReport:
    """Cohort retention from the membership stays and the daily activity rollup."""
    return await _retention(
        _from_rollups, db, tz, scope, period, as_of=as_of, by=by, days=days, window=window, progress=progress
    )


async def retention_from_events(
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    as_of: datetime,
    by: str = "day",
    days: Sequence[int] = DEFAULT_DAYS,
    window: int = DEFAULT_WINDOW,
    progress: ProgressFn | None = None,
) -> RetentionReport:
    """The same report from the raw event log only (reference and benchmark baseline)."""
    return await _retention(
        _from_events, db, tz, scope, period, as_of=as_of, by=by, days=days, window=window, progress=progress
    )
