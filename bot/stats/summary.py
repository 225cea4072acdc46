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

    @property
    def member_count(self) -> int:
        """Members at the end of the period, as recorded (people from before the bot included)."""
        return self.growth.members_after

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "summary",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "growth": self.growth.as_json(),
            "activity": self.activity.as_json(),
            "retention": self.retention.as_json(),
            "members": self.members.as_json(),
        }


@dataclass(frozen=True)
class SummaryOptions:
    """What a summary is computed with: the stats plugin's settings for the group."""

    lurk_days: int = 14
    core_share: float = 0.5
    top: int = 3
    retention_days: tuple[int, ...] = DEFAULT_DAYS
    window: int = DEFAULT_WINDOW
    retention_lookback_days: int = 60

    @classmethod
    def of(cls, cfg: Any) -> SummaryOptions:
        """From a `plugins.stats.config.StatsConfig` (read by duck typing: the engine does not
        import plugins)."""
        return cls(
            lurk_days=cfg.lurk_days,
            core_share=cfg.core_share,
            top=cfg.top,
            retention_days=tuple(cfg.retention_days),
            window=cfg.active_window_days,
            retention_lookback_days=cfg.retention_lookback_days,
        )


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
) -> Summary:
    """Everything a summary shows. Retention looks at the joins of the
    `retention_lookback_days` days before `as_of` (recent cohorts, measured so far)."""
    grown = await growth(db, tz, scope, period)
    act = await activity(db, tz, scope, period)
    today = local_day(as_of, tz)
    cohorts = Period.last(retention_lookback_days, today)
    kept = await retention(db, tz, scope, cohorts, as_of=as_of, by="week", days=retention_days, window=window)
    people = await members(db, tz, scope, period, lurk_days=lurk_days, core_share=core_share, top=top, sample=0)
    return Summary(scope, period, grown, act, kept, people)


def summary_heading(label: str, period: Period, as_of: datetime, tz: tzinfo) -> str:
    """「name」近7天 for the days up to today, else 「name」2026-11-01 至 2026-11-30."""
    if period.end == local_day(as_of, tz):
        return f"「{label}」近{period.days}天"
    return f"「{label}」{period.start} 至 {period.end}"


async def summary_report(
    db: Database, tz: tzinfo, scope: Scope, period: Period, *, as_of: datetime, options: SummaryOptions
) -> tuple[Summary, str]:
    """The admin's data summary (`群数据` in chat, `qunbot stats summary`): the one service
    both call, so that they say the same for the same group and days."""
    summary = await summarize(
        db,
        tz,
        scope,
        period,
        as_of=as_of,
        lurk_days=options.lurk_days,
        core_share=options.core_share,
        top=options.top,
        retention_days=options.retention_days,
        window=options.window,
        retention_lookback_days=options.retention_lookback_days,
    )
    text = summary_text(summary, summary_heading(scope.label, period, as_of, tz), top=options.top, removals=True)
    return summary, text


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
    found = f"；首次记录原有成员 {g.found} 人" if g.found else ""
    lines.append(
        f"👥 成员 {s.member_count} 人：入群 {g.joins}，退群 {g.left}，移出 {g.removed}，净增 {g.net:+d}{found}"
    )
    # The active ratio is each day's posters over that day's members, averaged: never past 100%.
    lines.append(
        f"💬 消息 {a.messages} 条，日均活跃 {a.avg_dau:.1f} 人（活跃率 {pct(a.avg_active_ratio, 1)}），"
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
    # Cohorts are the joins the bot saw: members from before the bot are in none.
    if r.total.size:
        lookback = r.period.days
        detail = "，".join(parts) if parts else "入群时间太短，暂无留存数据"
        lines.append(f"📈 留存（按看到的入群，近{lookback}天入群 {r.total.size} 人）：{detail}")
    else:
        lines.append(f"📈 留存：近{r.period.days}天没有看到新成员入群（原有成员不计入留存）")
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
