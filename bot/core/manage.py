"""Built-in commands every deployment has: help, the managed-group list, switching a plugin
on or off per group, and what happens when the bot itself joins or leaves a group."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from bot.core.commands import fold, trim_punctuation
from bot.core.context import Context, PluginHost, Services
from bot.core.events import BotJoinedGroup, BotLeftGroup, GroupMessage
from bot.core.health import account_status
from bot.core.plugin import Command, Permission, Plugin
from bot.core.templates import Template

plugin = Plugin("core", title="基础", priority=5, description="帮助、群管理、功能开关")


@plugin.command("帮助", "help", "菜单", scope="both", words_from=None, help="查看我能做什么")
async def show_help(ctx: Context, services: Services) -> None:
    """In a group: the member menu (an admin gets the full menu privately, so a 60-line menu
    never floods the group). In private: what the asker can do there. Built from the
    plugins' declarations; sent in messages that never cut a section."""
    level = await ctx.permission()
    runtime = services.dispatcher.runtime
    limit = services.config.outbox.max_chars
    sender = ctx.sender.id if ctx.sender else None
    if isinstance(ctx.event, GroupMessage) and ctx.group_id:
        gid = ctx.group_id
        sections = menu_sections(runtime, services, gid, Permission.MEMBER, "group")
        if level > Permission.MEMBER and sender is not None:
            where = services.groups.display_name(gid)
            full = menu_sections(runtime, services, gid, level, "group")
            head = f"「{where}」的完整菜单（{level.label}，以下命令在群里发送）："
            for text in pack_sections(head, full, limit):
                ctx.send_private(sender, text)
            sections.append(("", ["管理员命令已私聊发给你。"]))
        for text in pack_sections("我能做这些（在群里发送命令即可）：", sections, limit):
            ctx.reply(text)
        return
    sections = menu_sections(runtime, services, None, level, "private")
    for text in pack_sections("私聊我可以发送：", sections, limit):
        ctx.reply(text)


Section = tuple[str, list[str]]


def menu_sections(
    runtime: Any, services: Services, group_id: str | None, level: Permission, where: str
) -> list[Section]:
    """One section per plugin: its commands usable at `level` in a group (`where`="group")
    or in private chat, and, in private, what its guide lists."""
    sections: list[Section] = []
    for name, host in runtime.hosts.items():
        if group_id is not None and not services.groups.plugin_enabled(host.settings, group_id):
            continue
        cfg = host.config_for(group_id)
        entries = []
        for spec in runtime.commands_by_plugin.get(name, []):
            if spec.permission > level or spec.scope not in (where, "both"):
                continue
            words = spec.words(cfg)
            if not words:
                continue
            usage = f" {spec.usage}" if spec.usage else ""
            badge = "" if spec.permission == Permission.MEMBER else f"［{spec.permission.label}］"
            entries.append(f"  {'/'.join(words[:3])}{usage}：{spec.help}{badge}")
        guide = host.settings.plugin.guide_factory
        if where == "private" and guide is not None and host.state is not None:
            entries.extend(f"  {what}：{does}" for what, does in guide(host.state))
        if entries:
            sections.append((f"【{host.settings.plugin.title}】", entries))
    return sections


def pack_sections(head: str, sections: list[Section], limit: int) -> list[str]:
    """Messages of whole sections, each within `limit` characters where a section allows:
    a break falls between sections, never inside one."""
    messages: list[list[str]] = [[head]]
    size = len(head)
    for title, lines in sections:
        block = ([title] if title else []) + lines
        block_size = sum(len(line) + 1 for line in block)
        if size + block_size > limit and len(messages[-1]) > 1:
            messages.append([])
            size = 0
        messages[-1].extend(block)
        size += block_size
    return ["\n".join(lines) for lines in messages if lines]


@plugin.command("群列表", scope="both", permission=Permission.BOT_ADMIN, help="列出我管理的群")
async def list_groups(ctx: Context, services: Services) -> None:
    groups = await services.platform.groups()
    if not groups:
        ctx.reply("我还没有加入任何群。")
        return
    runtime = services.dispatcher.runtime
    lines = [f"我管理的群（{len(groups)} 个）："]
    for info in sorted(groups, key=lambda g: g.id):
        off = [
            h.settings.plugin.title
            for h in runtime.hosts.values()
            if h.name != "core" and not services.groups.plugin_enabled(h.settings, info.id)
        ]
        note = f"，已关闭：{'、'.join(off)}" if off else ""
        lines.append(f"  {info.topic or info.id}（{info.id}，{info.member_count} 人{note}）")
    ctx.reply("\n".join(lines))


@plugin.command(
    "账号状态", "账号健康", scope="both", permission=Permission.BOT_ADMIN, help="查看机器人账号的发送和异常情况"
)
async def account_health(ctx: Context, services: Services) -> None:
    ctx.reply((await account_status(services)).text())


@plugin.command("功能", "插件", scope="group", help="查看本群开启的功能")
async def list_plugins(ctx: Context, services: Services) -> None:
    runtime = services.dispatcher.runtime
    gid = ctx.group_id or ""
    lines = ["本群功能："]
    for host in runtime.hosts.values():
        if host.name == "core":
            continue
        state = "开" if services.groups.plugin_enabled(host.settings, gid) else "关"
        lines.append(f"  {host.settings.plugin.title}（{host.name}）：{state}")
    ctx.reply("\n".join(lines))


def find_plugin(hosts: Iterable[PluginHost], name: str) -> tuple[PluginHost | None, list[str]]:
    """The plugin called `name` (its title, an alias or its id; case, width and punctuation
    around it ignored), or None and the closest names for "你是不是想说". The core itself
    cannot be switched off, so it is never found."""
    wanted = fold(trim_punctuation(name))
    candidates = [h for h in hosts if h.name != "core"]
    by_name: dict[str, PluginHost] = {}
    for host in candidates:
        for alias in host.settings.plugin.names:
            by_name.setdefault(fold(alias), host)
    if wanted in by_name:
        return by_name[wanted], []
    # Containment first (欢迎消息 → 欢迎, 签到功能 → 签到), then spelling closeness.
    near = [alias for alias in by_name if alias and (alias in wanted or wanted in alias)]
    near += difflib.get_close_matches(wanted, list(by_name), n=3, cutoff=0.5)
    titles = list(dict.fromkeys(by_name[a].settings.plugin.title for a in near))
    return None, titles[:3]


async def _toggle(cmd: Command, ctx: Context, services: Services, enabled: bool) -> None:
    verb = "开启" if enabled else "关闭"
    name = cmd.arg(0)
    if not name:
        ctx.reply(f"用法：{verb} 功能名 [群ID]")
        return
    runtime = services.dispatcher.runtime
    host, suggestions = find_plugin(runtime.hosts.values(), name)
    if host is None:
        names = "、".join(h.settings.plugin.title for h in runtime.hosts.values() if h.name != "core")
        guess = f"你是不是想说：{'、'.join(suggestions)}？" if suggestions else ""
        ctx.reply(f"没有叫“{name}”的功能。{guess}可用：{names}")
        return
    target = cmd.arg(1) or ctx.group_id
    if not target:
        ctx.reply(f"私聊里请写上群ID：{verb} {name} 群ID")
        return
    asker = ctx.sender.id if ctx.sender else ""
    if target != ctx.group_id and await ctx.permission(asker, target) < Permission.GROUP_ADMIN:
        ctx.reply(f"你不是群 {target} 的管理员。")
        return
    await services.groups.set_plugin_enabled(target, host.name, enabled, asker)
    where = "本群" if target == ctx.group_id else f"群 {services.groups.display_name(target)}"
    ctx.reply(f"已在{where}{verb}“{host.settings.plugin.title}”。")


@plugin.command(
    "开启",
    "打开",
    scope="both",
    permission=Permission.GROUP_ADMIN,
    usage="功能名 [群ID]",
    help="在本群（或指定群）开启一个功能",
    glued="plugin",
)
async def enable_plugin(cmd: Command, ctx: Context, services: Services) -> None:
    await _toggle(cmd, ctx, services, True)


@plugin.command(
    "关闭",
    scope="both",
    permission=Permission.GROUP_ADMIN,
    usage="功能名 [群ID]",
    help="在本群（或指定群）关闭一个功能",
    glued="plugin",
)
async def disable_plugin(cmd: Command, ctx: Context, services: Services) -> None:
    await _toggle(cmd, ctx, services, False)


@plugin.on(BotJoinedGroup)
async def introduce(event: BotJoinedGroup, ctx: Context, services: Services) -> bool:
    services.groups.forget(event.group_id)
    if services.member_lists is not None:
        # Everyone already in the group: members from before the bot, for the statistics.
        await services.member_lists.refresh([event.group_id])
    settings = services.config.on_bot_joined
    if settings.introduce:
        text = Template.parse(settings.text, ("group", "bot")).render(
            {"group": services.groups.display_name(event.group_id, event.group_topic), "bot": services.bot.display}
        )
        ctx.say(text)
    where = event.group_topic or event.group_id
    await ctx.notify_admins(f"我被{_who(event.inviter)}拉进了群 {where}。", event.group_id)
    return True


@plugin.on(BotLeftGroup)
async def forget_group(event: BotLeftGroup, ctx: Context, services: Services) -> bool:
    name = services.groups.display_name(event.group_id)
    services.groups.forget(event.group_id)
    how = f"，被{_who(event.removed_by)}移出" if event.removed_by else ""
    # The group's own admins are out of reach now: tell the bot admins (and webhooks).
    await ctx.notify_admins(f"我已离开群 {name}（{event.group_id}）{how}。已标记为不活跃。", None)
    return True


def _who(member: object) -> str:
    name = getattr(member, "display", None)
    return str(name) if name else "有人"
