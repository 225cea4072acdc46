"""`后台` in a private chat: a one-time link to the web console; and joins and leaves
published for the console's outgoing webhooks.

A built-in plugin, loaded when the config has a `web:` section. Bot admins get every group;
a group admin gets the groups they administer (worked out again when the link is used)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.context import Context, PluginHost, Services
from bot.core.events import MembersJoined, MembersLeft
from bot.core.plugin import Permission, Plugin
from bot.web.store import WebStore

plugin = Plugin("web", title="管理后台", priority=6, description="私聊“后台”获取管理后台登录链接")


async def admin_groups(services: Services, user_id: str) -> list[str] | None:
    """The groups a person may manage in the console: None for a bot admin (all of them),
    else the groups where they are an admin (possibly none)."""
    if services.groups.is_bot_admin(user_id):
        return None
    out = []
    for info in await services.platform.groups():
        if await services.groups.permission(user_id, info.id) >= Permission.GROUP_ADMIN:
            out.append(info.id)
    return out


@plugin.state
async def _store(host: PluginHost) -> WebStore | None:
    return WebStore(host.services.db) if host.services.db is not None else None


@plugin.command("后台", "管理后台", scope="private", help="获取管理后台的一次性登录链接（管理员）")
async def console_link(ctx: Context, services: Services, state: WebStore | None) -> None:
    settings = services.config.web
    sender = ctx.sender
    if settings is None or state is None or sender is None:
        ctx.reply("管理后台没有开启（配置里没有 web: 部分）。")
        return
    groups = await admin_groups(services, sender.id)
    if groups is not None and not groups:
        ctx.reply("只有机器人管理员和群管理员可以登录管理后台。")
        return
    minutes = settings.link_minutes
    token = await state.create_link(sender.id, sender.display, ctx.now(), timedelta(minutes=minutes))
    scope = "全部群" if groups is None else f"你管理的 {len(groups)} 个群"
    ctx.reply(
        f"管理后台登录链接（{minutes:g} 分钟内有效，只能用一次，请勿转发）：\n"
        f"{settings.base_url}/login/link/{token}\n可管理：{scope}"
    )


@plugin.on(MembersJoined, MembersLeft)
async def publish_membership(event: MembersJoined | MembersLeft, services: Services) -> bool:
    joined = isinstance(event, MembersJoined)
    data: dict[str, object] = {
        "group_id": event.group_id,
        "members": [{"id": m.id, "name": m.name} for m in event.members],
        "at": event.at.isoformat(),
    }
    if isinstance(event, MembersJoined):
        data["inviter"] = event.inviter.id if event.inviter else None
    else:
        data["removed_by"] = event.removed_by.id if event.removed_by else None
    services.publish("member_joined" if joined else "member_left", data)
    return False  # only told: the other plugins still handle it
