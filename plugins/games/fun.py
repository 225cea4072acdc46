"""Small games for fun: 猜数字 (an admin starts it; members guess with `猜 50`, told higher or
lower, with a per-member cooldown; the first hit wins points as `game:guess`) and 掷骰子
(anyone, with a per-member cooldown). Random numbers come from the injected rng."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.core.context import Context, PluginHost
from bot.core.plugin import Command, Permission
from plugins.games.base import Cooldowns, Game, RoundGame, plugin, render
from plugins.games.config import (
    COOLDOWN,
    DICE_ROLLED,
    GUESS_CORRECT,
    GUESS_HINT,
    GUESS_STARTED,
    GUESS_TIMEOUT,
    GamesConfig,
)
from plugins.games.models import Round
from plugins.games.parsing import parse_int
from plugins.games.repo import Award, GamesRepo

if TYPE_CHECKING:
    from plugins.games.state import GamesState


FACES = "⚀⚁⚂⚃⚄⚅"


class GuessGame(RoundGame):
    kind = "guess"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        super().__init__(host, repo)
        self.open: dict[str, Round] = {}
        self.cooldowns = Cooldowns()

    def _track(self, rnd: Round) -> None:
        assert rnd.id is not None
        self.open[rnd.group_id] = rnd
        self.at(self.job_id(rnd.id), rnd.ends_at, lambda fire: self.timeout(rnd))

    def _untrack(self, rnd: Round) -> None:
        assert rnd.id is not None
        current = self.open.get(rnd.group_id)
        if current is not None and current.id == rnd.id:
            del self.open[rnd.group_id]
        self.unschedule(self.job_id(rnd.id))

    async def start(self, ctx: Context, config: GamesConfig) -> None:
        cfg = config.guess
        if not cfg.enabled:
            ctx.reply(config.off_text)
            return
        gid = ctx.group_id or ""
        running = self.open.get(gid)
        if running is not None:
            extra = running.extra or {}
            ctx.reply(f"猜数字进行中，范围 {extra.get('low')}~{extra.get('high')}，发送“猜 数字”来猜。")
            return
        now = self.now()
        secret = self.services.rng.randint(cfg.low, cfg.high)
        rnd = await self.repo.add_round(
            Round(
                group_id=gid,
                kind=self.kind,
                question=f"{cfg.low}-{cfg.high}",
                answers=[str(secret)],
                extra={"low": cfg.low, "high": cfg.high, "tries": 0},
                started_by=ctx.sender.id if ctx.sender else "",
                started_at=now,
                ends_at=now + timedelta(minutes=cfg.timeout_minutes),
            )
        )
        self._track(rnd)
        ctx.say(
            render(cfg.texts.started, GUESS_STARTED, {"low": cfg.low, "high": cfg.high, "minutes": cfg.timeout_minutes})
        )

    async def guess(self, cmd: Command, ctx: Context, config: GamesConfig) -> None:
        gid = ctx.group_id or ""
        rnd = self.open.get(gid)
        sender = ctx.sender
        if rnd is None or sender is None:
            ctx.reply("现在没有猜数字游戏，请管理员发送“猜数字”开始。")
            return
        assert rnd.id is not None
        number = parse_int(cmd.rest) if cmd.rest else None
        if number is None:
            ctx.reply("用法：猜 数字，例如：猜 50", mention=True)
            return
        extra: dict[str, Any] = dict(rnd.extra or {})
        low, high = int(extra["low"]), int(extra["high"])
        if not low <= number <= high:
            ctx.reply(f"请猜 {low}~{high} 之间的数。", mention=True)
            return
        cfg = config.guess
        key = (gid, sender.id)
        left = self.cooldowns.wait_left(key, self.now(), cfg.cooldown_seconds)
        if left:
            if self.cooldowns.tell_once(key):
                ctx.reply(f"猜得太快啦，{int(left) + 1} 秒后再猜。", mention=True)
            return
        extra["tries"] = int(extra.get("tries", 0)) + 1
        secret = int(rnd.answers[0])
        if number == secret:
            done = await self.repo.finish_round(
                rnd.id,
                "won",
                self.now(),
                winner=sender.id,
                extra=extra,
                award=Award(cfg.points, "game:guess", f"game:guess:{rnd.id}"),
            )
            self._untrack(rnd)
            if done is not None:
                ctx.reply(
                    render(
                        cfg.texts.correct,
                        GUESS_CORRECT,
                        {
                            "member": sender.display,
                            "number": secret,
                            "tries": extra["tries"],
                            "points": cfg.points,
                            "total": done.total,
                        },
                    ),
                    mention=True,
                )
            return
        if number < secret:
            extra["low"], direction = number + 1, "小"
        else:
            extra["high"], direction = number - 1, "大"
        rnd.extra = extra  # the cached row follows the database
        await self.repo.update_extra(rnd.id, extra)
        ctx.reply(
            render(
                cfg.texts.hint,
                GUESS_HINT,
                {
                    "member": sender.display,
                    "guess": number,
                    "direction": direction,
                    "low": extra["low"],
                    "high": extra["high"],
                },
            )
        )

    async def timeout(self, rnd: Round) -> None:
        assert rnd.id is not None
        done = await self.repo.finish_round(rnd.id, "timeout", self.now())
        self._untrack(rnd)
        if done is not None:
            cfg = self.config(rnd.group_id).guess
            self.context(rnd.group_id).say(render(cfg.texts.timeout, GUESS_TIMEOUT, {"number": rnd.answers[0]}))

    async def stop(self, ctx: Context) -> None:
        rnd = self.open.get(ctx.group_id or "")
        if rnd is None:
            ctx.reply("现在没有猜数字游戏。")
            return
        assert rnd.id is not None
        done = await self.repo.finish_round(rnd.id, "stopped", self.now())
        self._untrack(rnd)
        if done is not None:
            ctx.reply(f"猜数字已结束，答案是 {rnd.answers[0]}。")


class DiceGame(Game):
    kind = "dice"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        super().__init__(host, repo)
        self.cooldowns = Cooldowns()

    def roll(self, cmd: Command, ctx: Context, config: GamesConfig) -> None:
        cfg = config.dice
        sender = ctx.sender
        if sender is None:
            return
        if not cfg.enabled:
            ctx.reply(config.off_text)
            return
        count = parse_int(cmd.rest) if cmd.rest else 1
        if count is None or not 1 <= count <= cfg.max_dice:
            ctx.reply(f"用法：掷骰子 [个数]，一次 1~{cfg.max_dice} 个", mention=True)
            return
        key = (ctx.group_id or "", sender.id)
        left = self.cooldowns.wait_left(key, self.now(), cfg.cooldown_seconds)
        if left:
            if self.cooldowns.tell_once(key):
                ctx.reply(render(cfg.texts.cooldown, COOLDOWN, {"seconds": int(left) + 1}), mention=True)
            return
        rolls = [self.services.rng.randint(1, 6) for _ in range(count)]
        faces = " ".join(f"{FACES[r - 1]} {r}" for r in rolls)
        dice = faces if count == 1 else f"{faces}，共 {sum(rolls)} 点"
        ctx.reply(render(cfg.texts.rolled, DICE_ROLLED, {"member": sender.display, "dice": dice, "sum": sum(rolls)}))


# --- commands -------------------------------------------------------------------------------
@plugin.command("猜数字", "开始猜数字", permission=Permission.GROUP_ADMIN, help="开始猜数字游戏")
async def start_guess(ctx: Context, config: GamesConfig, state: GamesState) -> None:
    await state.guess.start(ctx, config)


@plugin.command("猜", usage="数字", help="猜数字，例如：猜 50", glued="number")
async def guess(cmd: Command, ctx: Context, config: GamesConfig, state: GamesState) -> None:
    await state.guess.guess(cmd, ctx, config)


@plugin.command("结束猜数字", permission=Permission.GROUP_ADMIN, help="提前结束猜数字")
async def stop_guess(ctx: Context, state: GamesState) -> None:
    await state.guess.stop(ctx)


@plugin.command("掷骰子", "摇骰子", "骰子", usage="[个数]", help="掷骰子玩", glued="number")
async def roll_dice(cmd: Command, ctx: Context, config: GamesConfig, state: GamesState) -> None:
    state.dice.roll(cmd, ctx, config)
