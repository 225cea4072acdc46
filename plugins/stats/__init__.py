"""数据统计: a short data summary for admins in chat (`群数据`, `数据 30天`), and daily and
weekly digests sent privately to each group's admins through the core scheduler.

The figures come from `bot.stats` (the same engine as `qunbot stats`), which reads the
membership stays and the daily activity rollup that the recorder maintains.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from bot.core.context import Context, PluginHost
from bot.core.health import account_status
from bot.core.plugin import Command, Permission, Plugin
from bot.core.scheduler import cron_trigger
from bot.stats import Period, Scope, Summary, digest_period, summary_text
from bot.stats.localtime import local_day
from bot.stats.summary import SummaryOptions, summary_report
from bot.storage.repo import GroupRepo
from plugins.stats.config import DigestConfig, StatsConfig

plugin = Plugin(
    "stats",
    title="数据统计",
    aliases=("统计", "群数据", "数据", "数据简报"),
    config=StatsConfig,
    priority=60,
    description="群数据摘要（成员增长、活跃、留存、潜水），每日/每周数据简报私聊发给群管理员",
)

_DAYS = re.compile(r"^(?:近|最近)?\s*(\d{1,3})\s*(?:天|日|d|days?)?$", re.IGNORECASE)
_HEADINGS = {"daily": "每日数据简报", "weekly": "每周数据简报"}


def parse_days(text: str, default: int) -> int | None:
    """'' → default; '30', '30天', '近7天', '7d' → the number; anything else → None."""
    text = text.strip()
    if not text:
        return default
    match = _DAYS.match(text)
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1))


@dataclass
class StatsState:
    host: PluginHost
    jobs: dict[str, Callable[[datetime], Awaitable[None]]] = field(default_factory=dict)

    def scope(self, group_id: str) -> Scope:
        services = self.host.services
        exclude = (services.bot.id, *services.config.other_bots)
        return Scope.one(group_id, services.groups.display_name(group_id), exclude)

    async def report(self, group_id: str, period: Period, as_of: datetime) -> tuple[Summary, str]:
        """The group's summary and its text: `summary_report`, the service `qunbot stats
        summary` calls too, with this group's settings."""
        services = self.host.services
        assert services.db is not None
        cfg: StatsConfig = self.host.config_for(group_id)
        return await summary_report(
            services.db,
            services.clock.tz,
            self.scope(group_id),
            period,
            as_of=as_of,
            options=SummaryOptions.of(cfg),
        )

    async def digest(self, kind: str, fire: datetime) -> None:
        """Summaries of yesterday (daily) or the last 7 days (weekly) for every group where
        the plugin is on, one private message per admin with all of that admin's groups."""
        host, services = self.host, self.host.services
        if services.db is None:
            return
        if services.recorder is not None:
            await services.recorder.flush()
        period = digest_period(kind, fire, services.clock.tz)
        per_admin: dict[str, list[str]] = {}
        for group in await GroupRepo(services.db).list(active_only=True):
            if not host.enabled_in(group.id):
                continue
            cfg: StatsConfig = host.config_for(group.id)
            digest_cfg: DigestConfig = cfg.daily_digest if kind == "daily" else cfg.weekly_digest
            if not digest_cfg.enabled:
                continue
            admins = await services.groups.admins_of(group.id)
            if not admins:
                host.log.info("stats digest: group %s has no admin to send to", group.id)
                continue
            summary, _text = await self.report(group.id, period, fire)
            name = services.groups.display_name(group.id, group.topic)
            label = "昨天" if kind == "daily" else "近7天"
            text = summary_text(summary, f"「{name}」{label}", top=cfg.top, removals=True)
            for admin in admins:
                per_admin.setdefault(admin, []).append(text)
        if services.health is not None:
            # The bot admins also hear how the bot account(s) fared: rate limits, bans, disconnects.
            accounts = "【账号状态】\n" + (await account_status(services)).text()
            for admin in services.config.bot_admins:
                per_admin.setdefault(admin, []).append(accounts)
        ctx = host.context()
        for admin, texts in per_admin.items():
            ctx.send_private(admin, f"【{_HEADINGS[kind]}】\n" + "\n\n".join(texts))


@plugin.state
async def _state(host: PluginHost) -> StatsState:
    state = StatsState(host)
    cfg: StatsConfig = host.config_for(None)
    scheduler, tz = host.services.scheduler, host.services.clock.tz
    for kind, digest_cfg in (("daily", cfg.daily_digest), ("weekly", cfg.weekly_digest)):
        job_id = f"stats:{kind}_digest"
        if not digest_cfg.enabled:
            scheduler.remove(job_id)
            continue
        hour, minute = digest_cfg.hour_minute
        weekday = getattr(digest_cfg, "weekday", "*")
        func = partial(state.digest, kind)
        # A digest more than two hours late (the bot was down) is skipped, not sent at noon.
        scheduler.add(job_id, cron_trigger(f"{minute} {hour} * * {weekday}", tz), func, grace=timedelta(hours=2))
        state.jobs[job_id] = func
    return state


@plugin.on_shutdown
async def _stop(host: PluginHost) -> None:
    # On a reload the new state has already replaced these jobs: remove only our own.
    state: StatsState | None = host.state
    if state is None:
        return
    for job_id, func in state.jobs.items():
        job = host.services.scheduler.get(job_id)
        if job is not None and job.func is func:
            host.services.scheduler.remove(job_id)


@plugin.command(
    "群数据",
    permission=Permission.GROUP_ADMIN,
    usage="[天数]",
    scope="group",
    help="本群数据摘要：成员增长、活跃、留存、潜水、发言最多（默认近7天）",
    words_from=lambda cfg: cfg.command_words,
)
async def group_stats(cmd: Command, ctx: Context, config: StatsConfig, state: StatsState) -> None:
    days = parse_days(cmd.rest, config.default_days)
    if days is None:
        ctx.reply(f"用法：{cmd.typed} [天数]，例如：{cmd.typed} 30天")
        return
    days = min(days, config.max_days)
    services = ctx.services
    if services.db is None or ctx.group_id is None:
        ctx.reply("没有数据库，无法统计。")
        return
    if services.recorder is not None:
        await services.recorder.flush()  # count what was said just now
    now = ctx.now()
    period = Period.last(days, local_day(now, services.clock.tz))
    _summary, text = await state.report(ctx.group_id, period, now)
    ctx.reply(text)
