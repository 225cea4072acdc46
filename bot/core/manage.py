"""Built-in commands every deployment has: help, the managed-group list, switching a plugin
on or off per group, and what happens when the bot itself joins or leaves a group."""

from __future__ import annotations

from bot.core.context import Context, Services
from bot.core.events import BotJoinedGroup, BotLeftGroup, GroupMessage
from bot.core.plugin import Command, Permission, Plugin
from bot.core.templates import Template

plugin = Plugin("core", title="基础", priority=5, description="帮助、群管理、功能开关")


@plugin.command("帮助", "help", "菜单", scope="both", words_from=None, help="查看我能做什么")
async def show_help(cmd: Command, ctx: Context, services: Services) -> None:
    level = await ctx.permission()
    runtime = services.dispatcher.runtime
    in_group = isinstance(ctx.event, GroupMessage)
    lines = ["我能做这些（发送命令即可）："]
    for name, host in runtime.hosts.items():
        if in_group and ctx.group_id and not services.groups.plugin_enabled(host.settings, ctx.group_id):
            continue
        cfg = host.config_for(ctx.group_id)
        entries = []
        for spec in runtime.commands_by_plugin.get(name, []):
            if spec.permission > level:
                continue
            if (in_group and spec.scope == "private") or (not in_group and spec.scope == "group"):
                continue
            words = spec.words(cfg)
            if not words:
                continue
            usage = f" {spec.usage}" if spec.usage else ""
            badge = "" if spec.permission == Permission.MEMBER else f"［{spec.permission.label}］"
            entries.append(f"  {'/'.join(words[:3])}{usage}：{spec.help}{badge}")
        if entries:
            lines.append(f"【{host.settings.plugin.title}】")
            lines.extend(entries)
    ctx.reply("\n".join(lines))


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


async def _toggle(cmd: Command, ctx: Context, services: Services, enabled: bool) -> None:
    verb = "开启" if enabled else "关闭"
    name = cmd.arg(0)
    if not name:
        ctx.reply(f"用法：{verb} 功能名 [群ID]")
        return
    runtime = services.dispatcher.runtime
    wanted = name.casefold()
    host = next(
        (h for h in runtime.hosts.values() if wanted in (h.name.casefold(), h.settings.plugin.title.casefold())),
        None,
    )
    if host is None or host.name == "core":
        names = "、".join(h.settings.plugin.title for h in runtime.hosts.values() if h.name != "core")
        ctx.reply(f"没有叫“{name}”的功能。可用：{names}")
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
)
async def enable_plugin(cmd: Command, ctx: Context, services: Services) -> None:
    await _toggle(cmd, ctx, services, True)


@plugin.command(
    "关闭",
    scope="both",
    permission=Permission.GROUP_ADMIN,
    usage="功能名 [群ID]",
    help="在本群（或指定群）关闭一个功能",
)
async def disable_plugin(cmd: Command, ctx: Context, services: Services) -> None:
    await _toggle(cmd, ctx, services, False)


@plugin.on(BotJoinedGroup)
async def introduce(event: BotJoinedGroup, ctx: Context, services: Services) -> bool:
    services.groups.forget(event.group_id)
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
