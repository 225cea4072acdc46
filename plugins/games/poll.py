"""投票: an admin opens a poll (title, options, deadline); members vote by number, once each
(changeable or not, by config); results are announced at the deadline and shown on request.

Voting: `投 2` always works and is confirmed. While a poll is open, a message that is only
a valid option number ("2") is also a vote, counted silently by default: "2点见", "22"
(with three options) or "2 楼说得对" stay ordinary chat, and nothing is taken when no poll
is open. One open poll per group keeps a bare number unambiguous.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage
from bot.core.plugin import Command, Permission
from bot.core.text import normalize
from plugins.games.base import Game, plugin, render
from plugins.games.config import POLL_LOCKED, POLL_RESULT, POLL_STARTED, POLL_VOTED, GamesConfig
from plugins.games.models import Poll
from plugins.games.parsing import POLL_USAGE, ParseError, format_when, parse_poll, parse_vote
from plugins.games.repo import GamesRepo

if TYPE_CHECKING:
    from plugins.games.state import GamesState

log = logging.getLogger("qunbot.plugin.games.poll")

_BARE = re.compile(r"\d{1,2}")


class PollGame(Game):
    kind = "poll"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        super().__init__(host, repo)
        self.open: dict[str, Poll] = {}  # group → its open poll

    async def restore(self) -> None:
        now = self.now()
        for poll in await self.repo.open_polls():
            try:
                if poll.ends_at <= now:
                    log.info("poll %s in %s ended while the bot was down: closing now", poll.id, poll.group_id)
                    await self.close(poll)
                else:
                    self._track(poll)
            except Exception:
                log.exception("could not restore poll %s", poll.id)

    def active(self, group_id: str) -> bool:
        return group_id in self.open

    def _track(self, poll: Poll) -> None:
        assert poll.id is not None
        self.open[poll.group_id] = poll
        self.at(self.job_id(poll.id), poll.ends_at, lambda fire: self._deadline(poll))

    def _untrack(self, poll: Poll) -> None:
        assert poll.id is not None
        if (current := self.open.get(poll.group_id)) is not None and current.id == poll.id:
            del self.open[poll.group_id]
        self.unschedule(self.job_id(poll.id))

    async def _deadline(self, poll: Poll) -> None:
        await self.close(poll)

    # --- open / close ---------------------------------------------------------------------
    async def start(self, cmd: Command, ctx: Context, config: GamesConfig) -> None:
        cfg = config.poll
        if not cfg.enabled:
            ctx.reply(config.off_text)
            return
        usage = POLL_USAGE.replace("{minutes}", str(cfg.default_minutes))
        if not cmd.rest:
            ctx.reply(usage)
            return
        gid = ctx.group_id or ""
        running = self.open.get(gid)
        if running is not None:
            ctx.reply(f"本群已有进行中的投票（#{running.id} {running.title}），请先发送“结束投票”。")
            return
        now = self.now()
        try:
            req = parse_poll(
                cmd.rest, now, default_duration=timedelta(minutes=cfg.default_minutes), max_options=cfg.max_options
            )
            if req.ends_at > now + timedelta(days=cfg.max_days):
                raise ParseError(f"截止时间最多在 {cfg.max_days} 天以内")
        except ParseError as exc:
            ctx.reply(f"❌ {exc}\n{usage}")
            return
        poll = await self.repo.add_poll(
            Poll(
                group_id=gid,
                title=req.title,
                options=req.options,
                ends_at=req.ends_at,
                created_by=ctx.sender.id if ctx.sender else "",
                created_at=now,
            )
        )
        self._track(poll)
        how = "发送“投 编号”投票" + ("，也可以直接发送编号" if cfg.bare_number else "")
        how += "，可以改票" if cfg.allow_change else "，每人一票、不能改票"
        ctx.say(
            render(
                cfg.texts.started,
                POLL_STARTED,
                {
                    "id": poll.id,
                    "title": poll.title,
                    "options": _option_lines(poll),
                    "how": how,
                    "end": format_when(poll.ends_at, now),
                },
            )
        )

    async def close(self, poll: Poll, *, status: str = "closed") -> bool:
        """Close (and announce the results) or cancel; False if it was not open."""
        assert poll.id is not None
        done = await self.repo.close_poll(poll.id, self.now(), status)
        self._untrack(poll)
        if done and status == "closed":
            self.context(poll.group_id).say(await self.results(poll, final=True))
        return done

    async def results(self, poll: Poll, *, final: bool) -> str:
        assert poll.id is not None
        tally = await self.repo.tally(poll.id)
        total = sum(tally.values())
        top = max(tally.values(), default=0)
        lines = []
        for number, option in enumerate(poll.options, start=1):
            n = tally.get(number, 0)
            pct = round(100 * n / total) if total else 0
            bar = "▇" * max(1, round(10 * n / top)) if n else ""
            crown = " 🏆" if final and n and n == top else ""
            lines.append(f"{number}. {option}：{n} 票（{pct}%）{bar}{crown}")
        cfg = self.config(poll.group_id).poll
        return render(
            cfg.texts.result,
            POLL_RESULT,
            {
                "id": poll.id,
                "title": poll.title,
                "results": "\n".join(lines),
                "total": total,
                "status": "结果" if final else "进行中",
            },
        )

    # --- voting ----------------------------------------------------------------------------
    async def vote(self, ctx: Context, number: int, *, explicit: bool) -> None:
        gid = ctx.group_id or ""
        poll = self.open.get(gid)
        sender = ctx.sender
        if poll is None or sender is None:
            if explicit:
                ctx.reply("现在没有进行中的投票。")
            return
        assert poll.id is not None
        cfg = self.config(gid).poll
        if not 1 <= number <= len(poll.options):
            if explicit:
                ctx.reply(f"请发送 1~{len(poll.options)} 之间的编号，例如：投 1", mention=True)
            return
        outcome, previous = await self.repo.vote(poll.id, sender.id, number, self.now(), allow_change=cfg.allow_change)
        if outcome == "closed":
            self._untrack(poll)
            if explicit:
                ctx.reply("这个投票已经结束了。")
            return
        if not (explicit or cfg.confirm_bare):
            return
        if outcome == "locked":
            assert previous is not None
            ctx.reply(
                render(
                    cfg.texts.locked,
                    POLL_LOCKED,
                    {
                        "member": sender.display,
                        "number": previous,
                        "option": poll.options[previous - 1],
                    },
                ),
                mention=True,
            )
            return
        text = cfg.texts.changed if outcome == "changed" else cfg.texts.voted
        ctx.reply(
            render(
                text,
                POLL_VOTED,
                {
                    "member": sender.display,
                    "number": number,
                    "option": poll.options[number - 1],
                },
            ),
            mention=True,
        )

    async def on_text(self, ctx: Context, event: GroupMessage, key: str, raw: str) -> bool:
        poll = self.open.get(event.group_id)
        if poll is None or not self.config(event.group_id).poll.bare_number:
            return False
        text = normalize(raw)
        if not _BARE.fullmatch(text) or not 1 <= int(text) <= len(poll.options):
            return False
        await self.vote(ctx, int(text), explicit=False)
        return True


def _option_lines(poll: Poll) -> str:
    return "\n".join(f"{i}. {option}" for i, option in enumerate(poll.options, start=1))


# --- commands -------------------------------------------------------------------------------
@plugin.command(
    "发起投票",
    "开始投票",
    "创建投票",
    permission=Permission.GROUP_ADMIN,
    usage="标题 选项1 选项2 … [截止=时间]",
    help="发起投票（不带参数看用法）",
)
async def start_poll(cmd: Command, ctx: Context, config: GamesConfig, state: GamesState) -> None:
    await state.poll.start(cmd, ctx, config)


@plugin.command("投", "投票", usage="编号", help="给进行中的投票投一票", glued="number")
async def vote(cmd: Command, ctx: Context, state: GamesState) -> None:
    game = state.poll
    if not cmd.rest:
        poll = game.open.get(ctx.group_id or "")
        if poll is None:
            ctx.reply("现在没有进行中的投票。")
        else:
            ctx.reply(f"📊 {poll.title}\n{_option_lines(poll)}\n发送“投 编号”投票，例如：投 1")
        return
    number = parse_vote(cmd.rest)
    if number is None:
        ctx.reply("请发送“投 编号”，例如：投 1", mention=True)
        return
    await game.vote(ctx, number, explicit=True)


@plugin.command("投票结果", "查看投票", help="看投票结果（进行中的或最近一次的）")
async def poll_results(ctx: Context, state: GamesState) -> None:
    game = state.poll
    gid = ctx.group_id or ""
    poll = game.open.get(gid)
    final = poll is None
    if poll is None:
        poll = await game.repo.latest_poll(gid)
    if poll is None:
        ctx.reply("本群还没有投票。")
        return
    ctx.reply(await game.results(poll, final=final))


@plugin.command("结束投票", permission=Permission.GROUP_ADMIN, help="提前结束投票并公布结果")
async def end_poll(ctx: Context, state: GamesState) -> None:
    poll = state.poll.open.get(ctx.group_id or "")
    if poll is None or not await state.poll.close(poll):
        ctx.reply("现在没有进行中的投票。")


@plugin.command("取消投票", permission=Permission.GROUP_ADMIN, help="取消投票（不公布结果）")
async def cancel_poll(ctx: Context, state: GamesState) -> None:
    poll = state.poll.open.get(ctx.group_id or "")
    if poll is None or not await state.poll.close(poll, status="cancelled"):
        ctx.reply("现在没有进行中的投票。")
        return
    ctx.reply(f"投票“{poll.title}”已取消。")
