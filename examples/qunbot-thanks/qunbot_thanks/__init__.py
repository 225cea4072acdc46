"""感谢榜: members thank each other (“谢谢 @Bob”), and the group can see who helped most.

A third-party qunbot plugin, written only against the stable plugin contract
(docs/plugins.md): `bot.core.plugin`, `bot.core.context`, `bot.core.events`,
`bot.core.templates` and `bot.storage`. qunbot finds it through the entry point
`thanks = "qunbot_thanks:plugin"` in the `qunbot.plugins` group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import col, select

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage
from bot.core.plugin import Plugin, PluginConfig
from bot.core.templates import Template, placeholders
from bot.core.text import normalize
from bot.storage.db import Database
from qunbot_thanks.models import Thanks

REPLY_PLACEHOLDERS = ("giver", "names", "total")
ReplyText = Annotated[str, placeholders(*REPLY_PLACEHOLDERS)]


class ThanksConfig(PluginConfig):
    # A message that contains one of these words and @-mentions someone thanks them.
    words: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=lambda: ["谢谢", "感谢", "多谢"])
    reply: ReplyText = "已记下：{giver} 感谢 {names}（本群累计收到 {total} 次感谢）"
    # How many members 感谢榜 lists.
    top: int = Field(10, ge=1, le=50)


@dataclass
class ThanksState:
    db: Database

    async def record(self, event: GroupMessage, receivers: list[str]) -> int:
        """Store one row per receiver; the receivers' total thanks in this group afterwards."""
        async with self.db.transaction() as s:
            for rid in receivers:
                s.add(
                    Thanks(
                        at=event.at,
                        group_id=event.group_id,
                        giver_id=event.sender.id,
                        receiver_id=rid,
                    )
                )
            await s.flush()
            query = select(sa.func.count()).where(
                col(Thanks.group_id) == event.group_id, col(Thanks.receiver_id).in_(receivers)
            )
            return int((await s.exec(query)).one())

    async def board(self, group_id: str, top: int) -> list[tuple[str, int]]:
        """(receiver id, times thanked), most thanked first."""
        n = sa.func.count().label("n")
        query = (
            select(col(Thanks.receiver_id), n)
            .where(col(Thanks.group_id) == group_id)
            .group_by(col(Thanks.receiver_id))
            .order_by(n.desc(), col(Thanks.receiver_id))
            .limit(top)
        )
        async with self.db.session() as s:
            return [(str(rid), int(count)) for rid, count in (await s.exec(query)).all()]


plugin = Plugin(
    "thanks",
    title="感谢榜",
    config=ThanksConfig,
    description="“谢谢 @某人” 记一次感谢；发送“感谢榜”查看",
    aliases=("感谢", "谢谢"),  # what 开启/关闭 also accept
)


@plugin.state
async def _state(host: PluginHost) -> ThanksState:
    if host.services.db is None:
        raise RuntimeError("the thanks plugin keeps its records in the database")
    return ThanksState(host.services.db)


@plugin.on(GroupMessage)
async def on_message(event: GroupMessage, ctx: Context, config: ThanksConfig, state: ThanksState) -> bool:
    others = {event.sender.id, ctx.services.bot.id}
    receivers = list(dict.fromkeys(m for m in event.mentions if m not in others))
    if not receivers:
        return False
    text = normalize(event.text)
    if not any(normalize(word) in text for word in config.words):
        return False
    total = await state.record(event, receivers)
    names = "、".join((await _names(ctx, event.group_id, receivers)).values())
    reply = Template.parse(config.reply, REPLY_PLACEHOLDERS)
    ctx.reply(reply.render({"giver": event.sender.display, "names": names, "total": total}))
    return True


@plugin.command("感谢榜", help="本群收到感谢最多的成员")
async def board(ctx: Context, config: ThanksConfig, state: ThanksState) -> None:
    if ctx.group_id is None:
        return
    rows = await state.board(ctx.group_id, config.top)
    if not rows:
        ctx.reply("本群还没有人被感谢过。说“谢谢 @某人”就能记上一笔。")
        return
    names = await _names(ctx, ctx.group_id, [rid for rid, _ in rows])
    lines = [f"{i}. {names[rid]}：{n} 次" for i, (rid, n) in enumerate(rows, 1)]
    ctx.reply("感谢榜\n" + "\n".join(lines))


async def _names(ctx: Context, group_id: str, member_ids: list[str]) -> dict[str, str]:
    """Display names from the group's member list (the platform's), else the id: one who
    left the group still shows on the board."""
    members = {m.id: m.display for m in await ctx.services.platform.members(group_id)}
    return {mid: members.get(mid, mid) for mid in member_ids}
