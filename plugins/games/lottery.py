"""抽奖: an admin starts a lottery (prize, join keyword, number of winners, an end time and/or
a participant count); members join once by sending the keyword; at the end the winners are
drawn from a seed recorded at creation and announced with @-mentions.

Nothing lives only in memory: the lottery, its seed and its entries are rows, and on every
start open lotteries are reloaded, their end jobs re-registered, and any whose end passed
while the bot was down is drawn at once.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage
from bot.core.plugin import Command, Permission
from plugins.games.base import Game, mention_list, plugin, render
from plugins.games.config import (
    LOTTERY_ALREADY,
    LOTTERY_CANCELLED,
    LOTTERY_EMPTY,
    LOTTERY_JOINED,
    LOTTERY_RESULT,
    LOTTERY_STARTED,
    GamesConfig,
    LotteryConfig,
)
from plugins.games.models import OPEN, Lottery
from plugins.games.parsing import LOTTERY_USAGE, LotteryRequest, ParseError, answer_key, format_when, parse_lottery
from plugins.games.repo import DrawResult, GamesRepo

if TYPE_CHECKING:
    from plugins.games.state import GamesState

log = logging.getLogger("qunbot.plugin.games.lottery")


class LotteryGame(Game):
    kind = "lottery"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        super().__init__(host, repo)
        # group → lottery id → (row, keyword match key): what a message is checked against.
        self.open: dict[str, dict[int, tuple[Lottery, str]]] = {}
        # lottery id → members who joined since the last merged acknowledgement.
        self.pending: dict[int, list[str]] = {}

    # --- lifecycle ----------------------------------------------------------------------
    async def restore(self) -> None:
        now = self.now()
        for lot in await self.repo.open_lotteries():
            assert lot.id is not None
            try:
                if lot.ends_at is not None and lot.ends_at <= now:
                    log.info("lottery %s in %s ended while the bot was down: drawing now", lot.id, lot.group_id)
                    await self.draw(lot.id, reason="time")
                else:
                    self._track(lot)
            except Exception:
                log.exception("could not restore lottery %s", lot.id)

    def active(self, group_id: str) -> bool:
        return bool(self.open.get(group_id))

    def _track(self, lot: Lottery) -> None:
        assert lot.id is not None
        self.open.setdefault(lot.group_id, {})[lot.id] = (lot, answer_key(lot.keyword))
        lottery_id = lot.id
        if lot.ends_at is not None:
            self.at(self.job_id(lottery_id), lot.ends_at, lambda fire: self._deadline(lottery_id))

    def _untrack(self, lottery_id: int, group_id: str) -> None:
        self.open.get(group_id, {}).pop(lottery_id, None)
        self.unschedule(self.job_id(lottery_id))
        self.pending.pop(lottery_id, None)
        self.unschedule(self.job_id(lottery_id, "ack"))

    async def _deadline(self, lottery_id: int) -> None:
        await self.draw(lottery_id, reason="time")

    # --- start ----------------------------------------------------------------------------
    async def start(self, cmd: Command, ctx: Context, config: GamesConfig) -> None:
        cfg = config.lottery
        if not cfg.enabled:
            ctx.reply(config.off_text)
            return
        usage = LOTTERY_USAGE.replace("{minutes}", str(cfg.default_minutes))
        if not cmd.rest:
            ctx.reply(usage)
            return
        gid = ctx.group_id or ""
        now = self.now()
        try:
            req = parse_lottery(
                cmd.rest,
                now,
                default_keyword=cfg.default_keyword,
                default_winners=cfg.default_winners,
                default_duration=timedelta(minutes=cfg.default_minutes),
            )
            self._check(req, gid, cfg, now)
        except ParseError as exc:
            ctx.reply(f"❌ {exc}\n{usage}")
            return
        creator = ctx.sender
        lot = await self.repo.add_lottery(
            Lottery(
                group_id=gid,
                prize=req.prize,
                keyword=req.keyword,
                winners=req.winners,
                max_participants=req.max_participants,
                ends_at=req.ends_at,
                # From the injected rng (seeded in simulations), recorded so the draw is reproducible.
                seed=self.services.rng.getrandbits(63),
                created_by=creator.id if creator else "",
                created_at=now,
            )
        )
        self._track(lot)
        ctx.say(
            render(
                cfg.texts.started,
                LOTTERY_STARTED,
                {
                    "id": lot.id,
                    "prize": lot.prize,
                    "winners": lot.winners,
                    "keyword": lot.keyword,
                    "end": self.describe_end(lot, now),
                    "creator": creator.display if creator else "",
                },
            )
        )

    def _check(self, req: LotteryRequest, group_id: str, cfg: LotteryConfig, now: datetime) -> None:
        if req.winners > cfg.max_winners:
            raise ParseError(f"中奖人数最多 {cfg.max_winners} 人")
        if req.max_participants is not None and req.max_participants < req.winners:
            raise ParseError(f"满 {req.max_participants} 人开奖，人数不能少于中奖人数 {req.winners}")
        if req.ends_at is not None and req.ends_at > now + timedelta(days=cfg.max_days):
            raise ParseError(f"截止时间最多在 {cfg.max_days} 天以内")
        running = self.open.get(group_id, {})
        if len(running) >= cfg.max_open:
            raise ParseError(f"本群已有 {len(running)} 个抽奖在进行（最多 {cfg.max_open} 个），请先开奖或取消")
        key = answer_key(req.keyword)
        for lid, (lot, other) in running.items():
            if other == key:
                raise ParseError(f"口令“{req.keyword}”正被抽奖 #{lid}（{lot.prize}）使用，请换一个")
        head = req.keyword.split()[0]
        dispatcher = self.services.dispatcher
        table = dispatcher.runtime.table_for(group_id) if dispatcher is not None else None
        if table is not None and head in table:
            raise ParseError(f"口令不能和命令“{head}”相同，请换一个")

    def describe_end(self, lot: Lottery, now: datetime) -> str:
        if lot.ends_at is not None and lot.max_participants:
            return f"{format_when(lot.ends_at, now)}，或满 {lot.max_participants} 人时（先到为准）"
        if lot.ends_at is not None:
            return format_when(lot.ends_at, now)
        return f"满 {lot.max_participants} 人自动开奖"

    # --- joining ----------------------------------------------------------------------------
    async def on_text(self, ctx: Context, event: GroupMessage, key: str, raw: str) -> bool:
        running = self.open.get(event.group_id)
        if not running:
            return False
        found = next((lot for lot, k in running.values() if k == key), None)
        if found is None:
            return False
        assert found.id is not None
        cfg: LotteryConfig = cast(GamesConfig, ctx.config).lottery  # this plugin's own config
        sender = event.sender
        new, count = await self.repo.join(found.id, sender.id, sender.display, self.now())
        if new is None:  # closed under our feet: the keyword is ordinary chat again
            self._untrack(found.id, found.group_id)
            return False
        values = {"member": sender.display, "count": count, "prize": found.prize, "keyword": found.keyword}
        if not new:
            # A repeat is never counted twice; only told in "each" mode (people repeat the
            # keyword hoping for better odds, and answering each would flood the group).
            if cfg.join_reply == "each":
                ctx.reply(render(cfg.texts.already, LOTTERY_ALREADY, values), mention=True)
            return True
        if cfg.join_reply == "each":
            text, ids = mention_list([(sender.id, sender.display)], 1)
            ctx.say(render(cfg.texts.joined, LOTTERY_JOINED, {**values, "members": text}), ids)
        elif cfg.join_reply == "merged":
            batch = self.pending.setdefault(found.id, [])
            if not batch:
                lid = found.id
                self.at(
                    self.job_id(lid, "ack"),
                    self.now() + timedelta(seconds=cfg.merge_seconds),
                    lambda fire: self._acknowledge(lid),
                    deferred=True,
                )
            batch.append(sender.display)
        if found.max_participants and count >= found.max_participants:
            await self.draw(found.id, reason="full")
        return True

    async def _acknowledge(self, lottery_id: int) -> None:
        names = self.pending.pop(lottery_id, None)
        self.unschedule(self.job_id(lottery_id, "ack"))
        if not names:
            return
        lot = await self.repo.lottery(lottery_id)
        if lot is None or lot.status != OPEN:  # e.g. a timer left over from before a config reload
            return
        cfg = self.config(lot.group_id).lottery
        count = await self.repo.count_entries(lottery_id)
        self.context(lot.group_id).say(
            render(
                cfg.texts.joined,
                LOTTERY_JOINED,
                {
                    "members": "、".join(names),
                    "count": count,
                    "prize": lot.prize,
                    "keyword": lot.keyword,
                },
            )
        )

    # --- the draw ---------------------------------------------------------------------------
    async def draw(self, lottery_id: int, *, reason: str, by: str | None = None) -> DrawResult | None:
        """Draw and announce; None if the lottery was no longer open (already drawn by a
        timer, a full house or an admin)."""
        await self._acknowledge(lottery_id)  # confirmations go out before the result
        result = await self.repo.draw(lottery_id, self.now(), reason, by)
        if result is None:
            return None
        lot = result.lottery
        self._untrack(lottery_id, lot.group_id)
        cfg = self.config(lot.group_id).lottery
        ctx = self.context(lot.group_id)
        if not result.entries:
            ctx.say(render(cfg.texts.empty, LOTTERY_EMPTY, {"id": lot.id, "prize": lot.prize}))
            return result
        people = [(w.member_id, w.member_name) for w in result.winners]
        text, ids = mention_list(people, cfg.max_mentions)
        ctx.say(
            render(
                cfg.texts.result,
                LOTTERY_RESULT,
                {
                    "id": lot.id,
                    "prize": lot.prize,
                    "count": len(result.entries),
                    "winners": text,
                    "names": "、".join(name for _, name in people),
                    "seed": lot.seed,
                },
            ),
            ids,
        )
        log.info(
            "lottery %s in %s drawn (%s): seed %s, %d entries, winners %s",
            lot.id,
            lot.group_id,
            reason,
            lot.seed,
            len(result.entries),
            lot.winner_ids,
        )
        return result

    async def cancel(self, lottery_id: int, group_id: str, by: str | None) -> bool:
        if not await self.repo.cancel_lottery(lottery_id, self.now(), by):
            return False
        self._untrack(lottery_id, group_id)
        return True

    # --- picking one by number ---------------------------------------------------------------
    def pick(self, cmd: Command, ctx: Context, verb: str) -> Lottery | None:
        running = self.open.get(ctx.group_id or "", {})
        arg = cmd.arg(0)
        if arg is not None:
            m = re.fullmatch(r"#?(\d+)", arg)
            entry = running.get(int(m.group(1))) if m else None
            if entry is None:
                ctx.reply(f"没有进行中的抽奖 {arg}。" + self._listing(running))
                return None
            return entry[0]
        if not running:
            ctx.reply("现在没有进行中的抽奖。")
            return None
        if len(running) > 1:
            example = f"{verb} {next(iter(running))}"
            ctx.reply(f"有 {len(running)} 个抽奖在进行，请写编号，例如：{example}" + self._listing(running))
            return None
        return next(iter(running.values()))[0]

    def _listing(self, running: dict[int, tuple[Lottery, str]]) -> str:
        return "".join(f"\n#{lid} {lot.prize}（口令：{lot.keyword}）" for lid, (lot, _) in running.items())


# --- commands -------------------------------------------------------------------------------
@plugin.command(
    "发起抽奖",
    "开始抽奖",
    "创建抽奖",
    permission=Permission.GROUP_ADMIN,
    usage="奖品 [N人] [截止时间] [满M人开奖] [口令=…]",
    help="发起抽奖（不带参数看用法）",
)
async def start_lottery(cmd: Command, ctx: Context, config: GamesConfig, state: GamesState) -> None:
    await state.lottery.start(cmd, ctx, config)


@plugin.command("开奖", "立即开奖", permission=Permission.GROUP_ADMIN, usage="[编号]", help="提前开奖", glued="number")
async def draw_lottery(cmd: Command, ctx: Context, state: GamesState) -> None:
    lot = state.lottery.pick(cmd, ctx, "开奖")
    if lot is None:
        return
    assert lot.id is not None
    if await state.lottery.draw(lot.id, reason="admin", by=ctx.sender.id if ctx.sender else None) is None:
        ctx.reply("这个抽奖已经结束了。")


@plugin.command(
    "取消抽奖", permission=Permission.GROUP_ADMIN, usage="[编号]", help="取消抽奖（不开奖）", glued="number"
)
async def cancel_lottery(cmd: Command, ctx: Context, state: GamesState) -> None:
    lot = state.lottery.pick(cmd, ctx, "取消抽奖")
    if lot is None:
        return
    assert lot.id is not None
    count = await state.lottery.repo.count_entries(lot.id)
    if not await state.lottery.cancel(lot.id, lot.group_id, ctx.sender.id if ctx.sender else None):
        ctx.reply("这个抽奖已经结束了。")
        return
    cfg = state.lottery.config(lot.group_id).lottery
    ctx.say(render(cfg.texts.cancelled, LOTTERY_CANCELLED, {"id": lot.id, "prize": lot.prize, "count": count}))


@plugin.command("抽奖", "抽奖信息", "查看抽奖", help="看看正在进行的抽奖")
async def show_lotteries(ctx: Context, state: GamesState) -> None:
    game = state.lottery
    running = game.open.get(ctx.group_id or "", {})
    if not running:
        ctx.reply("现在没有进行中的抽奖。")
        return
    now = game.now()
    lines = []
    for lid, (lot, _) in running.items():
        count = await game.repo.count_entries(lid)
        lines.append(
            f"🎁 #{lid} {lot.prize}（{lot.winners} 人中奖）\n发送“{lot.keyword}”参与，已有 {count} 人；"
            f"开奖：{game.describe_end(lot, now)}"
        )
    ctx.reply("\n".join(lines))
