"""Who carries a group and who is silent: top posters, the active core, lurkers, removals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from bot.stats.localtime import as_date, utc_start
from bot.stats.presence import members_during, present_at
from bot.stats.scope import Period, Progress, ProgressFn, Scope, chunks, n_chunks
from bot.stats.table import Table, pct, ratio
from bot.storage.db import Database
from bot.storage.models import Contact, DailyActivity, Membership, UTCDateTime

_M = Membership.__table__
_DA = DailyActivity.__table__
_C = Contact.__table__


@dataclass
class MemberLine:
    group_id: str
    member_id: str
    name: str = ""
    messages: int = 0
    last_active: date | None = None
    at: datetime | None = None  # removals: when

    @property
    def display(self) -> str:
        return self.name or self.member_id

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"group": self.group_id, "member": self.member_id, "name": self.name}
        if self.messages:
            out["messages"] = self.messages
        if self.last_active is not None:
            out["last_active"] = self.last_active.isoformat()
        if self.at is not None:
            out["at"] = self.at.isoformat()
        return out


@dataclass
class MembersReport:
    scope: Scope
    period: Period
    lurk_days: int
    core_share: float
    members: int  # members at the end of the period
    posters: int  # members who posted in the period
    messages: int
    top: list[MemberLine]
    core: list[MemberLine]  # the fewest top posters who sent `core_share` of the messages
    core_messages: int
    lurkers: int  # members (for at least lurk_days) who posted nothing in the last lurk_days days
    lurker_sample: list[MemberLine]
    removals: list[MemberLine]
    # Members at some time in the period (everyone who posted among them): what posters and
    # the active core are shares of. 0 in reports built before it existed.
    members_in_period: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def core_size(self) -> int:
        return len(self.core)

    def as_json(self) -> dict[str, Any]:
        share = ratio(self.lurkers, self.members)
        return {
            "report": "members",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "members": self.members,
            "members_in_period": self.members_in_period,
            "posters": self.posters,
            "messages": self.messages,
            "top": [m.as_json() for m in self.top],
            "core": {
                "share_of_messages": self.core_share,
                "size": self.core_size,
                "messages": self.core_messages,
                "members": [m.as_json() for m in self.core],
            },
            "lurkers": {
                "days": self.lurk_days,
                "count": self.lurkers,
                "share": None if share is None else round(share, 4),
                "sample": [m.as_json() for m in self.lurker_sample],
            },
            "removals": [m.as_json() for m in self.removals],
        }

    def table(self) -> Table:
        t = Table(
            f"members — {self.scope.label}, {self.period.start}..{self.period.end}",
            ["list", "group", "member", "name", "messages", "last_active"],
        )
        for kind, lines in (("top", self.top), ("lurker", self.lurker_sample), ("removed", self.removals)):
            for m in lines:
                last = m.last_active.isoformat() if m.last_active else ("-" if kind == "lurker" else "")
                if kind == "removed" and m.at is not None:
                    last = m.at.isoformat(timespec="minutes")
                t.rows.append([kind, m.group_id, m.member_id, m.name, m.messages or "", last])
        t.notes.append(
            f"{self.members_in_period} members in the period ({self.members} at its end), {self.posters} of them "
            f"posted {self.messages} messages; active core: {self.core_size} members sent "
            f"{pct(ratio(self.core_messages, self.messages))} of the messages "
            f"({pct(ratio(self.core_size, self.members_in_period), 1)} of members); lurkers (members at the end "
            f"for {self.lurk_days} days or more, no message in the last {self.lurk_days}): {self.lurkers} "
            f"({pct(ratio(self.lurkers, self.members))} of members at the end)"
        )
        t.notes.append("members include people who were in the group before the bot (join time unknown)")
        return t


async def names(db: Database, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    out: dict[str, str] = {}
    async with db.engine.connect() as conn:
        for chunk in chunks(wanted, 500):
            for cid, name in await conn.execute(sa.select(_C.c.id, _C.c.name).where(_C.c.id.in_(chunk))):
                out[cid] = name or ""
    return out


def _not_excluded(col: Any, scope: Scope) -> list[Any]:
    return [col.not_in(scope.exclude_members)] if scope.exclude_members else []


async def members(
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    lurk_days: int = 14,
    core_share: float = 0.5,
    top: int = 10,
    sample: int = 20,
    progress: ProgressFn | None = None,
) -> MembersReport:
    """Lurkers are counted at the end of the period: members then, who had been members for
    at least `lurk_days` days (members from before the bot: known to the bot for that long)
    and posted nothing in the `lurk_days` days ending with it."""
    if lurk_days < 1:
        raise ValueError("lurk_days is at least 1")
    if not 0 < core_share <= 1:
        raise ValueError("core_share is a fraction in (0, 1]")
    start, end = period.utc_bounds(tz)
    quiet_from = period.end - timedelta(days=lurk_days - 1)
    joined_before = utc_start(quiet_from, tz)
    a, m = _DA.c, _M.c
    ids = await scope.group_ids(db)
    counts: list[tuple[int, str, str]] = []
    n_members = n_lurkers = n_in_period = 0
    lurkers: list[MemberLine] = []
    removals: list[MemberLine] = []
    steps = Progress(n_chunks(ids), progress)
    for chunk in chunks(ids):
        posted = (
            sa.select(a.group_id, a.member_id, sa.func.sum(a.messages))
            .where(
                a.group_id.in_(chunk),
                *_not_excluded(a.member_id, scope),
                a.day >= sa.literal(period.start, sa.Date),
                a.day <= sa.literal(period.end, sa.Date),
            )
            .group_by(a.group_id, a.member_id)
        )
        present = [m.group_id.in_(chunk), *_not_excluded(m.member_id, scope), *present_at(m, end)]
        q = _DA.alias("q")
        spoke = sa.exists().where(
            q.c.group_id == m.group_id,
            q.c.member_id == m.member_id,
            q.c.day >= sa.literal(quiet_from, sa.Date),
            q.c.day <= sa.literal(period.end, sa.Date),
        )
        lurking = [*present, m.known_from < sa.literal(joined_before, UTCDateTime()), ~spoke]
        last_day = (
            sa.select(sa.func.max(q.c.day))
            .where(q.c.group_id == m.group_id, q.c.member_id == m.member_id, q.c.day <= sa.literal(period.end, sa.Date))
            .scalar_subquery()
        )
        async with db.engine.connect() as conn:
            counts.extend((int(n or 0), g, mid) for g, mid, n in await conn.execute(posted))
            n_members += int((await conn.execute(sa.select(sa.func.count()).where(*present))).scalar_one())
            n_lurkers += int((await conn.execute(sa.select(sa.func.count()).where(*lurking))).scalar_one())
            if len(lurkers) < sample:
                rows = await conn.execute(
                    sa.select(m.group_id, m.member_id, last_day.label("last_day"))
                    .where(*lurking)
                    .order_by(sa.literal_column("last_day").asc().nulls_first(), m.member_id)
                    .limit(sample - len(lurkers))
                )
                lurkers.extend(MemberLine(g, mid, last_active=as_date(last) if last else None) for g, mid, last in rows)
            rows = await conn.execute(
                sa.select(m.group_id, m.member_id, m.left_at)
                .where(
                    m.group_id.in_(chunk),
                    *_not_excluded(m.member_id, scope),
                    m.removed.is_(True),
                    m.left_at >= sa.literal(start, UTCDateTime()),
                    m.left_at < sa.literal(end, UTCDateTime()),
                )
                .order_by(m.left_at)
            )
            removals.extend(MemberLine(g, mid, at=at.astimezone(tz)) for g, mid, at in rows)
        n_in_period += await members_during(db, tz, chunk, scope, period)
        steps.step()
    counts.sort(key=lambda c: (-c[0], c[1], c[2]))
    total = sum(c[0] for c in counts)
    core: list[MemberLine] = []
    core_messages = 0
    for n, g, mid in counts:
        if core_messages >= core_share * total:
            break
        core.append(MemberLine(g, mid, messages=n))
        core_messages += n
    top_lines = [MemberLine(g, mid, messages=n) for n, g, mid in counts[:top]]
    known = await names(db, [x.member_id for x in (*top_lines, *core, *lurkers, *removals)])
    for line in (*top_lines, *core, *lurkers, *removals):
        line.name = known.get(line.member_id, "")
    return MembersReport(
        scope,
        period,
        lurk_days,
        core_share,
        n_members,
        len(counts),
        total,
        top_lines,
        core,
        core_messages,
        n_lurkers,
        lurkers,
        removals,
        n_in_period,
    )
