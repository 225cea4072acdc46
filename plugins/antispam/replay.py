"""Replay the current rules over stored history: who would they have warned or removed in
the last N days?

Reads the event log (group messages) oldest first, in pages, and runs a fresh detector over
it with its own flood/wave windows, join times from the memberships table, message counts
rebuilt as it goes, and strikes counted in memory. Nothing is sent and nothing is written.
Messages stored without text (storage.store_text: metadata) can only be judged by kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlmodel import col, select

from bot.core.clock import business_day
from bot.core.events import MessageKind
from bot.storage.db import Database
from bot.storage.models import Contact, DailyActivity, EventLog, EventType, Membership

from .checks import Message
from .classifier import TextModel
from .config import Action, AntispamConfig
from .detector import Detector, Windows
from .strikes import StrikeBook
from .teaching import TaughtSamples
from .verdict import RULE_TITLES

_PAGE = 2000


@dataclass
class Suspect:
    group_id: str
    member_id: str
    name: str = ""
    warnings: int = 0
    removed: bool = False
    rules: dict[str, int] = field(default_factory=dict)
    sample: str = ""
    first_at: datetime | None = None

    @property
    def outcome(self) -> str:
        return "remove" if self.removed else "warn"


@dataclass
class ReplayReport:
    since: datetime
    until: datetime
    messages: int = 0
    without_text: int = 0
    suspects: list[Suspect] = field(default_factory=list)
    judged_by: str = "当前规则"  # or e.g. "当前规则和新模型" for a candidate model

    @property
    def removed(self) -> list[Suspect]:
        return [s for s in self.suspects if s.removed]

    @property
    def warned(self) -> list[Suspect]:
        return [s for s in self.suspects if not s.removed]

    def summary(self, tz: tzinfo, limit: int = 20) -> str:
        days = max(1, round((self.until - self.since).total_seconds() / 86400))
        if not self.suspects:
            return f"按{self.judged_by}回放最近 {days} 天的 {self.messages} 条消息：没有人会被警告或移出。"
        lines = [
            f"按{self.judged_by}回放最近 {days} 天的 {self.messages} 条消息：会移出 {len(self.removed)} 人，"
            f"只警告 {len(self.warned)} 人。"
        ]
        ordered = sorted(self.suspects, key=lambda s: (not s.removed, -(s.warnings), s.first_at or self.since))
        for s in ordered[:limit]:
            verb = "移出" if s.removed else f"警告 {s.warnings} 次"
            rules = "、".join(RULE_TITLES.get(r, r) for r in sorted(s.rules, key=lambda r: -s.rules[r]))
            when = s.first_at.astimezone(tz).strftime("%m-%d %H:%M") if s.first_at else ""
            who = f"{s.name}（{s.member_id}）" if s.name and s.name != s.member_id else s.member_id
            lines.append(f"· {who} @{s.group_id}：{verb}，{rules}；{when}「{s.sample}」")
        if len(ordered) > limit:
            lines.append(f"……另有 {len(ordered) - limit} 人")
        if self.without_text:
            lines.append(f"（{self.without_text} 条消息没有保存文字，只按消息类型判断）")
        return "\n".join(lines)


Protected = Callable[[str, str], Awaitable[bool]]


async def replay(
    db: Database,
    config_for: Callable[[str], AntispamConfig],
    *,
    since: datetime,
    until: datetime,
    tz: tzinfo,
    groups: Sequence[str] | None = None,
    protected: Protected | None = None,
    classifier: TextModel | None = None,
    taught: TaughtSamples | None = None,
    judged_by: str = "当前规则",
) -> ReplayReport:
    """`classifier`: the text model to judge with (the running bot's, or a candidate to try
    before switching it on); None leaves the text model out. `taught`: the taught samples."""
    report = ReplayReport(since, until, judged_by=judged_by)
    joins = await _joins(db, groups)
    before = await _messages_before(db, groups, business_day(since, tz))
    names: dict[str, str] = {}
    windows = Windows()
    detectors: dict[int, Detector] = {}
    sent: dict[tuple[str, str], int] = {}
    # The executor's own book and count, so that a replay and the live bot agree to the edge
    # of the window. Each (group, member) only ever counts with its group's window: no horizon.
    strikes = StrikeBook(timedelta(0))
    suspects: dict[tuple[str, str], Suspect] = {}
    exempt: dict[tuple[str, str], bool] = {}
    last_id = 0
    while True:
        query = (
            select(EventLog)
            .where(
                col(EventLog.type) == EventType.MESSAGE,
                col(EventLog.at) >= since,
                col(EventLog.at) < until,
                col(EventLog.id) > last_id,
            )
            .order_by(col(EventLog.id))
            .limit(_PAGE)
        )
        if groups is not None:
            query = query.where(col(EventLog.group_id).in_(list(groups)))
        async with db.session() as s:
            rows = list((await s.exec(query)).all())
        if not rows:
            break
        last_id = rows[-1].id or last_id
        for row in sorted(rows, key=lambda r: (r.at, r.id or 0)):
            gid, mid = row.group_id or "", row.member_id or ""
            key = (gid, mid)
            report.messages += 1
            if row.text is None:
                report.without_text += 1
            cfg = config_for(gid)
            detector = detectors.get(id(cfg))
            if detector is None:
                detector = detectors[id(cfg)] = Detector(cfg, windows=windows, classifier=classifier, taught=taught)
            joined = _stay_at(joins.get(key, ()), row.at)
            count = sent.get(key)
            if count is None:
                count = before.get(key, 0) if joined is not None else 0
            sent[key] = count + 1
            suspect = suspects.get(key)
            if suspect is not None and suspect.removed:
                continue  # gone from the group by then
            meta = row.meta or {}
            message = Message(
                text=row.text or "",
                kind=MessageKind.parse(row.kind),
                url=meta.get("url"),
                group_id=gid,
                member_id=mid,
                at=row.at,
                mentions=len(meta.get("mentions") or ()),
                member_age=(row.at - joined) if joined is not None else None,
                member_messages=count if joined is not None else None,
            )
            verdict = detector.check(message)
            if not verdict.spam:
                continue
            if protected is not None:
                if key not in exempt:
                    exempt[key] = await protected(gid, mid)
                if exempt[key]:
                    continue
            if suspect is None:
                suspect = suspects[key] = Suspect(gid, mid, sample=(row.text or f"[{row.kind}]")[:40], first_at=row.at)
            since = row.at - timedelta(hours=cfg.strikes.window_hours)
            action = verdict.action
            if action is Action.WARN and strikes.count(gid, mid, since, row.at) + 1 >= cfg.strikes.limit:
                action = Action.REMOVE
            for name in verdict.rule_names:
                suspect.rules[name] = suspect.rules.get(name, 0) + 1
            if action is Action.REMOVE:
                suspect.removed = True
            else:
                suspect.warnings += 1
                strikes.add(gid, mid, row.at)
    if suspects:
        ids = sorted({mid for _, mid in suspects})
        async with db.session() as s:
            for cid, name in (await s.exec(select(Contact.id, Contact.name).where(col(Contact.id).in_(ids)))).all():
                names[cid] = name
    for suspect in suspects.values():
        suspect.name = names.get(suspect.member_id, "")
    report.suspects = list(suspects.values())
    return report


Stays = dict[tuple[str, str], list[tuple[datetime, datetime | None]]]


async def _joins(db: Database, groups: Sequence[str] | None) -> Stays:
    # Stays whose join the bot saw: a member from before the bot (join time unknown) is no
    # newcomer, and `_stay_at` answers None for them, as for anyone it has no join of.
    query = select(Membership.group_id, Membership.member_id, Membership.joined_at, Membership.left_at).where(
        col(Membership.joined_at).is_not(None)
    )
    if groups is not None:
        query = query.where(col(Membership.group_id).in_(list(groups)))
    out: Stays = {}
    async with db.session() as s:
        for gid, mid, joined_at, left_at in (await s.exec(query)).all():
            out.setdefault((gid, mid), []).append((joined_at, left_at))
    return out


def _stay_at(stays: Sequence[tuple[datetime, datetime | None]], at: datetime) -> datetime | None:
    """The join time of the stay that contains `at` (None: joined before the bot knew)."""
    best = None
    for joined_at, left_at in stays:
        if joined_at <= at and (left_at is None or at <= left_at) and (best is None or joined_at > best):
            best = joined_at
    return best


async def _messages_before(db: Database, groups: Sequence[str] | None, day: object) -> dict[tuple[str, str], int]:
    """Messages per member before the replay window (from the rollup), for the N-messages
    rule of members who joined before it."""
    query = (
        select(DailyActivity.group_id, DailyActivity.member_id, sa.func.sum(DailyActivity.messages))
        .where(col(DailyActivity.day) < day)
        .group_by(DailyActivity.group_id, DailyActivity.member_id)
    )
    if groups is not None:
        query = query.where(col(DailyActivity.group_id).in_(list(groups)))
    async with db.session() as s:
        return {(g, m): int(n or 0) for g, m, n in (await s.exec(query)).all()}
