"""答题: questions from an admin-supplied bank (config `quiz.bank` and/or YAML `bank_files`).
An admin starts a round of one or more questions; the first member whose message equals an
answer (compared normalised: case, width, spaces and punctuation ignored) wins the points,
recorded in the shared ledger as `game:quiz`; after the timeout the answer is revealed.
The bank is gone through before any question repeats in a group."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage
from bot.core.plugin import Command, Permission
from plugins.games.base import RoundGame, plugin, render
from plugins.games.config import QUIZ_CORRECT, QUIZ_HINT, QUIZ_QUESTION, QUIZ_TIMEOUT, GamesConfig
from plugins.games.models import Round
from plugins.games.parsing import answer_key, parse_int
from plugins.games.repo import Award, GamesRepo

if TYPE_CHECKING:
    from plugins.games.state import GamesState


class QuizGame(RoundGame):
    kind = "quiz"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        super().__init__(host, repo)
        self.open: dict[str, tuple[Round, frozenset[str]]] = {}  # group → (question, answer keys)

    def active(self, group_id: str) -> bool:
        return group_id in self.open

    def _track(self, rnd: Round) -> None:
        assert rnd.id is not None
        self.open[rnd.group_id] = (rnd, frozenset(answer_key(a) for a in rnd.answers))
        self.at(self.job_id(rnd.id), rnd.ends_at, lambda fire: self.timeout(rnd))

    def _untrack(self, rnd: Round) -> None:
        assert rnd.id is not None
        current = self.open.get(rnd.group_id)
        if current is not None and current[0].id == rnd.id:
            del self.open[rnd.group_id]
        self.unschedule(self.job_id(rnd.id))

    # --- asking ---------------------------------------------------------------------------
    async def start(self, ctx: Context, config: GamesConfig, count: int) -> None:
        cfg = config.quiz
        if not cfg.enabled:
            ctx.reply(config.off_text)
            return
        gid = ctx.group_id or ""
        if gid in self.open:
            ctx.reply("正在答题中，发送“结束答题”可以提前结束。")
            return
        if not cfg.questions:
            ctx.reply("题库是空的：请在配置的 games.quiz.bank 或 bank_files 里添加题目。")
            return
        if not 1 <= count <= cfg.max_questions:
            ctx.reply(f"题数要在 1~{cfg.max_questions} 之间，例如：开始答题 5")
            return
        await self.ask(gid, 1, count, ctx.sender.id if ctx.sender else "")

    async def ask(self, group_id: str, number: int, total: int, by: str) -> None:
        cfg = self.config(group_id).quiz
        bank = cfg.questions
        if not bank:
            return
        # Least-asked first: the whole bank comes round before anything repeats.
        asked = await self.repo.times_asked(group_id)
        fewest = min(asked.get(q.question, 0) for q in bank)
        question = self.services.rng.choice([q for q in bank if asked.get(q.question, 0) == fewest])
        now = self.now()
        rnd = await self.repo.add_round(
            Round(
                group_id=group_id,
                kind=self.kind,
                question=question.question,
                answers=list(question.answers),
                hint=question.hint,
                number=number,
                total=total,
                started_by=by,
                started_at=now,
                ends_at=now + timedelta(seconds=cfg.timeout_seconds),
            )
        )
        self._track(rnd)
        self.context(group_id).say(
            render(
                cfg.texts.question,
                QUIZ_QUESTION,
                {
                    "number": number,
                    "total": total,
                    "question": question.question,
                    "seconds": cfg.timeout_seconds,
                },
            )
        )

    async def _next(self, rnd: Round) -> None:
        if rnd.number < rnd.total:
            await self.ask(rnd.group_id, rnd.number + 1, rnd.total, rnd.started_by)
        elif rnd.total > 1:
            self.context(rnd.group_id).say(self.config(rnd.group_id).quiz.texts.finished)

    # --- answers ----------------------------------------------------------------------------
    async def on_text(self, ctx: Context, event: GroupMessage, key: str, raw: str) -> bool:
        entry = self.open.get(event.group_id)
        if entry is None or key not in entry[1]:
            return False
        rnd = entry[0]
        assert rnd.id is not None
        cfg = self.config(event.group_id).quiz
        winner = event.sender
        done = await self.repo.finish_round(
            rnd.id,
            "won",
            self.now(),
            winner=winner.id,
            award=Award(cfg.points, "game:quiz", f"game:quiz:{rnd.id}"),
        )
        self._untrack(rnd)
        if done is None:  # someone else was first by a hair, or it timed out
            return False
        ctx.reply(
            render(
                cfg.texts.correct,
                QUIZ_CORRECT,
                {
                    "member": winner.display,
                    "answer": rnd.answers[0],
                    "points": cfg.points,
                    "total": done.total,
                },
            ),
            mention=True,
        )
        await self._next(rnd)
        return True

    async def timeout(self, rnd: Round) -> None:
        assert rnd.id is not None
        done = await self.repo.finish_round(rnd.id, "timeout", self.now())
        self._untrack(rnd)
        if done is None:
            return
        cfg = self.config(rnd.group_id).quiz
        self.context(rnd.group_id).say(render(cfg.texts.timeout, QUIZ_TIMEOUT, {"answer": "／".join(rnd.answers)}))
        await self._next(rnd)

    async def stop(self, ctx: Context) -> None:
        entry = self.open.get(ctx.group_id or "")
        if entry is None:
            ctx.reply("现在没有在答题。")
            return
        rnd = entry[0]
        assert rnd.id is not None
        done = await self.repo.finish_round(rnd.id, "stopped", self.now())
        self._untrack(rnd)
        if done is not None:
            ctx.reply(f"答题已结束。这题的答案是：{'／'.join(rnd.answers)}")

    def hint(self, ctx: Context) -> None:
        entry = self.open.get(ctx.group_id or "")
        if entry is None:
            ctx.reply("现在没有在答题。")
            return
        rnd = entry[0]
        if not rnd.hint:
            ctx.reply("这题没有提示，再想想～")
            return
        ctx.reply(render(self.config(rnd.group_id).quiz.texts.hint, QUIZ_HINT, {"hint": rnd.hint}))


# --- commands -------------------------------------------------------------------------------
@plugin.command(
    "开始答题",
    "答题",
    permission=Permission.GROUP_ADMIN,
    usage="[题数]",
    help="从题库连续出几道题，先答对的得积分",
    glued="number",
)
async def start_quiz(cmd: Command, ctx: Context, config: GamesConfig, state: GamesState) -> None:
    count = parse_int(cmd.rest) if cmd.rest else config.quiz.default_questions
    if count is None:
        ctx.reply("用法：开始答题 [题数]，例如：开始答题 5")
        return
    await state.quiz.start(ctx, config, count)


@plugin.command("出题", permission=Permission.GROUP_ADMIN, help="出一道题，先答对的得积分")
async def one_question(ctx: Context, config: GamesConfig, state: GamesState) -> None:
    await state.quiz.start(ctx, config, 1)


@plugin.command("提示", help="看当前题目的提示")
async def quiz_hint(ctx: Context, state: GamesState) -> None:
    state.quiz.hint(ctx)


@plugin.command("结束答题", permission=Permission.GROUP_ADMIN, help="提前结束答题")
async def stop_quiz(ctx: Context, state: GamesState) -> None:
    await state.quiz.stop(ctx)
