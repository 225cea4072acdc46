"""Did members do what was asked? Action rate (answered a keyword within a window) and
check-in rate (from the check-in plugin's records when its table exists, else from
messages matching the check-in words).

Keyword matching needs message text, so these read the event log for the window only; with
`storage.store_text: metadata` (or text purged) the figure is not available and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, Literal

import sqlalchemy as sa

from bot.core.text import normalize
from bot.stats.localtime import as_date, local_day
from bot.stats.presence import covers, members_by_day, members_during, stays_and_posts
from bot.stats.scope import Period, Progress, ProgressFn, Scope, chunks, n_chunks
from bot.stats.table import Table, pct, ratio
from bot.stats.trends import growth
from bot.storage.db import Database
from bot.storage.models import EventLog, EventType, Membership, UTCDateTime

_LOG = EventLog.__table__
_M = Membership.__table__
CHECKIN_TABLE = "checkin_records"

Match = Literal["exact", "contains"]


class Matcher:
    def __init__(self, keywords: Sequence[str], match: str = "contains") -> None:
        if match not in ("exact", "contains"):
            raise ValueError("match is 'exact' or 'contains'")
        self.words = [w for w in (normalize(k) for k in keywords) if w]
        if not self.words:
            raise ValueError("at least one non-empty keyword is needed")
        self.match = match

    def __call__(self, text: str) -> bool:
        t = normalize(text)
        if self.match == "exact":
            return t in self.words
        return any(w in t for w in self.words)


@dataclass
class ActionLine:
    group_id: str
    eligible: int
    acted: int

    @property
    def rate(self) -> float | None:
        return ratio(self.acted, self.eligible)


@dataclass
class ActionReport:
    scope: Scope
    since: datetime
    until: datetime
    keywords: list[str]
    match: str
    groups: list[ActionLine]
    messages: int  # messages in the window
    without_text: int  # ... of which the text was not stored (or purged)

    @property
    def eligible(self) -> int:
        return sum(g.eligible for g in self.groups)

    @property
    def acted(self) -> int:
        return sum(g.acted for g in self.groups)

    @property
    def available(self) -> bool:
        return not (self.messages and self.without_text == self.messages)

    @property
    def rate(self) -> float | None:
        return ratio(self.acted, self.eligible) if self.available else None

    def as_json(self) -> dict[str, Any]:
        r = self.rate
        return {
            "report": "action_rate",
            "scope": self.scope.as_json(),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "keywords": self.keywords,
            "match": self.match,
            "eligible": self.eligible,
            "acted": self.acted,
            "rate": None if r is None else round(r, 4),
            "available": self.available,
            "messages": self.messages,
            "messages_without_text": self.without_text,
            "groups": [
                {
                    "group": g.group_id,
                    "eligible": g.eligible,
                    "acted": g.acted,
                    "rate": None if g.rate is None else round(g.rate, 4),
                }
                for g in self.groups
            ],
        }

    def table(self) -> Table:
        t = Table(
            f"action rate — {self.scope.label}, {'/'.join(self.keywords)} ({self.match}), "
            f"{self.since.isoformat(timespec='minutes')} .. {self.until.isoformat(timespec='minutes')}",
            ["group", "eligible", "acted", "rate"],
        )
        for g in self.groups:
            t.rows.append([g.group_id, g.eligible, g.acted, pct(g.rate, 1) if self.available else "n/a"])
        t.rows.append(["total", self.eligible, self.acted, pct(self.rate, 1) if self.available else "n/a"])
        t.notes.append(
            "eligible: members at the start of the window, plus anyone who acted; acted: posted a "
            "matching message within the window"
        )
        if not self.available:
            t.notes.append("n/a: message text is not stored (storage.store_text: metadata) or was purged")
        elif self.without_text:
            t.notes.append(f"{self.without_text} of {self.messages} messages had no stored text")
        return t


async def _present(db: Database, chunk: list[str], scope: Scope, at: datetime) -> set[tuple[str, str]]:
    m = _M.c
    when = sa.literal(at, UTCDateTime())
    where = [m.group_id.in_(chunk), m.known_from <= when, sa.or_(m.left_at.is_(None), m.left_at > when)]
    if scope.exclude_members:
        where.append(m.member_id.not_in(scope.exclude_members))
    async with db.engine.connect() as conn:
        return {(g, mid) for g, mid in await conn.execute(sa.select(m.group_id, m.member_id).where(*where))}


async def _messages(
    db: Database, chunk: list[str], scope: Scope, since: datetime, until: datetime
) -> list[tuple[str, str, datetime, str | None]]:
    c = _LOG.c
    where = [
        c.group_id.in_(chunk),
        c.type == EventType.MESSAGE,
        c.at >= sa.literal(since, UTCDateTime()),
        c.at < sa.literal(until, UTCDateTime()),
    ]
    if scope.exclude_members:
        where.append(c.member_id.not_in(scope.exclude_members))
    stmt = sa.select(c.group_id, c.member_id, c.at, c.text).where(*where)
    async with db.engine.connect() as conn:
        return [(g, mid, at, text) for g, mid, at, text in await conn.execute(stmt)]


async def action_rate(
    db: Database,
    scope: Scope,
    since: datetime,
    until: datetime,
    keywords: Sequence[str],
    *,
    match: str = "contains",
    progress: ProgressFn | None = None,
) -> ActionReport:
    """The share of members who posted a message matching `keywords` in [since, until)."""
    if until <= since:
        raise ValueError("the window ends before it starts")
    matcher = Matcher(keywords, match)
    ids = await scope.group_ids(db)
    lines: list[ActionLine] = []
    n_messages = n_without = 0
    steps = Progress(n_chunks(ids), progress)
    for chunk in chunks(ids):
        present = await _present(db, chunk, scope, since)
        acted: set[tuple[str, str]] = set()
        for g, mid, _at, text in await _messages(db, chunk, scope, since, until):
            n_messages += 1
            if text is None:
                n_without += 1
            elif matcher(text):
                acted.add((g, mid))
        eligible = present | acted
        for gid in chunk:
            e = sum(1 for g, _ in eligible if g == gid)
            a = sum(1 for g, _ in acted if g == gid)
            if e or scope.groups is not None:
                lines.append(ActionLine(gid, e, a))
        steps.step()
    return ActionReport(scope, since, until, list(keywords), match, lines, n_messages, n_without)


# --- check-in rate ---------------------------------------------------------------------------


@dataclass
class CheckinDay:
    day: date
    members: int
    checked_in: int

    @property
    def rate(self) -> float | None:
        return ratio(self.checked_in, self.members)


@dataclass
class CheckinReport:
    scope: Scope
    period: Period
    source: str  # "checkin_records", "messages", or "n/a"
    days: list[CheckinDay]
    checked_in_once: int  # distinct members who checked in at least once
    members_end: int
    notes: list[str] = field(default_factory=list)
    # Members at some time in the period (whoever checked in among them): what "at least
    # once" is a share of. 0 in reports built before it existed.
    members_in_period: int = 0

    @property
    def available(self) -> bool:
        return self.source != "n/a"

    @property
    def avg_rate(self) -> float | None:
        rates = [r for d in self.days if (r := d.rate) is not None]
        return sum(rates) / len(rates) if rates and self.available else None

    @property
    def once_rate(self) -> float | None:
        return ratio(self.checked_in_once, self.members_in_period) if self.available else None

    def as_json(self) -> dict[str, Any]:
        avg, once = self.avg_rate, self.once_rate
        return {
            "report": "checkin_rate",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "source": self.source,
            "available": self.available,
            "avg_daily_rate": None if avg is None else round(avg, 4),
            "checked_in_once": self.checked_in_once,
            "members_end": self.members_end,
            "members_in_period": self.members_in_period,
            "once_rate": None if once is None else round(once, 4),
            "days": [
                {
                    "day": d.day.isoformat(),
                    "members": d.members,
                    "checked_in": d.checked_in,
                    "rate": None if d.rate is None else round(d.rate, 4),
                }
                for d in self.days
            ],
            "notes": self.notes,
        }

    def table(self) -> Table:
        t = Table(
            f"check-in rate — {self.scope.label}, {self.period.start}..{self.period.end} (from {self.source})",
            ["day", "members", "checked_in", "rate"],
        )
        for d in self.days:
            t.rows.append(
                [
                    d.day.isoformat(),
                    d.members,
                    d.checked_in if self.available else "n/a",
                    pct(d.rate, 1) if self.available else "n/a",
                ]
            )
        t.notes.append(
            f"average daily rate {pct(self.avg_rate, 1) if self.available else 'n/a'}; "
            f"checked in at least once: {self.checked_in_once if self.available else 'n/a'} of "
            f"{self.members_in_period} members ({pct(self.once_rate, 1) if self.available else 'n/a'}); "
            f"members: in the group at some time that day (or period), including people who were there "
            f"before the bot; {self.members_end} at the end"
        )
        t.notes.extend(self.notes)
        return t


async def _checkin_columns(db: Database) -> set[str] | None:
    def inspect(sync_conn: Any) -> set[str] | None:
        insp = sa.inspect(sync_conn)
        if not insp.has_table(CHECKIN_TABLE):
            return None
        return {c["name"] for c in insp.get_columns(CHECKIN_TABLE)}

    async with db.engine.connect() as conn:
        return await conn.run_sync(inspect)


async def checkin_rate(
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    fallback_keywords: Sequence[str] = ("签到", "打卡"),
    progress: ProgressFn | None = None,
) -> CheckinReport:
    """Members who checked in each day / members in the group at some time that day (anyone
    who checked in counts as one, see `bot.stats.presence`). Read from the check-in plugin's
    table when it is there (a make-up check-in bought later does not count: it was not done
    in time), else from messages matching `fallback_keywords`."""
    grown = await growth(db, tz, scope, period)
    per_day: dict[date, set[tuple[str, str]]] = {d: set() for d in period.each_day()}
    notes: list[str] = []
    columns = await _checkin_columns(db)
    ids = await scope.group_ids(db)
    steps = Progress(n_chunks(ids), progress)
    if columns is not None and {"group_id", "member_id", "day"} <= columns:
        source = CHECKIN_TABLE
        t = sa.table(CHECKIN_TABLE, *(sa.column(n) for n in ("group_id", "member_id", "day", "makeup")))
        day = sa.type_coerce(t.c.day, sa.Date)
        for chunk in chunks(ids):
            where = [
                t.c.group_id.in_(chunk),
                day >= sa.literal(period.start, sa.Date),
                day <= sa.literal(period.end, sa.Date),
            ]
            if "makeup" in columns:
                where.append(sa.or_(t.c.makeup.is_(None), sa.not_(sa.type_coerce(t.c.makeup, sa.Boolean))))
            if scope.exclude_members:
                where.append(t.c.member_id.not_in(scope.exclude_members))
            async with db.engine.connect() as conn:
                for g, mid, d in await conn.execute(sa.select(t.c.group_id, t.c.member_id, day).where(*where)):
                    per_day[as_date(d)].add((g, mid))
            steps.step()
    else:
        source = "messages"
        notes.append(f"no {CHECKIN_TABLE} table: counted members who posted {'/'.join(fallback_keywords)}")
        matcher = Matcher(fallback_keywords, "contains")
        since, until = period.utc_bounds(tz)
        n_messages = n_without = 0
        for chunk in chunks(ids):
            for g, mid, at, text in await _messages(db, chunk, scope, since, until):
                n_messages += 1
                if text is None:
                    n_without += 1
                elif matcher(text):
                    per_day[local_day(at, tz)].add((g, mid))
            steps.step()
        if n_messages and n_without == n_messages:
            source = "n/a"
            notes.append("message text is not stored (storage.store_text: metadata): no check-in rate")
    members = await members_by_day(db, tz, scope, period, ids, grown)
    in_period = 0
    for chunk in chunks(ids):
        in_period += await members_during(db, tz, chunk, scope, period)
    # Who checked in without a stay or a message that day (or period) is a member all the same.
    checkers: set[tuple[str, str]] = set().union(*per_day.values()) if per_day else set()
    stays, posted = await stays_and_posts(db, tz, checkers, period)
    lo, hi = period.utc_bounds(tz)
    for d, who in per_day.items():
        members[d] += sum(
            1
            for g, mid in who
            if (g, mid, d) not in posted and not any(covers(kf, left, d, tz) for kf, left in stays.get((g, mid), ()))
        )
    posted_in_period = {(g, mid) for g, mid, _d in posted}
    in_period += sum(
        1
        for g, mid in checkers
        if (g, mid) not in posted_in_period
        and not any(kf < hi and (left is None or left >= lo) for kf, left in stays.get((g, mid), ()))
    )
    days = [CheckinDay(d, members[d], len(who)) for d, who in sorted(per_day.items())]
    once = len(checkers)
    return CheckinReport(scope, period, source, days, once, grown.members_after, notes, in_period)
