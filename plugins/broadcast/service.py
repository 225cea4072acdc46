# Over 500 lines: the broadcasts' jobs, catch-up, claims and sends, with the commands on them.
"""The running side of scheduled broadcasts: scheduler jobs, catch-up at start, claims,
sends through the outbox, and what the chat commands do.

Delivery of one occurrence (`_deliver`):
1. resolve the targets (group ids, `set:name`, `all` = every group the bot is in);
2. claim one row per group in the database (unique key: broadcast, occurrence, group); the
   rows another process or an earlier run already holds are not ours and are not sent;
3. queue the rendered messages on the outbox (paced, jittered) and record sent / failed per
   row from the items' `on_done` callbacks.

At start-up each broadcast looks back from its `checked_at` (the time through which its
occurrences were dealt with): of the occurrences that fell due while the bot was down, the
latest is sent if it is still within the grace period; the others are recorded as missed.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from pydantic import BaseModel

from bot.core.bus import Topic
from bot.core.context import PluginHost
from bot.core.duty import OffDuty
from bot.core.outbox import OutboundItem
from bot.core.platform import SendResult
from bot.core.plugin import Permission
from bot.core.scheduler import Job, Scheduler
from bot.core.templates import Template, TemplateError
from plugins.broadcast.config import PLACEHOLDERS, BroadcastConfig, BroadcastEntry
from plugins.broadcast.models import BroadcastDef, DeliveryState
from plugins.broadcast.schedule import (
    Schedule,
    SpecError,
    describe_duration,
    next_after,
    occurrences,
    require_min_interval,
)
from plugins.broadcast.store import BroadcastStore, Report
from plugins.broadcast.syntax import ALL, HERE, ParsedCommand

log = logging.getLogger("qunbot.plugin.broadcast")

PREFIX = "broadcast:"
# At most this many past occurrences are recorded as missed per broadcast at start-up (a
# every-5-minutes broadcast down for a week would otherwise write thousands of rows).
MAX_CATCH_UP = 1000
WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
STATE_LABELS = {
    DeliveryState.SENT: "已发送",
    DeliveryState.FAILED: "失败",
    DeliveryState.MISSED: "错过",
    DeliveryState.CLAIMED: "待确认",
    DeliveryState.SKIPPED: "跳过",
}


class BroadcastsChanged(BaseModel):
    """A broadcast was made, paused, resumed or deleted: re-read them (no detail needed)."""


BROADCASTS_CHANGED = Topic("broadcasts_changed", BroadcastsChanged)


class Refused(Exception):
    """A command the asker may not run on this broadcast; the message says why."""


@dataclass
class Definition:
    name: str
    source: str  # "yaml" | "chat"
    schedule: Schedule
    targets: list[str]  # group ids, "set:name", "all"
    messages: list[str]  # templates
    grace: timedelta
    trigger: BaseTrigger
    created_in: str | None = None
    created_by: str | None = None

    @property
    def job_id(self) -> str:
        return f"{PREFIX}{self.name}"

    def spec(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule.model_dump(mode="json"),
            "targets": self.targets,
            "messages": self.messages,
            "grace_seconds": int(self.grace.total_seconds()),
        }

    @classmethod
    def from_yaml(cls, name: str, entry: BroadcastEntry, cfg: BroadcastConfig, tz: tzinfo) -> Definition:
        schedule = entry.schedule(tz)
        grace = entry.grace if entry.grace is not None else cfg.default_grace
        return cls(name, "yaml", schedule, list(entry.to), entry.all_messages(), grace, schedule.trigger(tz))

    @classmethod
    def from_row(cls, row: BroadcastDef, tz: tzinfo) -> Definition:
        spec = row.spec or {}
        schedule = Schedule.model_validate(spec["schedule"])
        for text in spec["messages"]:
            Template.parse(text, PLACEHOLDERS)
        return cls(
            row.name,
            "chat",
            schedule,
            list(spec["targets"]),
            list(spec["messages"]),
            timedelta(seconds=int(spec["grace_seconds"])),
            schedule.trigger(tz),
            row.created_in,
            row.created_by,
        )


@dataclass
class _Tracker:
    """Outbox items of one delivery row still to report."""

    remaining: int
    problem: str | None = None
    report: dict[str, Any] | None = None  # what `broadcast_report` says when it is done
    token: int | None = None  # several accounts: the duty token it was claimed under
    sent: int = 0
    handed_over: bool = False  # a part was refused: another account is on duty now


@dataclass
class BroadcastService:
    host: PluginHost
    store: BroadcastStore
    defs: dict[str, Definition] = field(default_factory=dict)
    _jobs: dict[str, Job] = field(default_factory=dict)
    # Stops the `resync` notices (several accounts); called at shutdown.
    unsubscribe: Callable[[], None] = lambda: None
    _unusable: set[str] = field(default_factory=set)  # stored definitions `resync` skipped
    # Stops the duty-gained callbacks (several accounts: `_gained`).
    _stop_gained: Callable[[], None] | None = None

    @property
    def services(self) -> Any:
        return self.host.services

    @property
    def cfg(self) -> BroadcastConfig:
        return self.host.config_for(None)

    @property
    def tz(self) -> tzinfo:
        # The deployment's configured timezone, whatever the host's (and the clock's offset).
        return self.services.config.tz

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler

    def now(self) -> datetime:
        return self.services.clock.now()

    # --- start-up ----------------------------------------------------------------------
    async def start(self) -> None:
        """Build every job from YAML and the database; catch up on what fell due while the
        bot was down (only on the first build in this process, not on a config reload)."""
        now = self.now()
        first_build = not self.scheduler.jobs(PREFIX)
        cfg = self.cfg
        for name, entry in cfg.broadcasts.items():
            unknown = [t[4:] for t in entry.to if t.startswith("set:") and t[4:] not in self.services.config.group_sets]
            if unknown:
                raise ValueError(
                    f"plugins.broadcast.broadcasts.{name}.to: unknown group set {unknown[0]!r} "
                    f"(known: {', '.join(self.services.config.group_sets) or 'none'})"
                )
            self.defs[name] = Definition.from_yaml(name, entry, cfg, self.tz)
        await self.store.ensure_yaml(self.defs, now)
        rows = {row.name: row for row in await self.store.all()}
        for row in rows.values():
            if row.source != "chat" or row.deleted:
                continue
            try:
                definition = Definition.from_row(row, self.tz)
                # Made in chat before the minimum applied to it (or before it was raised).
                require_min_interval(definition.schedule, cfg.min_interval)
                self.defs[row.name] = definition
            except (KeyError, TypeError, ValueError) as exc:
                log.error("broadcast %s: stored definition unusable, skipped: %s", row.name, exc)
        for name, definition in self.defs.items():
            stored = rows.get(name)
            paused = bool(stored and stored.paused)
            if first_build and not paused and stored is not None:
                await self._catch_up(definition, stored.checked_at, now)
            self._schedule(definition, paused)
        for job in self.scheduler.jobs(PREFIX):
            if job.id.removeprefix(PREFIX) not in self.defs:
                self.scheduler.remove(job.id)
        log.info("broadcasts scheduled: %s", ", ".join(self.defs) or "none")
        duty = self.services.duty
        if duty is not None and self._stop_gained is None:
            self._stop_gained = duty.on_duty_gained(self._gained)
            if first_build:
                # The duties this process took at start came before this subscription: a
                # delivery its previous run claimed and never sent (killed mid-broadcast) is
                # taken over now, as for any takeover.
                for gid in await self.resolve(sorted({t for d in self.defs.values() for t in d.targets})):
                    token = duty.token(gid)
                    if token is not None:
                        await self._gained(gid, token)

    def _schedule(self, definition: Definition, paused: bool) -> None:
        first = definition.trigger.get_next_fire_time(None, self.now())
        if first is None or first < self.now():
            # A one-off whose time has passed (APScheduler's date trigger still returns it).
            self.scheduler.remove(definition.job_id)
            self._jobs.pop(definition.job_id, None)
            return
        name = definition.name
        job = self.scheduler.add(
            definition.job_id,
            definition.trigger,
            functools.partial(self._fire, name),
            grace=definition.grace,
            on_missed=functools.partial(self._on_missed, name),
        )
        if paused:
            self.scheduler.pause(definition.job_id)
        self._jobs[definition.job_id] = job

    async def resync(self) -> None:
        """Another process made, paused, resumed or deleted a broadcast (or our notices listener
        came back from an outage): re-read the stored definitions and bring the jobs in line.
        No catch-up: what fell due meanwhile was the other processes' to send."""
        rows = {row.name: row for row in await self.store.all()}
        for name, row in rows.items():
            definition = self.defs.get(name)
            if row.source == "chat" and row.deleted:
                if definition is not None:
                    self.scheduler.remove(definition.job_id)
                    self._jobs.pop(definition.job_id, None)
                    del self.defs[name]
                    log.info("broadcast %s: deleted in another process", name)
                continue
            if definition is None and row.source == "chat":
                try:
                    definition = Definition.from_row(row, self.tz)
                    require_min_interval(definition.schedule, self.cfg.min_interval)
                except (KeyError, TypeError, ValueError) as exc:
                    if name not in self._unusable:  # said once, not at every resync
                        self._unusable.add(name)
                        log.error("broadcast %s: stored definition unusable, skipped: %s", name, exc)
                    continue
                self.defs[name] = definition
                self._schedule(definition, bool(row.paused))
                log.info("broadcast %s: made in another process, scheduled", name)
            elif definition is not None and self.paused(definition) != bool(row.paused):
                self.scheduler.pause(definition.job_id, bool(row.paused))

    async def _announce(self) -> None:
        """Tell the other processes sharing the database (several accounts) to `resync`."""
        bus = self.services.bus
        if bus is not None:
            await bus.publish(BROADCASTS_CHANGED, BroadcastsChanged())

    def close(self) -> None:
        """Remove the jobs this instance added (a reload's new instance has replaced its own)."""
        if self._stop_gained is not None:
            self._stop_gained()
            self._stop_gained = None
        for job_id, job in self._jobs.items():
            if self.scheduler.get(job_id) is job:
                self.scheduler.remove(job_id)
        self._jobs.clear()

    async def _catch_up(self, definition: Definition, checked_at: datetime | None, now: datetime) -> None:
        if checked_at is None:
            return
        since = max(checked_at, now - self.cfg.catch_up_limit)
        fires = list(deque(occurrences(definition.trigger, since, now), maxlen=MAX_CATCH_UP))
        if not fires:
            return
        latest = fires[-1]
        in_grace = now - latest <= definition.grace
        missed = fires[:-1] if in_grace else fires
        if missed:
            log.warning(
                "broadcast %s: %d occurrence(s) fell due while the bot was down and are past grace (%s)",
                definition.name,
                len(missed),
                describe_duration(definition.grace),
            )
            await self._record_missed(definition, missed, "机器人离线，超过宽限期")
        if in_grace:
            log.info(
                "broadcast %s: sending the %s occurrence late (within grace)",
                definition.name,
                latest.astimezone(self.tz).isoformat(),
            )
            await self._deliver(definition, latest)

    # --- firing --------------------------------------------------------------------------
    async def _fire(self, name: str, fire: datetime) -> None:
        definition = self.defs.get(name)
        if definition is None:
            return
        following = next_after(definition.trigger, fire)
        if following is not None and following <= self.now():
            # A newer occurrence is already due (the loop was stalled): send that one only.
            await self._record_missed(definition, [fire], "已有更新的一次到期")
        else:
            await self._deliver(definition, fire, only_if_active=True)

    async def _gained(self, gid: str, token: int) -> None:
        """Several accounts: this account has just taken the duty in `gid`. The latest
        occurrence of each broadcast to it that fell due within its grace period, and that is
        not sent yet, is sent now: it fell due while nobody held the group (a handover), or the
        account that claimed it lost the duty before sending it. `reclaim` makes it once."""
        now = self.now()
        for definition in list(self.defs.values()):
            if not self.reaches(definition, gid) or self.paused(definition) or not self.host.enabled_in(gid):
                continue
            latest = _latest_fire(definition.trigger, now - definition.grace, now + timedelta(microseconds=1))
            if latest is None:
                continue
            stored = await self.store.get(definition.name)
            # Only an occurrence some account has dealt with (fired): never one from before
            # the broadcast existed, or one the catch-up at start still has to judge.
            if stored is None or stored.checked_at is None or stored.checked_at < latest:
                continue
            claimed = await self.store.reclaim(definition.name, latest, gid, token, now)
            if claimed is None:
                continue
            log.info(
                "broadcast %s: sending the %s occurrence to %s late (this account took the duty there)",
                definition.name,
                latest.astimezone(self.tz).isoformat(),
                gid,
            )
            await self._send(definition, latest, gid, claimed.id, token)

    async def _on_missed(self, name: str, fire: datetime) -> None:
        definition = self.defs.get(name)
        if definition is not None:
            await self._record_missed(definition, [fire], "超过宽限期")

    async def _record_missed(self, definition: Definition, fires: list[datetime], why: str) -> None:
        groups = await self.resolve(definition.targets)
        if groups:
            await self.store.record_missed(definition.name, fires, groups, self.now(), why)
        else:
            await self.store.mark_checked(definition.name, fires[-1])

    async def resolve(self, targets: list[str], present: set[str] | None = None) -> list[str]:
        """Target selectors → group ids, in order, without repeats. `all` is every group the
        bot is in (`present`, when the caller has already asked the platform)."""
        out: dict[str, None] = {}
        for target in targets:
            if target == ALL:
                if present is None:
                    present = {info.id for info in await self.services.platform.groups()}
                for gid in sorted(present):
                    out[gid] = None
            elif target.startswith("set:"):
                members = self.services.config.group_sets.get(target[4:])
                if members is None:
                    log.warning("broadcast: unknown group set %r", target[4:])
                for gid in members or ():
                    out[gid] = None
            else:
                out[target] = None
        return list(out)

    async def _deliver(self, definition: Definition, occurrence: datetime, *, only_if_active: bool = False) -> None:
        present = await self._bot_groups()
        groups = await self.resolve(definition.targets, present)
        if not groups:
            log.warning("broadcast %s: no target group at %s", definition.name, occurrence.isoformat())
            await self.store.mark_checked(definition.name, occurrence)
            return
        states: list[tuple[str, str, str | None]] = []
        duty = self.services.duty
        for gid in groups:
            if duty is not None and not duty.on_duty(gid):
                # Several accounts: the one on duty in the group claims and sends (a claim made
                # here would only be refused at the outbox, and block the one that may send).
                continue
            if not self.host.enabled_in(gid):
                states.append((gid, DeliveryState.SKIPPED.value, "本群已关闭定时群发"))
            elif present is not None and gid not in present:
                # Not attempted: a send would only fail, after retries that hold up the outbox.
                states.append((gid, DeliveryState.FAILED.value, "机器人不在该群"))
            else:
                states.append((gid, DeliveryState.CLAIMED.value, None))
        if not states:
            # Every target group is another account's; marked as dealt with, so that an account
            # that takes a group's duty soon after knows this occurrence fell due (`_gained`).
            await self.store.mark_checked(definition.name, occurrence)
            return
        tokens = {gid: duty.token(gid) for gid, _state, _detail in states} if duty is not None else None
        won = await self.store.claim(
            definition.name, occurrence, states, self.now(), only_if_active=only_if_active, tokens=tokens
        )
        if won is None:
            return  # paused or deleted, possibly by another process sharing the database
        if len(won) < len(states):
            log.info(
                "broadcast %s at %s: %d of %d group(s) already claimed elsewhere",
                definition.name,
                occurrence.isoformat(),
                len(states) - len(won),
                len(states),
            )
        details = {gid: detail for gid, _state, detail in states}
        for claimed in won:
            if claimed.state == DeliveryState.CLAIMED:
                token = tokens.get(claimed.group_id) if tokens is not None else None
                await self._send(definition, occurrence, claimed.group_id, claimed.id, token)
            else:  # skipped or failed before sending: reported now
                self.services.publish(
                    "broadcast_report",
                    {
                        **self._report(definition, occurrence, claimed.group_id),
                        "state": str(claimed.state),
                        "detail": details.get(claimed.group_id),
                    },
                )

    async def _bot_groups(self) -> set[str] | None:
        """The groups the bot is in now, or None when the platform cannot say (then every
        named target is attempted and the outbox reports what failed)."""
        # Read fresh: a delivery is rare, and it should go by who the bot is with now.
        present = await self.services.groups.present(fresh=True)
        if present is None:
            log.warning("broadcast: could not list the bot's groups; sending to every target")
            return None
        return set(present)

    async def _send(
        self, definition: Definition, occurrence: datetime, gid: str, delivery_id: int, token: int | None = None
    ) -> None:
        await self.services.groups.info(gid)  # fills the display-name cache for {group}
        values = self.values(occurrence, gid)
        ctx = self.host.context(group_id=gid)
        items: list[OutboundItem] = []
        for text in definition.messages:
            items.extend(ctx.say(Template.parse(text, PLACEHOLDERS).render(values)))
        if not items:
            await self.store.finish(delivery_id, DeliveryState.FAILED, "内容为空", self.now(), token=token)
            return
        tracker = _Tracker(len(items), report=self._report(definition, occurrence, gid), token=token)
        for item in items:
            item.on_done = functools.partial(self._item_done, tracker, delivery_id)

    async def _item_done(
        self, tracker: _Tracker, delivery_id: int, result: SendResult | None, error: Exception | None
    ) -> None:
        tracker.remaining -= 1
        if isinstance(error, OffDuty):
            # Another account took the group's duty before this part went out. If nothing of
            # this delivery was sent, it is left claimed: the account on duty now claims it
            # again and sends it (`_gained`). If some part went out, it is not sent twice.
            tracker.handed_over = True
        elif error is not None or result is None or not result.ok:
            tracker.problem = tracker.problem or str(error or (result.error if result else None) or "发送失败")
        else:
            tracker.sent += 1
        if tracker.remaining == 0:
            if tracker.handed_over and not tracker.sent:
                log.info("broadcast: delivery %d left to the account now on duty", delivery_id)
                return
            if tracker.handed_over:
                tracker.problem = tracker.problem or "发送中途换了值班账号，其余部分未发送"
            state = DeliveryState.FAILED if tracker.problem else DeliveryState.SENT
            await self.store.finish(delivery_id, state, tracker.problem, self.now(), token=tracker.token)
            if tracker.report is not None:
                self.services.publish(
                    "broadcast_report", {**tracker.report, "state": state.value, "detail": tracker.problem}
                )

    def _report(self, definition: Definition, occurrence: datetime, gid: str) -> dict[str, Any]:
        return {"broadcast": definition.name, "occurrence": occurrence.isoformat(), "group_id": gid}

    def values(self, occurrence: datetime, gid: str) -> dict[str, object]:
        local = occurrence.astimezone(self.tz)
        return {
            "date": local.strftime("%Y-%m-%d"),
            "time": local.strftime("%H:%M"),
            "weekday": WEEKDAYS[local.weekday()],
            "group": self.services.groups.display_name(gid),
            "year": local.year,
            "month": local.month,
            "day": local.day,
        }

    # --- what the commands do ------------------------------------------------------------
    def find(self, ref: str) -> Definition | None:
        key = ref.strip().lstrip("#＃").removeprefix(PREFIX)
        return self.defs.get(key)

    async def archived(self, ref: str) -> Definition | None:
        """A deleted chat-made broadcast, for its report."""
        row = await self.store.get(ref.strip().lstrip("#＃"))
        if row is None or row.source != "chat":
            return None
        try:
            return Definition.from_row(row, self.tz)
        except (KeyError, TypeError, ValueError):
            return None

    def next_fire(self, definition: Definition) -> datetime | None:
        job = self.scheduler.get(definition.job_id)
        if job is None:
            return None
        if job.paused:
            return definition.trigger.get_next_fire_time(None, self.now())
        return job.next_fire

    def paused(self, definition: Definition) -> bool:
        job = self.scheduler.get(definition.job_id)
        return bool(job and job.paused)

    def reaches(self, definition: Definition, gid: str) -> bool:
        """Whether the broadcast's selectors name this group (directly, by set, or all)."""
        sets = self.services.config.group_sets
        return any(t in (ALL, gid) or (t.startswith("set:") and gid in sets.get(t[4:], ())) for t in definition.targets)

    def check_manage(self, definition: Definition, level: Permission, group_id: str | None) -> None:
        """Bot admins manage every broadcast; a group admin only chat-made ones whose one
        target is the group they are speaking in."""
        if level >= Permission.BOT_ADMIN:
            return
        if definition.source == "yaml":
            raise Refused(f"群发「{definition.name}」写在配置文件里，只有机器人管理员可以管理。")
        if group_id is None or definition.targets != [group_id]:
            raise Refused("群管理员只能管理只发往本群的定时群发；多群群发需要机器人管理员。")

    async def create(
        self, parsed: ParsedCommand, *, asker: str, level: Permission, group_id: str | None
    ) -> tuple[Definition, str]:
        now = self.now()
        targets = parsed.targets if parsed.targets is not None else [HERE]
        resolved: list[str] = []
        for target in targets:
            if target == HERE:
                if group_id is None:
                    raise SpecError("私聊里请写上目标群，例如 群=g1,g2 或 全部群")
                resolved.append(group_id)
            elif target.startswith("set:"):
                if target[4:] not in self.services.config.group_sets:
                    known = "、".join(self.services.config.group_sets) or "（无）"
                    raise SpecError(f"没有叫“{target[4:]}”的群分组。已有分组：{known}")
                resolved.append(target)
            elif target == ALL:
                resolved.append(ALL)
            else:
                resolved.append(await self._group_id(target))
        resolved = list(dict.fromkeys(resolved))
        if ALL in resolved:
            resolved = [ALL]
        if level < Permission.BOT_ADMIN and resolved != [group_id]:
            raise Refused("群管理员只能给本群设置定时群发；发往多个群或全部群需要机器人管理员。")
        schedule = parsed.schedule
        require_min_interval(schedule, self.cfg.min_interval)
        trigger = schedule.trigger(self.tz)
        first = trigger.get_next_fire_time(None, now)
        if first is None or first < now:
            raise SpecError(f"时间 {schedule.describe()} 已经过去了。")
        for text in parsed.messages:
            try:
                Template.parse(text, PLACEHOLDERS)
            except TemplateError as exc:
                raise SpecError(
                    f"内容里的占位符有误：{exc}。可用：{' '.join('{' + p + '}' for p in PLACEHOLDERS)}；"
                    "花括号本身请写成 {{ 和 }}"
                ) from None
        grace = parsed.grace if parsed.grace is not None else self.cfg.default_grace
        definition = Definition("", "chat", schedule, resolved, parsed.messages, grace, trigger, group_id, asker)
        row = await self.store.create_chat(definition.spec(), asker, group_id, now)
        definition.name = row.name
        self.defs[definition.name] = definition
        self._schedule(definition, paused=False)
        await self._announce()
        return definition, self.describe(definition)

    async def _group_id(self, ref: str) -> str:
        """A group id, or a group's configured name or topic."""
        config = self.services.config
        known: dict[str, str] = {g.id: g.id for g in config.groups}
        for entry in config.groups:
            if entry.name:
                known.setdefault(entry.name, entry.id)
        for info in await self.services.platform.groups():
            known.setdefault(info.id, info.id)
            if info.topic:
                known.setdefault(info.topic, info.id)
        if ref in known:
            return known[ref]
        raise SpecError(f"不认识的群：{ref}（写群ID或群名；发送“群列表”查看）")

    async def set_paused(self, definition: Definition, paused: bool) -> None:
        await self.store.set_paused(definition.name, paused, self.now())
        self.scheduler.pause(definition.job_id, paused)
        await self._announce()

    async def delete(self, definition: Definition) -> None:
        await self.store.mark_deleted(definition.name)
        self.scheduler.remove(definition.job_id)
        self._jobs.pop(definition.job_id, None)
        self.defs.pop(definition.name, None)
        await self._announce()

    async def report(self, definition: Definition) -> Report:
        return await self.store.report(definition.name)

    # --- texts ---------------------------------------------------------------------------
    def when(self, at: datetime | None) -> str:
        if at is None:
            return "—"
        local = at.astimezone(self.tz)
        fmt = "%m-%d %H:%M" if local.year == self.now().astimezone(self.tz).year else "%Y-%m-%d %H:%M"
        return local.strftime(fmt)

    def targets_text(self, definition: Definition) -> str:
        names = []
        for target in definition.targets:
            if target == ALL:
                names.append("全部群")
            elif target.startswith("set:"):
                names.append(f"分组 {target[4:]}")
            else:
                names.append(self.services.groups.display_name(target))
        return "、".join(names)

    def status(self, definition: Definition) -> str:
        if self.paused(definition):
            return "已暂停"
        nxt = self.next_fire(definition)
        return f"下次 {self.when(nxt)}" if nxt else "已结束"

    def describe(self, definition: Definition) -> str:
        ref = definition.name if definition.source == "yaml" else f"#{definition.name}"
        preview = definition.messages[0].replace("\n", " ")
        preview = preview if len(preview) <= 24 else preview[:24] + "…"
        count = f"（共 {len(definition.messages)} 条）" if len(definition.messages) > 1 else ""
        return (
            f"{ref} {definition.schedule.describe()} → {self.targets_text(definition)}，{self.status(definition)}："
            f"{preview}{count}"
        )

    def report_text(self, definition: Definition, report: Report) -> str:
        ref = definition.name if definition.source == "yaml" else f"#{definition.name}"
        head = f"群发 {ref} 报告（{definition.schedule.describe()} → {self.targets_text(definition)}）"
        if not report.per_group:
            return f"{head}\n还没有到期过。{self.status(definition)}"
        lines = [head, f"共 {report.occurrences} 次，合计 {_counts(report.totals)}", "按群："]
        for gid, counts in sorted(report.per_group.items()):
            lines.append(f"  {self.services.groups.display_name(gid)}（{gid}）：{_counts(counts)}")
        lines.append("最近：")
        for occurrence, counts in report.per_occurrence[:5]:
            lines.append(f"  {self.when(occurrence)}：{_counts(counts)}")
        for occurrence, gid, detail in report.failures[:3]:
            lines.append(f"  失败 {self.when(occurrence)} {gid}：{detail}")
        return "\n".join(lines)


def _latest_fire(trigger: BaseTrigger, since: datetime, until: datetime) -> datetime | None:
    """The last fire time in [since, until], or None."""
    latest = None
    for fire in occurrences(trigger, since, until):
        latest = fire
    return latest


def _counts(counts: dict[str, int]) -> str:
    order = (
        DeliveryState.SENT,
        DeliveryState.FAILED,
        DeliveryState.MISSED,
        DeliveryState.CLAIMED,
        DeliveryState.SKIPPED,
    )
    parts = [f"{STATE_LABELS[s]} {counts.get(s.value, 0)}" for s in order[:3]]
    parts += [f"{STATE_LABELS[s]} {counts[s.value]}" for s in order[3:] if counts.get(s.value)]
    return " · ".join(parts)
