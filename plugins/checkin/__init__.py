# Over 500 lines: the declaration and a handler per chat command; the logic is in the modules beside it.
"""群签到 / 打卡: daily check-in with streaks, points, make-ups, leaderboards and calendars.

- Check-in words per group (`keywords`, default 签到 / 打卡); one check-in per member,
  group and business day. The day is the configured timezone's, starting at
  `day_starts_at` — never the host's timezone.
- Points go to the shared ledger (bot.storage.points): base points, streak bonuses,
  activity (发言) points with a daily cap, invite points (taken back when the newcomer
  leaves soon), admin adjustments, make-up costs. Totals are ledger sums.
- Queries: 我的积分, 签到榜, 连续签到榜, 积分榜, 签到日历, 积分明细. Tie rules: see
  plugins/checkin/service.py.
- Admin commands (加分, 扣分, 代补签) need Permission.GROUP_ADMIN; the core refuses others.
- While the database is unreachable, check-ins and invite awards are held (`pending.py`) and
  done when it is back (the member is told both times); the other commands are refused by
  the dispatcher with a hint to retry.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, cast

from bot.core.clock import business_day, day_start
from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage, Member, MembersJoined, MembersLeft, MessageKind, PrivateMessage
from bot.core.plugin import Command, Permission, Plugin, ShutdownIncomplete
from bot.core.scheduler import Job as SchedulerJob
from bot.core.scheduler import cron_trigger, date_trigger
from bot.core.templates import Template
from bot.storage.health import is_outage
from bot.storage.points import PointsLedger
from bot.storage.recorder import event_from_json, event_to_json
from plugins.checkin import config as cfgmod
from plugins.checkin.activity import REASON as ACTIVITY_REASON
from plugins.checkin.activity import ActivityBuffer, BusinessDays, activity_ref
from plugins.checkin.config import CheckinConfig
from plugins.checkin.pending import Job, PendingWork, pending_work
from plugins.checkin.replies import MAX_ENTRIES, Batch, Entry, Kind, render_batch, render_summary
from plugins.checkin.service import CheckinService, MakeupRefused
from plugins.checkin.views import (
    TargetError,
    cn_day,
    month_bounds,
    parse_amount,
    parse_day,
    parse_month,
    render_calendar,
    render_history,
    render_points_board,
    render_streak_board,
    render_today_board,
    resolve_targets,
)

if TYPE_CHECKING:
    from bot.config.models import BotConfig

FLUSH_JOB = "checkin:activity_flush"
REPLY_JOB = "checkin:replies:"  # + group id: the merged reply of the open window
SUMMARY_JOB = "checkin:summary:"  # + HH:MM: the daily summaries due then
# Looked up once: an enum member lookup costs more than the rest of a check.
_TEXT, _SYSTEM = MessageKind.TEXT, MessageKind.SYSTEM
HISTORY_SIZE = 10
_OUTAGE_FULL = "数据库暂时连不上，现在记不下更多签到了，请过几分钟再发一次。"

plugin = Plugin(
    "checkin",
    title="签到打卡",
    aliases=("签到", "打卡", "积分"),
    config=CheckinConfig,
    priority=45,
    description="每日签到、连续签到奖励、积分、补签、排行榜和签到日历",
)


@dataclass(slots=True)
class ActivityPlan:
    """What counting a message needs from one resolved config, derived once per config
    rather than per message: the rules' values and the business day's bounds."""

    config: CheckinConfig
    bot_config: object  # the bot config the timezone was read from
    enabled: bool
    min_chars: int
    points: int
    cap: int
    min_interval: timedelta
    days: BusinessDays

    @classmethod
    def build(cls, config: CheckinConfig, bot_config: BotConfig) -> ActivityPlan:
        act = config.activity
        return cls(
            config,
            bot_config,
            act.enabled,
            act.min_chars,
            act.points,
            act.daily_cap,
            timedelta(seconds=act.min_interval_seconds),
            BusinessDays(bot_config.tz, config.day_starts_at),
        )


@dataclass
class CheckinState:
    host: PluginHost
    service: CheckinService
    ledger: PointsLedger
    activity: ActivityBuffer
    pending: PendingWork
    # (group, board) → when it was last shown, for the board cooldown.
    boards_shown: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # id(resolved config) → its plan (the plan holds the config, so the id stays its own).
    plans: dict[int, ActivityPlan] = field(default_factory=dict)
    # group → the merged replies of its open window (`replies.mode` merged / silent).
    batches: dict[str, Batch] = field(default_factory=dict)
    reply_jobs: dict[str, SchedulerJob] = field(default_factory=dict)  # group → the job that says its batch

    def plan_for(self, config: CheckinConfig) -> ActivityPlan:
        plan = self.plans.get(id(config))
        bot_config = self.host.services.config
        if plan is None or plan.config is not config or plan.bot_config is not bot_config:
            plan = self.plans[id(config)] = ActivityPlan.build(config, bot_config)
        return plan

    def schedule_flush(self) -> None:
        """Make sure pending activity points get written within `flush_seconds`."""
        scheduler = self.host.services.scheduler
        if scheduler.get(FLUSH_JOB) is not None:
            return
        clock = self.host.services.clock
        delay = timedelta(seconds=self.host.config_for(None).activity.flush_seconds)
        scheduler.add(
            FLUSH_JOB,
            date_trigger(clock.now() + delay, clock.tz),
            self._flush_job,
            deferred=True,
            grace=timedelta(days=1),
            on_missed=self._flush_job,
        )

    async def _flush_job(self, _fire: datetime) -> None:
        try:
            await self.activity.flush()
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The tallies stay pending; they are written as soon as the database is back.
            health = self.host.services.require_db().health
            health.failed(exc)
            self.pending.hold("activity-flush", self.activity.flush_all, "activity flushes held")

    def answer(self, ctx: Context, entry: Entry, text: str) -> None:
        """Answer a check-in: at once (`each`), or in the group's merged message when its
        window closes (`merged`, and `silent` for what was not recorded)."""
        # Context.config is typed as the base PluginConfig; this plugin's is a CheckinConfig.
        config: CheckinConfig = ctx.config  # type: ignore[assignment]
        event = ctx.event
        if config.replies.mode == "each" or not isinstance(event, GroupMessage):
            ctx.reply(text, mention=config.mention)
            return
        if config.replies.mode == "silent" and entry.kind.confirms:
            return
        gid = event.group_id
        batch = self.batches.get(gid)
        if batch is None:
            batch = self.batches[gid] = Batch()
            clock = self.host.services.clock
            when = clock.now() + timedelta(seconds=config.replies.window_seconds)
            # Deferred: a shutdown says what is waiting instead of dropping it.
            self.reply_jobs[gid] = self.host.services.scheduler.add(
                REPLY_JOB + gid,
                date_trigger(when, clock.tz),
                functools.partial(self._flush_fired, gid),
                deferred=True,
                grace=timedelta(days=1),
                on_missed=functools.partial(self._flush_fired, gid),
            )
        batch.add(entry)
        if len(batch) >= MAX_ENTRIES:
            self._say_batch(gid)

    async def _flush_fired(self, group_id: str, _fire: datetime) -> None:
        await self.flush_replies(group_id)

    async def flush_replies(self, group_id: str | None = None) -> None:
        """Say the merged replies of one group's window (or every group's: shutdown)."""
        for gid in [group_id] if group_id is not None else list(self.batches):
            self._say_batch(gid)

    def _say_batch(self, group_id: str) -> None:
        job = self.reply_jobs.pop(group_id, None)
        scheduler = self.host.services.scheduler
        if job is not None and scheduler.get(job.id) is job:  # not a reloaded state's job of that id
            scheduler.remove(job.id)
        batch = self.batches.pop(group_id, None)
        if not batch:
            return
        host = self.host
        config: CheckinConfig = host.config_for(group_id)
        window = (f"{config.window.start:%H:%M}", f"{config.window.end:%H:%M}") if config.window else None
        messages = render_batch(
            batch.entries,
            config.texts,
            mention=config.mention,
            window=window,
            group=host.services.groups.display_name(group_id),
            max_lines=config.replies.max_lines,
            max_chars=host.services.outbox.settings.max_chars,
            silent=config.replies.mode == "silent",
        )
        ctx = host.context(group_id=group_id)
        for message in messages:
            ctx.say(message.text, message.mentions)

    def schedule_summaries(self) -> None:
        """One daily job per distinct `replies.summary_at` among the group configs."""
        scheduler, tz = self.host.services.scheduler, self.host.services.clock.tz
        scheduler.remove_namespace(SUMMARY_JOB)
        # The host's settings hold this plugin's CheckinConfig, typed as the base PluginConfig.
        times = {c.replies.summary_time for c in self.host.settings.configs()}  # type: ignore[attr-defined]
        for at in sorted(t for t in times if t is not None):
            scheduler.add(
                f"{SUMMARY_JOB}{at:%H:%M}",
                cron_trigger(f"{at.minute} {at.hour} * * *", tz),
                functools.partial(self.post_summaries, at=at),
                grace=timedelta(minutes=30),
            )

    async def post_summaries(self, fire: datetime, at: time) -> None:
        """The day's check-in summary in every group whose summary is due at `at` and that
        had check-ins that day (a day without any says nothing)."""
        host, tz = self.host, self.host.services.clock.tz
        await self.flush_replies()  # the merged replies come before the summary
        days: dict[str, date] = {}
        # The groups the bot is in (each then one indexed query); the database's list when
        # the platform cannot say.
        present = await host.services.groups.present()
        candidates = (
            sorted(present) if present is not None else await self.service.groups_since(fire - timedelta(days=2))
        )
        for gid in candidates:
            config: CheckinConfig = host.config_for(gid)
            if config.replies.summary_time != at or not host.enabled_in(gid):
                continue
            days[gid] = business_day(fire, tz, config.day_starts_at)
        for gid, day in days.items():
            config = host.config_for(gid)
            try:
                today = await self.service.today_board(gid, day)
                streaks = await self.service.streak_board(gid, day) if today else []
            except Exception as exc:
                if not is_outage(exc):
                    raise
                host.log.warning("no check-in summary for %s on %s: the database is unreachable", gid, day)
                continue
            if not today:
                continue
            shown = [r.member_id for r in today[: config.top_n]] + [r.member_id for r in streaks[:5]]
            ctx = host.context(group_id=gid)
            names = await _names(ctx, self, gid, shown)
            group = host.services.groups.display_name(gid)
            ctx.say(render_summary(config.texts, day, group, today, streaks, names, config.top_n, tz))


@plugin.state
async def _state(host: PluginHost) -> CheckinState:
    db = host.services.db
    if db is None:
        raise RuntimeError("the check-in plugin needs the database (storage.url)")
    ledger = PointsLedger(db)
    # A reload builds a new state: the old one writes its tallies in its shutdown hook.
    host.services.scheduler.remove(FLUSH_JOB)
    host.services.scheduler.remove_namespace(REPLY_JOB)
    journal = host.services.data_file("held-checkins.jsonl") if host.services.data_file is not None else None
    state = CheckinState(
        host, CheckinService(db, ledger), ledger, ActivityBuffer(ledger), pending_work(db.health, journal)
    )
    state.activity.on_pending = state.schedule_flush
    await state.pending.restore(lambda record: _rebuild(state, record))
    state.schedule_summaries()
    return state


@plugin.on_shutdown
async def _flush_on_shutdown(host: PluginHost) -> None:
    if isinstance(host.state, CheckinState):
        state = host.state
        await state.pending.run_now()
        # After the held check-ins: those just done are in the merged message too. The outbox
        # is drained after the plugins' shutdown, so the message goes out before the exit.
        await state.flush_replies()
        try:
            await state.activity.flush()
        except Exception as exc:
            if not is_outage(exc):
                raise
            _hold_activity(state)
            await state.pending.settle()
            # Nothing is lost (journalled, done at the next start), but the final flush did
            # not reach the database: `qunbot run` says so with its exit code.
            raise ShutdownIncomplete(
                f"activity points not written (database unreachable); held in "
                f"{state.pending.journal} for the next start"
            ) from exc


# --- helpers ----------------------------------------------------------------------------
def _tz(ctx: Context) -> tzinfo:
    # The deployment's configured timezone (not the clock's offset, not the host's).
    return ctx.services.config.tz


def _today(ctx: Context, config: CheckinConfig) -> date:
    return business_day(ctx.now(), _tz(ctx), config.day_starts_at)


def _month_start(ctx: Context, config: CheckinConfig, today: date) -> datetime:
    return day_start(today.replace(day=1), _tz(ctx), config.day_starts_at)


def _render(text: str, fields: tuple[str, ...], values: dict[str, object]) -> str:
    return Template.parse(text, fields).render(values)


def _group_name(ctx: Context, event: GroupMessage) -> str:
    return ctx.services.groups.display_name(event.group_id, event.group_topic)


async def _roster(ctx: Context, group_id: str) -> list[Member]:
    try:
        return await ctx.services.platform.members(group_id)
    except Exception:  # names are a nicety: a platform hiccup must not fail the command
        ctx.log.warning("could not read the member list of %s", group_id, exc_info=True)
        return []


async def _names(ctx: Context, state: CheckinState, group_id: str, ids: list[str]) -> dict[str, str]:
    names = await state.service.names(group_id, ids)
    names.update({m.id: m.display for m in await _roster(ctx, group_id) if m.name})
    return names


def _board_allowed(ctx: Context, state: CheckinState, config: CheckinConfig, group_id: str, kind: str) -> bool:
    now = ctx.now()
    last = state.boards_shown.get((group_id, kind))
    if last is not None and now - last < timedelta(seconds=config.board_cooldown_seconds):
        return False
    state.boards_shown[(group_id, kind)] = now
    return True


def _hint(config: CheckinConfig) -> str:
    return f"发送“{config.keywords[0]}”打卡吧～"


def _bonus_for(config: CheckinConfig) -> Callable[[int], int]:
    rules = config.points.streak_bonuses
    return lambda streak: sum(b.points for b in rules if b.pays_on(streak))


# --- check-in ---------------------------------------------------------------------------
@plugin.command("签到", help="每日签到，领取积分", words_from=lambda c: c.keywords)
async def check_in(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    now, tz = ctx.now(), _tz(ctx)
    local = now.astimezone(tz)
    member = event.sender
    texts = config.texts
    if config.window is not None and not config.window.contains(local.time()):
        state.answer(
            ctx,
            Entry(Kind.OUTSIDE, member),
            _render(
                texts.outside_window,
                cfgmod.WINDOW_FIELDS,
                {
                    "member": member.display,
                    "start": f"{config.window.start:%H:%M}",
                    "end": f"{config.window.end:%H:%M}",
                    "time": f"{local:%H:%M}",
                },
            ),
        )
        return
    day = business_day(now, tz, config.day_starts_at)
    base = config.points.base
    if config.points.random_max:
        base += ctx.services.rng.randint(0, config.points.random_max)
    health = ctx.services.require_db().health
    if health.up:
        try:
            await _apply_check_in(ctx, event, config, state, day, now, base, held=False)
            return
        except Exception as exc:
            if not is_outage(exc):
                raise
            health.failed(exc)
    # The database is away: hold the check-in (with the time it was sent) until it is back.
    key = f"checkin:{event.group_id}:{member.id}:{day}"
    if key in state.pending:
        state.answer(ctx, Entry(Kind.HELD, member, day), texts.held_again)
        return
    record = {
        "kind": "checkin",
        "event": event_to_json(event),
        "day": day.isoformat(),
        "at": now.isoformat(),
        "base": base,
    }
    if state.pending.hold(
        key, lambda: _apply_check_in(ctx, event, config, state, day, now, base, held=True), "check-ins held", record
    ):
        state.answer(ctx, Entry(Kind.HELD, member, day), texts.held)
    else:
        state.answer(ctx, Entry(Kind.NOT_HELD, member, day), _OUTAGE_FULL)


async def _apply_check_in(
    ctx: Context,
    event: GroupMessage,
    config: CheckinConfig,
    state: CheckinState,
    day: date,
    now: datetime,
    base: int,
    *,
    held: bool,
) -> None:
    """Check in and reply; `held`: done late (after an outage), said so before the reply."""
    member, texts = event.sender, config.texts
    await state.activity.flush(event.group_id, member.id)  # so the reported total is the ledger's
    out = await state.service.check_in(
        event.group_id, member.id, member.display, day, now, base=base, bonus_for=_bonus_for(config)
    )
    values: dict[str, object] = {
        "member": member.display,
        "rank": out.rank,
        "streak": out.streak,
        "longest": out.longest,
        "total": out.total,
        "days": out.days,
        "date": cn_day(day),
        "time": f"{now.astimezone(_tz(ctx)):%H:%M}",
        "group": _group_name(ctx, event),
    }
    prefix = texts.held_done if held else ""
    if not out.created:
        text = prefix + _render(texts.already, cfgmod.ALREADY_FIELDS, values)
        state.answer(ctx, Entry(Kind.ALREADY, member, day, values), text)
        return
    note = (
        _render(texts.bonus_note, cfgmod.BONUS_FIELDS, {"streak": out.streak, "bonus": out.bonus}) if out.bonus else ""
    )
    values.update(points=out.points, base=out.base, bonus=out.bonus, bonus_note=note)
    text = prefix + _render(texts.success, cfgmod.SUCCESS_FIELDS, values)
    state.answer(ctx, Entry(Kind.LATE if held else Kind.DONE, member, day, values), text)


def _hold_activity(state: CheckinState) -> None:
    """Stopping with the database away: the unwritten activity points go to the journal (one
    entry), written at the next start."""
    rows = state.activity.take_pending()
    if not rows:
        return
    record = {
        "kind": "activity",
        "rows": [[g, m, d.isoformat(), n, cap, at.isoformat()] for g, m, d, n, cap, at in rows],
    }
    rebuilt = _rebuild_activity(state, record)
    if rebuilt is not None:
        state.pending.hold(f"activity:{rows[0][5].isoformat()}:{len(rows)}", rebuilt[0], rebuilt[1], record)


def _rebuild_activity(state: CheckinState, record: dict[str, Any]) -> tuple[Job, str] | None:
    try:
        rows = [
            (str(g), str(m), activity_ref(date.fromisoformat(d)), int(n), int(cap), datetime.fromisoformat(at))
            for g, m, d, n, cap, at in record["rows"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        state.host.log.warning("held activity points could not be read back (%s): %s", exc, record)
        return None

    async def write() -> None:
        # One transaction: all or nothing (rows from one stop have distinct keys).
        await state.ledger.accumulate_many(ACTIVITY_REASON, rows)

    return write, "activity points held"


def _rebuild(state: CheckinState, record: dict[str, Any]) -> tuple[Job, str] | None:
    """Held work from its journal line, after a restart."""
    kind = record.get("kind")
    if kind == "activity":
        return _rebuild_activity(state, record)
    if kind in _INVITE_JOBS:
        return _rebuild_invite_job(state, record)
    return _rebuild_check_in(state, record)


def _rebuild_check_in(state: CheckinState, record: dict[str, Any]) -> tuple[Job, str] | None:
    """A check-in held before a restart, from its journal line."""
    if record.get("kind") != "checkin":
        return None
    try:
        event = event_from_json(record["event"])
        day, now, base = date.fromisoformat(record["day"]), datetime.fromisoformat(record["at"]), int(record["base"])
    except (KeyError, TypeError, ValueError) as exc:
        state.host.log.warning("a held check-in could not be read back (%s): %s", exc, record)
        return None
    if not isinstance(event, GroupMessage) or now.tzinfo is None:
        return None
    ctx = state.host.context(event)
    config = state.host.config_for(event.group_id)
    return (lambda: _apply_check_in(ctx, event, config, state, day, now, base, held=True)), "check-ins held"


# --- queries ----------------------------------------------------------------------------
@plugin.command("我的积分", help="我的积分、排名和连续签到", words_from=lambda c: c.words.my_points)
async def my_points(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    gid, member = event.group_id, event.sender
    today = _today(ctx, config)
    await state.activity.flush(gid)
    status = await state.service.status(gid, member.id, today)
    total = await state.ledger.total(gid, member.id)
    left = 0
    if config.makeup.enabled:
        used = await state.service.makeups_since(gid, member.id, _month_start(ctx, config, today))
        left = max(config.makeup.monthly_limit - used, 0)
    ctx.reply(
        _render(
            config.texts.my_points,
            cfgmod.MY_POINTS_FIELDS,
            {
                "member": member.display,
                "total": total,
                "points_rank": await state.service.points_rank(gid, member.id, total),
                "streak": status.streak,
                "longest": status.longest,
                "days": status.days,
                "today": f"已签到（第{status.rank_today}位）" if status.today is not None else "还没签到",
                "makeups_left": left,
            },
        ),
        mention=config.mention,
    )


@plugin.command(
    "我的积分",
    scope="private",
    help="我在各群的签到状态、连续天数和积分（签到请在群里发送）",
    words_from=lambda c: [*c.words.my_points, *c.keywords],
)
async def my_status_in_private(cmd: Command, event: PrivateMessage, ctx: Context, state: CheckinState) -> None:
    """Private 我的积分 (or 签到): one line per group the member is in where check-in is on.
    A check-in itself counts in a group only, so 签到 here answers with the status and says so."""
    services, member = ctx.services, event.sender
    lines = []
    for info in sorted(await services.platform.groups(), key=lambda g: g.id):
        gid = info.id
        if not state.host.enabled_in(gid):
            continue
        if not any(m.id == member.id for m in await services.platform.members(gid)):
            continue
        config: CheckinConfig = state.host.config_for(gid)
        today = business_day(ctx.now(), _tz(ctx), config.day_starts_at)
        await state.activity.flush(gid)
        status = await state.service.status(gid, member.id, today)
        total = await state.ledger.total(gid, member.id)
        done = (
            f"今天已签到（第{status.rank_today}位）" if status.today is not None else f"今天还没签到，{_hint(config)}"
        )
        name = services.groups.display_name(gid, info.topic)
        lines.append(f"「{name}」{done}；连续 {status.streak} 天，共 {status.days} 天，积分 {total}")
    if not lines:
        ctx.reply("你还没有在开启签到的群里。")
        return
    keywords = cast(CheckinConfig, state.host.settings.default).keywords
    head = "签到要在群里发送哦。" if cmd.typed in keywords else ""
    ctx.reply("\n".join([f"{head}你的签到和积分：", *lines]))


@plugin.command("签到榜", help="今日签到排行", words_from=lambda c: c.words.today_board)
async def today_board(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    if not _board_allowed(ctx, state, config, event.group_id, "today"):
        return
    day = _today(ctx, config)
    rows = await state.service.today_board(event.group_id, day)
    names = await _names(ctx, state, event.group_id, [r.member_id for r in rows[: config.top_n]])
    ctx.reply(render_today_board(rows, names, day, config.top_n, _tz(ctx), event.sender.id, _hint(config)))


@plugin.command("连续签到榜", help="连续签到排行", words_from=lambda c: c.words.streak_board)
async def streak_board(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    if not _board_allowed(ctx, state, config, event.group_id, "streak"):
        return
    rows = await state.service.streak_board(event.group_id, _today(ctx, config))
    names = await _names(ctx, state, event.group_id, [r.member_id for r in rows[: config.top_n]])
    ctx.reply(render_streak_board(rows, names, config.top_n, event.sender.id))


@plugin.command("积分榜", help="积分排行", words_from=lambda c: c.words.points_board)
async def points_board(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    if not _board_allowed(ctx, state, config, event.group_id, "points"):
        return
    await state.activity.flush(event.group_id)
    rows = await state.service.points_board(event.group_id)
    names = await _names(ctx, state, event.group_id, [r.member_id for r in rows[: config.top_n]])
    ctx.reply(render_points_board(rows, names, config.top_n, event.sender.id))


@plugin.command("签到日历", usage="[月份，如 2026-11]", help="我的月度签到日历", words_from=lambda c: c.words.calendar)
async def month_calendar(
    event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState
) -> None:
    gid, member = event.group_id, event.sender
    today = _today(ctx, config)
    month = parse_month(cmd.rest, today)
    if month is None:
        ctx.reply(f"看不懂月份“{cmd.rest}”，例如：{cmd.typed} 2026-11", mention=config.mention)
        return
    first, last = month_bounds(*month)
    records = await state.service.month(gid, member.id, first, last)
    status = await state.service.status(gid, member.id, today)
    open_days: list[date] = []
    note = ""
    mk = config.makeup
    if mk.enabled and config.words.makeup:
        used = await state.service.makeups_since(gid, member.id, _month_start(ctx, config, today))
        left = max(mk.monthly_limit - used, 0)
        if left:
            oldest = max(first, today - timedelta(days=mk.max_days_back))
            open_days = [
                d
                for n in range((today - oldest).days)
                if (d := oldest + timedelta(days=n)) <= last and d not in records
            ]
            note = f"（发送“{config.words.makeup[0]} 日期”，每次 {mk.cost} 积分，本月还可 {left} 次）"
    ctx.reply(
        render_calendar(
            member.display,
            month[0],
            month[1],
            records,
            today,
            streak=status.streak,
            longest=status.longest,
            can_make_up=open_days,
            makeup_note=note,
        ),
        mention=config.mention,
    )


@plugin.command(
    "积分明细", usage="[@成员（管理员可查他人）]", help="最近的积分变动", words_from=lambda c: c.words.history
)
async def history(event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    gid = event.group_id
    who = event.sender
    if cmd.rest or [m for m in event.mentions if m != ctx.services.bot.id]:
        if await ctx.permission() < Permission.GROUP_ADMIN:
            ctx.reply("只有管理员可以查看别人的积分明细。", mention=True)
            return
        try:
            who = resolve_targets(cmd.rest, event.mentions, await _roster(ctx, gid), ctx.services.bot.id).members[0]
        except TargetError as exc:
            ctx.reply(str(exc), mention=True)
            return
    await state.activity.flush(gid, who.id)
    entries = await state.ledger.history(gid, who.id, limit=HISTORY_SIZE)
    total = await state.ledger.total(gid, who.id)
    ctx.reply(render_history(who.display, entries, total, _tz(ctx)))


# --- make-up ----------------------------------------------------------------------------
@plugin.command(
    "补签",
    usage="[日期，默认昨天，如 12-03]",
    help="补签漏掉的一天（消耗积分）",
    words_from=lambda c: c.words.makeup if c.makeup.enabled else [],
)
async def make_up(event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState) -> None:
    await _make_up(event, ctx, config, state, event.sender, cmd.rest, cmd.typed, by=None)


async def _make_up(
    event: GroupMessage,
    ctx: Context,
    config: CheckinConfig,
    state: CheckinState,
    member: Member,
    when: str,
    typed: str,
    by: str | None,
) -> None:
    today = _today(ctx, config)
    day = parse_day(when, today)
    if day is None:
        ctx.reply(f"看不懂日期“{when}”，例如：{typed} / {typed} 12-03 / {typed} 2026-12-03", mention=True)
        return
    mk = config.makeup
    gid = event.group_id
    await state.activity.flush(gid, member.id)
    try:
        out = await state.service.make_up(
            gid,
            member.id,
            member.display,
            day,
            today,
            ctx.now(),
            cost=mk.cost,
            monthly_limit=mk.monthly_limit,
            month_start=_month_start(ctx, config, today),
            max_days_back=mk.max_days_back,
            base=config.points.base if mk.award_base else 0,
            by=by,
        )
    except MakeupRefused as exc:
        who = "" if by is None else f"{member.display}："
        ctx.reply(f"{who}{exc}", mention=True)
        return
    if by is not None:
        ctx.reply(
            f"🔄 已为 {member.display} 补签 {cn_day(out.day)}（管理员补签，不扣积分）\n"
            f"🔥 {member.display} 现在连续签到 {out.streak} 天"
        )
        return
    ctx.reply(
        _render(
            config.texts.makeup_success,
            cfgmod.MAKEUP_FIELDS,
            {
                "member": member.display,
                "date": cn_day(out.day),
                "cost": out.cost,
                "streak": out.streak,
                "longest": out.longest,
                "total": out.total,
                "used": out.used,
                "limit": mk.monthly_limit,
                "left": max(mk.monthly_limit - out.used, 0),
                "points": out.points,
            },
        ),
        mention=config.mention,
    )


# --- admin ------------------------------------------------------------------------------
async def _adjust(
    event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState, sign: int
) -> None:
    gid = event.group_id
    verb = "加" if sign > 0 else "扣"
    usage = f"用法：{cmd.typed} @成员 分数 [原因]，例如：{cmd.typed} @小明 10 活动奖励"
    try:
        targets = resolve_targets(cmd.rest, event.mentions, await _roster(ctx, gid), ctx.services.bot.id)
    except TargetError as exc:
        ctx.reply(f"{exc}。{usage}", mention=True)
        return
    amount = parse_amount(targets.args[0]) if targets.args else None
    if amount is None or amount == 0:
        ctx.reply(usage, mention=True)
        return
    if amount > config.admin_max_points:
        ctx.reply(f"一次最多{verb} {config.admin_max_points} 分。", mention=True)
        return
    reason = " ".join(targets.args[1:]).strip() or "管理员调整"
    now = ctx.now()
    lines = []
    for member in targets.members:
        await state.activity.flush(gid, member.id)
        # The message id makes a replayed command a no-op (one ledger row per message and member).
        ref = f"admin:{event.message_id}" if event.message_id else None
        await state.ledger.add(gid, member.id, sign * amount, "admin", now, ref=ref, by=event.sender.id, note=reason)
        total = await state.ledger.total(gid, member.id)
        lines.append(f"{'✅' if sign > 0 else '⚠️'} {member.display} {verb} {amount} 分（{reason}），现有 {total} 分")
    ctx.reply("\n".join(lines))


@plugin.command(
    "加分",
    permission=Permission.GROUP_ADMIN,
    usage="@成员 分数 [原因]",
    help="给成员加积分",
    words_from=lambda c: c.words.add_points,
)
async def add_points(
    event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState
) -> None:
    await _adjust(event, cmd, ctx, config, state, +1)


@plugin.command(
    "扣分",
    permission=Permission.GROUP_ADMIN,
    usage="@成员 分数 [原因]",
    help="扣成员积分",
    words_from=lambda c: c.words.deduct_points,
)
async def deduct_points(
    event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState
) -> None:
    await _adjust(event, cmd, ctx, config, state, -1)


@plugin.command(
    "代补签",
    permission=Permission.GROUP_ADMIN,
    usage="@成员 [日期]",
    help="为成员补签（不扣积分、不占次数）",
    words_from=lambda c: c.words.admin_makeup,
)
async def admin_make_up(
    event: GroupMessage, cmd: Command, ctx: Context, config: CheckinConfig, state: CheckinState
) -> None:
    try:
        targets = resolve_targets(cmd.rest, event.mentions, await _roster(ctx, event.group_id), ctx.services.bot.id)
    except TargetError as exc:
        ctx.reply(f"{exc}。用法：{cmd.typed} @成员 [日期]", mention=True)
        return
    when = " ".join(targets.args)
    for member in targets.members:
        await _make_up(event, ctx, config, state, member, when, cmd.typed, by=event.sender.id)


# --- activity and invites -------------------------------------------------------------------
@plugin.on(GroupMessage, priority=95)
async def count_activity(event: GroupMessage, ctx: Context, config: CheckinConfig, state: CheckinState) -> bool:
    """Ordinary chat earns activity points. Runs late: commands and messages another plugin
    stopped (an ad it removed) never get here."""
    # Every chat message gets here: the plan has the rules and the day's bounds ready.
    plan = state.plan_for(config)
    if not plan.enabled:
        return False
    kind = event.kind
    if kind is _SYSTEM or (kind is _TEXT and len(event.text.strip()) < plan.min_chars):
        return False
    now = ctx.now()
    state.activity.count(
        event.group_id,
        event.sender.id,
        plan.days.day_of(now),
        now,
        points=plan.points,
        cap=plan.cap,
        min_interval=plan.min_interval,
    )
    return False  # counting is not acting: never stops anything


async def _now_or_when_back(
    ctx: Context, state: CheckinState, kind: str, event: MembersJoined | MembersLeft, now: datetime
) -> bool:
    """Do an invite job now, or, if the database is unreachable, hold it (journalled) until
    it is back. The jobs are idempotent: one award and one revocation per newcomer."""
    work = _INVITE_JOBS[kind]
    config = cast(CheckinConfig, ctx.config)  # the context of this plugin's own handler
    health = ctx.services.require_db().health
    if health.up:
        try:
            return await work(event, ctx, config, state, now)
        except Exception as exc:
            if not is_outage(exc):
                raise
            health.failed(exc)

    async def later() -> None:
        await work(event, ctx, config, state, now)

    key = f"{kind}:{event.group_id}:{','.join(m.id for m in event.members)}:{event.at.isoformat()}"
    record = {"kind": kind, "event": event_to_json(event), "at": now.isoformat()}
    if not state.pending.hold(key, later, f"{kind} jobs held", record):
        ctx.log.warning("database unreachable and the held-work queue is full: %s not done", key)
    return False


def _rebuild_invite_job(state: CheckinState, record: dict[str, Any]) -> tuple[Job, str] | None:
    kind = record.get("kind", "")
    try:
        event = event_from_json(record["event"])
        now = datetime.fromisoformat(record["at"])
    except (KeyError, TypeError, ValueError) as exc:
        state.host.log.warning("a held %s job could not be read back (%s): %s", kind, exc, record)
        return None
    if not isinstance(event, (MembersJoined, MembersLeft)) or now.tzinfo is None:
        return None
    ctx = state.host.context(event)
    work = _INVITE_JOBS[kind]

    async def later() -> None:
        await work(event, ctx, cast(CheckinConfig, ctx.config), state, now)

    return later, f"{kind} jobs held"


@plugin.on(MembersJoined)
async def reward_inviter(event: MembersJoined, ctx: Context, config: CheckinConfig, state: CheckinState) -> bool:
    inv = config.invite
    if not inv.enabled or event.inviter is None:
        return False
    if event.inviter.id in {ctx.services.bot.id, *ctx.services.config.other_bots}:
        return False
    return await _now_or_when_back(ctx, state, "invite", event, ctx.now())


async def _award_invite(
    event: MembersJoined | MembersLeft, ctx: Context, config: CheckinConfig, state: CheckinState, now: datetime
) -> bool:
    assert isinstance(event, MembersJoined) and event.inviter is not None
    inv, inviter = config.invite, event.inviter
    bots = {ctx.services.bot.id, *ctx.services.config.other_bots}
    paid = []
    for m in event.members:
        if m.id in bots or m.id == inviter.id:
            continue
        # One payment per newcomer and inviter, ever: leaving and rejoining pays nothing.
        if await state.ledger.add(
            event.group_id, inviter.id, inv.points, "invite", now, ref=f"invite:{m.id}", note=f"邀请{m.display}"
        ):
            paid.append(m)
    if paid and inv.announce:
        await state.activity.flush(event.group_id, inviter.id)
        total = await state.ledger.total(event.group_id, inviter.id)
        ctx.say(
            _render(
                inv.announce,
                cfgmod.INVITE_FIELDS,
                {
                    "inviter": inviter.display,
                    "members": "、".join(m.display for m in paid),
                    "points": inv.points * len(paid),
                    "total": total,
                },
            )
        )
    return bool(paid)


@plugin.on(MembersLeft)
async def revoke_invite(event: MembersLeft, ctx: Context, config: CheckinConfig, state: CheckinState) -> bool:
    inv = config.invite
    if not inv.enabled or inv.revoke_within_days <= 0:
        return False
    return await _now_or_when_back(ctx, state, "revoke", event, ctx.now())


async def _revoke_invite(
    event: MembersJoined | MembersLeft, ctx: Context, config: CheckinConfig, state: CheckinState, now: datetime
) -> bool:
    inv = config.invite
    window = timedelta(days=inv.revoke_within_days)
    revoked = False
    for m in event.members:
        for award in await state.ledger.with_ref(event.group_id, f"invite:{m.id}"):
            if award.reason != "invite" or now - award.at > window:
                continue
            revoked |= await state.ledger.add(
                event.group_id,
                award.member_id,
                -award.delta,
                "invite_revoked",
                now,
                ref=f"invite_revoked:{m.id}",
                note=f"{m.display}入群不足{inv.revoke_within_days:g}天就退群了",
            )
    return revoked


_INVITE_JOBS: dict[
    str, Callable[[MembersJoined | MembersLeft, Context, CheckinConfig, CheckinState, datetime], Awaitable[bool]]
] = {"invite": _award_invite, "revoke": _revoke_invite}
