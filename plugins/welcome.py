"""入群欢迎语: greet newcomers with a template, @-mentioning them.

Joins that arrive within `merge_window_seconds` of the first one are merged into one
message, so a wave of twenty joins is one welcome, not twenty (WeChat punishes bursts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field

from bot.core.context import Context, PluginHost
from bot.core.events import Member, MembersJoined, MembersLeft
from bot.core.plugin import Plugin, PluginConfig
from bot.core.scheduler import date_trigger
from bot.core.templates import Template, placeholders

PLACEHOLDERS = ("members", "names", "group", "count", "newcomers", "inviter", "date", "time")
Text = Annotated[str, placeholders(*PLACEHOLDERS)]


class WelcomeConfig(PluginConfig):
    text: Text = (
        "欢迎 {members} 加入「{group}」！🎉\n本群现在有 {count} 位伙伴。请先看看群公告，发送“帮助”看看我能做什么～"
    )
    # Newcomers joining within this many seconds of the first are welcomed together.
    merge_window_seconds: float = Field(30.0, ge=0, le=3600)
    mention: bool = True
    # WeChat shows long @-lists badly; beyond this many, names are listed without the @.
    max_mentions: int = Field(30, ge=0, le=100)
    # Optional private welcome to each newcomer (e.g. rules, a link); off when empty.
    private_text: Text | None = None


@dataclass
class _Batch:
    members: list[Member] = field(default_factory=list)
    inviters: list[Member] = field(default_factory=list)
    topic: str = ""


@dataclass
class WelcomeState:
    host: PluginHost
    pending: dict[str, _Batch] = field(default_factory=dict)

    async def flush(self, group_id: str, fire: datetime) -> None:
        batch = self.pending.pop(group_id, None)
        if not batch or not batch.members:
            return
        host = self.host
        if not host.enabled_in(group_id):
            return
        cfg: WelcomeConfig = host.config_for(group_id)
        services = host.services
        info = await services.groups.info(group_id, fresh=True)
        mentioned = batch.members[: cfg.max_mentions] if cfg.mention else []
        # WeChat separates an @name from what follows with U+2005; no extra space needed.
        at_list = "".join(f"@{m.display}\u2005" for m in mentioned).strip()
        rest = "、".join(m.display for m in batch.members[len(mentioned) :])
        members_text = f"{at_list} {rest}".strip() if rest else at_list
        if not members_text:
            members_text = "、".join(m.display for m in batch.members)
        local = fire.astimezone(services.clock.tz)
        values = {
            "members": members_text,
            "names": "、".join(m.display for m in batch.members),
            "group": services.groups.display_name(group_id, batch.topic),
            "count": info.member_count if info else "",
            "newcomers": len(batch.members),
            "inviter": "、".join(dict.fromkeys(m.display for m in batch.inviters)),
            "date": local.strftime("%Y-%m-%d"),
            "time": local.strftime("%H:%M"),
        }
        ctx = host.context(group_id=group_id)
        ctx.say(_render(cfg.text, values), tuple(m.id for m in mentioned))
        if cfg.private_text:
            for member in batch.members:
                ctx.send_private(
                    member.id, _render(cfg.private_text, {**values, "members": member.display, "names": member.display})
                )


def _render(text: str, values: Mapping[str, object]) -> str:
    return Template.parse(text, PLACEHOLDERS).render(values)


plugin = Plugin(
    "welcome",
    title="入群欢迎",
    aliases=("欢迎", "欢迎语", "迎新", "新人欢迎"),
    config=WelcomeConfig,
    priority=40,
    description="新人入群时发送欢迎语，并 @ 新人",
)


@plugin.state
async def _state(host: PluginHost) -> WelcomeState:
    return WelcomeState(host)


@plugin.on(MembersJoined)
async def on_join(event: MembersJoined, ctx: Context, config: WelcomeConfig, state: WelcomeState) -> bool:
    others = set(ctx.services.config.other_bots) | {ctx.services.bot.id}
    newcomers = [m for m in event.members if m.id not in others]
    if not newcomers:
        return False
    gid = event.group_id
    batch = state.pending.get(gid)
    first = batch is None
    if batch is None:
        batch = state.pending[gid] = _Batch(topic=event.group_topic)
    known = {m.id for m in batch.members}
    batch.members.extend(m for m in newcomers if m.id not in known)
    if event.inviter is not None:
        batch.inviters.append(event.inviter)
    if first:
        when = ctx.now() + timedelta(seconds=config.merge_window_seconds)
        ctx.services.scheduler.add(
            f"welcome:flush:{gid}",
            date_trigger(when, ctx.clock.tz),
            lambda fire: state.flush(gid, fire),
            deferred=True,
        )
    return True


@plugin.on(MembersLeft)
async def on_leave(event: MembersLeft, state: WelcomeState) -> bool:
    """Someone who left (or was removed as a spammer) before the merged welcome went out is
    not welcomed."""
    batch = state.pending.get(event.group_id)
    if batch is not None:
        gone = {m.id for m in event.members}
        batch.members = [m for m in batch.members if m.id not in gone]
    return False
