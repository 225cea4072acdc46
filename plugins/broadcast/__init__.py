"""定时群发: scheduled broadcasts to chosen groups, from YAML or made by admins in chat.

Commands (bot admins everywhere; group admins only for broadcasts to their own group):

    定时群发 每天08:00 群=g1,g2 早上好！今天是{date} {weekday}
    定时群发 2026-12-24 20:00 全部群 圣诞快乐🎄
    定时群发 cron 0 8 * * 1-5 分组=learning 该打卡啦
    群发列表 · 暂停群发 3 · 恢复群发 3 · 删除群发 3 · 群发报告 3

Each (broadcast, occurrence, group) is claimed in the database before it is sent, so it goes
out at most once across restarts and across processes sharing one database (see service.py).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from bot.core.context import Context, PluginHost
from bot.core.plugin import Command, Permission, Plugin
from bot.core.text import strip_mention
from plugins.broadcast.config import BroadcastConfig
from plugins.broadcast.schedule import SpecError, require_min_interval
from plugins.broadcast.service import BROADCASTS_CHANGED, BroadcastService, Definition, Refused
from plugins.broadcast.store import BroadcastStore
from plugins.broadcast.syntax import ALL, HERE, USAGE, parse_command

plugin = Plugin(
    "broadcast",
    title="定时群发",
    aliases=("群发", "定时", "定时消息"),
    config=BroadcastConfig,
    priority=30,
    description="按时间表向多个群发送消息（配置文件或聊天命令设置），每次每群最多发送一次",
)


@plugin.targets
def _targets(config: BroadcastConfig) -> list[tuple[str, list[str]]]:
    # `all` is whatever the bot is in; `here` is where the command was typed: always reachable.
    return [
        (f"定时群发「{name}」", [t for t in entry.to if t not in (ALL, HERE)])
        for name, entry in config.broadcasts.items()
    ]


@plugin.state
async def _state(host: PluginHost) -> BroadcastService:
    db = host.services.db
    if db is None:
        raise RuntimeError("the broadcast plugin needs the database (delivery claims live there)")
    service = BroadcastService(host, BroadcastStore(db))
    await service.start()
    bus = host.services.bus
    if bus is not None:  # several accounts: broadcasts made in another process are scheduled here at once
        service.unsubscribe = bus.subscribe(
            BROADCASTS_CHANGED, lambda _notice: service.resync(), on_resync=service.resync
        )
    return service


@plugin.on_shutdown
async def _shutdown(host: PluginHost) -> None:
    if isinstance(host.state, BroadcastService):
        host.state.unsubscribe()
        host.state.close()


def _content_after_command(ctx: Context) -> str:
    """The original text after the command word: the core's parsed `rest` has newlines
    folded into spaces and NFKC applied, and the content must go out as written."""
    text = getattr(ctx.event, "text", "") or ""
    services = ctx.services
    body = strip_mention(text, services.bot.name).lstrip()
    prefixes = [p for p in services.config.commands.prefixes if p]
    head = re.match(r"\S+", body)
    if head is None:
        return ""
    if unicodedata.normalize("NFKC", head.group(0)) in prefixes:  # "/ 定时群发 …"
        body = body[head.end() :].lstrip()
        head = re.match(r"\S+", body)
        if head is None:
            return ""
    return body[head.end() :].lstrip(" \t\u3000\u2005").lstrip("\r\n")


async def _level(ctx: Context) -> Permission:
    return await ctx.permission()


@plugin.command(
    "定时群发",
    "添加群发",
    "新建群发",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="时间 [群=g1,g2|全部群|分组=名称] 内容",
    help="设置定时群发（一次或重复）",
)
async def create(cmd: Command, ctx: Context, state: BroadcastService) -> None:
    text = _content_after_command(ctx)
    if not text.strip():
        ctx.reply(USAGE)
        return
    _ok, reply = await create_from_text(
        state, text, asker=ctx.sender.id if ctx.sender else "", level=await _level(ctx), group_id=ctx.group_id
    )
    ctx.reply(reply)


async def create_from_text(
    state: BroadcastService, text: str, *, asker: str, level: Permission, group_id: str | None
) -> tuple[bool, str]:
    """定时群发 from its text (what follows the command word): the chat command and the
    console's form both come here. Returns (created, the reply)."""
    try:
        parsed = parse_command(text, state.now(), state.tz)
        definition, summary = await state.create(parsed, asker=asker, level=level, group_id=group_id)
    except Refused as exc:
        return False, str(exc)
    except SpecError as exc:
        return False, f"没有创建：{exc}"
    name = definition.name
    return True, f"已创建定时群发 {summary}\n暂停：暂停群发 {name} · 删除：删除群发 {name} · 报告：群发报告 {name}"


def preview(state: BroadcastService, text: str, count: int = 5) -> tuple[list[datetime], str]:
    """The next `count` fire times of a 定时群发 text, in the configured timezone, without
    creating anything; or the reason it would be refused."""
    now = state.now()
    try:
        parsed = parse_command(text, now, state.tz)
        require_min_interval(parsed.schedule, state.cfg.min_interval)
    except SpecError as exc:
        return [], str(exc)
    trigger = parsed.schedule.trigger(state.tz)
    fires: list[datetime] = []
    previous: datetime | None = None
    at = now
    while len(fires) < count:
        fire = trigger.get_next_fire_time(previous, at)
        if fire is None:
            break
        fires.append(fire.astimezone(state.tz))
        previous, at = fire, fire + timedelta(microseconds=1)
    if not fires:
        return [], f"时间 {parsed.schedule.describe()} 已经过去了。"
    return fires, ""


@plugin.command("群发列表", "定时群发列表", permission=Permission.GROUP_ADMIN, scope="both", help="查看定时群发")
async def list_all(ctx: Context, state: BroadcastService) -> None:
    level = await _level(ctx)
    shown = [
        d
        for d in state.defs.values()
        if level >= Permission.BOT_ADMIN or (ctx.group_id is not None and state.reaches(d, ctx.group_id))
    ]
    if not shown:
        ctx.reply("还没有定时群发。发送“定时群发”查看用法。")
        return
    for definition in shown:
        await _warm_names(state, definition)
    lines = [f"定时群发（{len(shown)} 个）："] + [f"  {state.describe(d)}" for d in shown]
    lines.append("管理：暂停群发 ID · 恢复群发 ID · 删除群发 ID · 群发报告 ID")
    ctx.reply("\n".join(lines))


async def _warm_names(state: BroadcastService, definition: Definition) -> None:
    for target in definition.targets:
        if target != "all" and not target.startswith("set:"):
            await state.services.groups.info(target)


async def _target(cmd: Command, ctx: Context, state: BroadcastService, verb: str) -> Definition | None:
    ref = cmd.arg(0)
    if not ref:
        ctx.reply(f"用法：{verb} ID（发送“群发列表”查看 ID）")
        return None
    definition = state.find(ref)
    if definition is None:
        ctx.reply(f"没有找到定时群发 {ref}。发送“群发列表”查看。")
        return None
    try:
        state.check_manage(definition, await _level(ctx), ctx.group_id)
    except Refused as exc:
        ctx.reply(str(exc))
        return None
    await _warm_names(state, definition)
    return definition


@plugin.command("暂停群发", permission=Permission.GROUP_ADMIN, scope="both", usage="ID", help="暂停一个定时群发")
async def pause(cmd: Command, ctx: Context, state: BroadcastService) -> None:
    definition = await _target(cmd, ctx, state, "暂停群发")
    if definition is not None:
        await state.set_paused(definition, True)
        ctx.reply(f"好的，{state.describe(definition)}")


@plugin.command(
    "恢复群发", "继续群发", permission=Permission.GROUP_ADMIN, scope="both", usage="ID", help="恢复一个暂停的定时群发"
)
async def resume(cmd: Command, ctx: Context, state: BroadcastService) -> None:
    definition = await _target(cmd, ctx, state, "恢复群发")
    if definition is not None:
        await state.set_paused(definition, False)
        ctx.reply(f"已恢复（暂停期间的不补发）。{state.describe(definition)}")


@plugin.command(
    "删除群发",
    "取消群发",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="ID",
    help="删除一个定时群发（报告保留）",
)
async def delete(cmd: Command, ctx: Context, state: BroadcastService) -> None:
    definition = await _target(cmd, ctx, state, "删除群发")
    if definition is None:
        return
    if definition.source == "yaml":
        ctx.reply(f"群发「{definition.name}」写在配置文件里：请在配置中删除；现在可以先“暂停群发 {definition.name}”。")
        return
    await state.delete(definition)
    ctx.reply(f"已删除定时群发 #{definition.name}。发送记录仍可用“群发报告 {definition.name}”查看。")


@plugin.command(
    "群发报告", "群发记录", permission=Permission.GROUP_ADMIN, scope="both", usage="ID", help="查看定时群发的发送报告"
)
async def report(cmd: Command, ctx: Context, state: BroadcastService) -> None:
    ref = cmd.arg(0)
    if not ref:
        ctx.reply("用法：群发报告 ID（发送“群发列表”查看 ID）")
        return
    definition = state.find(ref) or await state.archived(ref)
    if definition is None:
        ctx.reply(f"没有找到定时群发 {ref}。")
        return
    level = await _level(ctx)
    if level < Permission.BOT_ADMIN and (ctx.group_id is None or not state.reaches(definition, ctx.group_id)):
        ctx.reply("群管理员只能查看发往本群的定时群发。")
        return
    await _warm_names(state, definition)
    ctx.reply(state.report_text(definition, await state.report(definition)))


__all__ = ["BroadcastConfig", "BroadcastService", "parse_command", "plugin"]
