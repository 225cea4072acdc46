"""Short Chinese summaries for chat: the admin command and the daily / weekly digests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.stats.cohorts import DEFAULT_DAYS, DEFAULT_WINDOW, RetentionReport, retention
from bot.stats.localtime import local_day
from bot.stats.people import MembersReport, members
from bot.stats.scope import Period, Scope
from bot.stats.table import pct, ratio
from bot.stats.trends import ActivityReport, GrowthReport, activity, growth
from bot.storage.db import Database


@dataclass
class Summary:
    scope: Scope
    period: Period
    growth: GrowthReport
    activity: ActivityReport
    retention: RetentionReport
    members: MembersReport
    live_members: int | None = None  # the platform's member count now, when known

    @property
    def member_count(self) -> int:
        return self.live_members if self.live_members is not None else self.growth.members_after

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "summary",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "live_members": self.live_members,
            "growth": self.growth.as_json(),
            "activity": self.activity.as_json(),
            "retention": self.retention.as_json(),
            "members": self.members.as_json(),
        }


async def summarize(
    db: Database,
    tz: tzinfo,
    scope: Scope,
    period: Period,
    *,
    as_of: datetime,
    lurk_days: int = 14,
    core_share: float = 0.5,
    top: int = 3,
    retention_days: Sequence[int] = DEFAULT_DAYS,
    window: int = DEFAULT_WINDOW,
    retention_lookback_days: int = 60,
    live_members: int | None = None,
) -> Summary:
    """Everything a summary shows. Retention looks at the joins of the
    `retention_lookback_days` days before `as_of` (recent cohorts, measured so far)."""
    grown = await growth(db, tz, scope, period)
    act = await activity(db, tz, scope, period)
    today = local_day(as_of, tz)
    cohorts = Period.last(retention_lookback_days, today)
    kept = await retention(db, tz, scope, cohorts, as_of=as_of, by="week", days=retention_days, window=window)
    people = await members(db, tz, scope, period, lurk_days=lurk_days, core_share=core_share, top=top, sample=0)
    return Summary(scope, period, grown, act, kept, people, live_members)


def _span(period: Period) -> str:
    if period.days == 1:
        return f"{period.start:%m-%d}"
    return f"{period.start:%m-%d}~{period.end:%m-%d}"


def _names(lines: Sequence[Any], limit: int) -> str:
    return "、".join(f"{m.display} {m.messages}" for m in lines[:limit])


def summary_text(s: Summary, heading: str, *, top: int = 3, removals: bool = False) -> str:
    """A few lines for a chat window. `heading` e.g. "「宝妈交流群」近7天"."""
    g, a, m, r = s.growth, s.activity, s.members, s.retention
    lines = [f"📊 {heading}（{_span(s.period)}）"]
    lines.append(f"👥 成员 {s.member_count} 人：入群 {g.joins}，退群 {g.left}，移出 {g.removed}，净增 {g.net:+d}")
    dau_ratio = ratio(a.avg_dau, s.member_count)
    lines.append(
        f"💬 消息 {a.messages} 条，日均活跃 {a.avg_dau:.1f} 人（活跃率 {pct(dau_ratio, 1)}），"
        f"期间发言 {a.active_in_period} 人"
    )
    parts = []
    for n in r.days:
        cell = r.total.in_group.get(n)
        if cell is not None and cell.measured:
            parts.append(f"{n}日在群 {pct(cell.share)}")
    for n in r.days:
        cell = r.total.active.get(n)
        if cell is not None and cell.measured:
            parts.append(f"{n}日后仍活跃 {pct(cell.share)}")
    if r.total.size:
        lookback = r.period.days
        detail = "，".join(parts) if parts else "入群时间太短，暂无留存数据"
        lines.append(f"📈 留存（近{lookback}天入群 {r.total.size} 人）：{detail}")
    else:
        lines.append(f"📈 留存：近{r.period.days}天没有新成员入群")
    lines.append(f"🌙 潜水 {m.lurkers} 人（{m.lurk_days}天未发言，占 {pct(ratio(m.lurkers, m.members))}）")
    if m.messages:
        lines.append(f"🔥 核心 {m.core_size} 人发了 {pct(ratio(m.core_messages, m.messages))} 的消息")
        lines.append(f"🏅 发言最多：{_names(m.top, top)}")
    if removals and m.removals:
        shown = "、".join(x.display for x in m.removals[:10])
        more = f" 等 {len(m.removals)} 人" if len(m.removals) > 10 else ""
        lines.append(f"🚫 移出：{shown}{more}")
    return "\n".join(lines)


def digest_period(kind: str, fire: datetime, tz: tzinfo) -> Period:
    """The complete days a digest covers: yesterday (daily) or the 7 days ending yesterday."""
    yesterday = local_day(fire, tz) - timedelta(days=1)
    return Period.last(1 if kind == "daily" else 7, yesterday)
