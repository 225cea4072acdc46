"""The games' runtime state, rebuilt at every (re)load from the database, and the one
listener that offers plain group messages to the games (lottery keywords, quiz answers,
bare-number votes)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage, MessageKind
from bot.core.plugin import STOP
from bot.core.text import strip_mention
from plugins.games.base import Game, plugin
from plugins.games.fun import DiceGame, GuessGame
from plugins.games.lottery import LotteryGame
from plugins.games.parsing import answer_key
from plugins.games.poll import PollGame
from plugins.games.quiz import QuizGame
from plugins.games.repo import GamesRepo

# Longer messages are chat, not a keyword, an answer or a vote: skip the work.
MAX_LISTEN_CHARS = 100


@dataclass
class GamesState:
    repo: GamesRepo
    lottery: LotteryGame
    poll: PollGame
    quiz: QuizGame
    guess: GuessGame
    dice: DiceGame

    @property
    def listeners(self) -> tuple[Game, ...]:
        # A quiz answer first (it is worth points), then a lottery keyword, then a vote.
        return (self.quiz, self.lottery, self.poll)

    def listening_in(self, group_id: str) -> bool:
        return group_id in self.quiz.open or bool(self.lottery.open.get(group_id)) or group_id in self.poll.open


@plugin.state
async def build_state(host: PluginHost) -> GamesState:
    db = host.services.db
    if db is None:
        raise RuntimeError("the games plugin needs the database (storage.url)")
    repo = GamesRepo(db)
    state = GamesState(
        repo=repo,
        lottery=LotteryGame(host, repo),
        poll=PollGame(host, repo),
        quiz=QuizGame(host, repo),
        guess=GuessGame(host, repo),
        dice=DiceGame(host, repo),
    )
    # Open games come back with their deadlines; those that passed while the bot was down
    # finish now (a lottery is drawn, a poll announced, a question revealed).
    for game in (state.lottery, state.poll, state.quiz, state.guess):
        await game.restore()
    return state


@plugin.on(GroupMessage)
async def listen(event: GroupMessage, ctx: Context, state: GamesState) -> object:
    # Cheap checks first: most messages arrive in groups with no game running.
    if not state.listening_in(event.group_id) or event.kind != MessageKind.TEXT:
        return False
    if not event.text or len(event.text) > MAX_LISTEN_CHARS:
        return False
    raw = strip_mention(event.text, ctx.services.bot.name).strip()
    key = answer_key(raw)
    if not key:
        return False
    for game in state.listeners:
        if await game.on_text(ctx, event, key, raw):
            return STOP
    return False
