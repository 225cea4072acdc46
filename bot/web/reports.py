"""群详情: the stats reports (the same ones `qunbot stats` and the chat digests use) shaped
for the page's charts, and the members CSV."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.stats.actions import checkin_rate
from bot.stats.cohorts import retention
from bot.stats.hours import heatmap
from bot.stats.localtime import local_day
from bot.stats.people import members
from bot.stats.scope import Period, Scope
from bot.stats.table import to_csv
from bot.stats.trends import activity, growth

if TYPE_CHECKING:
    from bot.web.server import WebConsole

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def _scope(console: WebConsole, group_id: str) -> Scope:
    services = console.services
    return Scope.one(group_id, console.group_name(group_id), (services.bot.id, *services.config.other_bots))


async def group_report(console: WebConsole, group_id: str, days: int) -> dict[str, Any]:
    services = console.services
    db, tz, now = services.db, services.config.tz, console.now()
    assert db is not None
    scope = _scope(console, group_id)
    period = Period.last(days, local_day(now, tz))
    grown, act, hours, checkins, people, cohorts = await asyncio.gather(
        growth(db, tz, scope, period),
        activity(db, tz, scope, period),
        heatmap(db, tz, scope, period),
        checkin_rate(db, tz, scope, period),
        members(db, tz, scope, period, top=10, sample=20),
        retention(db, tz, scope, Period.last(min(days, 60), period.end), as_of=now, by="week"),
    )
    growth_days = grown.days
    return {
        "days": [d.day.isoformat()[5:] for d in act.days],
        "members": [g.members for g in growth_days],
        "joins": [g.joins for g in growth_days],
        "leaves": [-(g.left + g.removed) for g in growth_days],
        "dau": [d.active for d in act.days],
        "messages": [d.messages for d in act.days],
        "wau": act.wau,
        "mau": act.mau,
        "members_end": act.members_end,
        "weekdays": list(WEEKDAYS),
        "heatmap": [[h, w, hours.counts[w][h]] for w in range(7) for h in range(24)],
        "heat_max": max((max(row) for row in hours.counts), default=0),
        "checkin": [None if d.rate is None else round(d.rate * 100, 1) for d in checkins.days],
        "checkin_source": checkins.source,
        "cohorts": [
            {
                "key": row.key,
                "size": row.size,
                "active": {str(n): c.share for n, c in sorted(row.active.items())},
            }
            for row in cohorts.rows
        ],
        "retention_days": list(cohorts.days),
        "core": [{"id": m.member_id, "name": m.display, "messages": m.messages} for m in people.core[:20]],
        "top": [{"id": m.member_id, "name": m.display, "messages": m.messages} for m in people.top],
        "lurkers": people.lurkers,
        "lurker_sample": [
            {"id": m.member_id, "name": m.display, "last": m.last_active.isoformat() if m.last_active else "—"}
            for m in people.lurker_sample
        ],
        "lurk_days": people.lurk_days,
    }


async def members_csv(console: WebConsole, group_id: str, days: int) -> str:
    """Every current member with their messages in the period and last active day."""
    services = console.services
    db, tz = services.db, services.config.tz
    assert db is not None
    scope = _scope(console, group_id)
    period = Period.last(days, local_day(console.now(), tz))
    people = await members(db, tz, scope, period, top=100_000, sample=100_000)
    rows = []
    core = {m.member_id for m in people.core}
    for m in people.top:
        kind = "核心" if m.member_id in core else ""
        last = m.last_active.isoformat() if m.last_active else ""
        rows.append([_cell(m.member_id), _cell(m.display), m.messages, last, kind])
    listed = {m.member_id for m in people.top}
    for m in people.lurker_sample:
        if m.member_id not in listed:
            last = m.last_active.isoformat() if m.last_active else ""
            rows.append([_cell(m.member_id), _cell(m.display), 0, last, "潜水"])
    return to_csv(["member_id", "name", f"messages_{days}d", "last_active", "role"], rows)


def _cell(text: str) -> str:
    """A name as text in a spreadsheet: members choose their names, and one that starts like
    a formula (=HYPERLINK(…), +, -, @) would run as one when the CSV is opened in Excel."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
