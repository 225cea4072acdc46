"""The plugin declaration and what every game shares: its host, repository, clock, scheduler
and the rendering of texts."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.core.context import Context, PluginHost, Services
from bot.core.events import GroupMessage
from bot.core.plugin import Plugin
from bot.core.scheduler import date_trigger
from bot.core.templates import Template
from plugins.games.config import GamesConfig

log = logging.getLogger("qunbot.plugin.games")

if TYPE_CHECKING:
    from plugins.games.models import Round
    from plugins.games.repo import GamesRepo

plugin = Plugin(
    "games",
    title="群活互动",
    aliases=("游戏", "互动", "抽奖", "投票", "答题", "猜数字", "骰子"),
    config=GamesConfig,
    # Before keyword replies (60): a lottery keyword or a quiz answer is not small talk.
    priority=50,
    description="抽奖、投票、答题、猜数字、掷骰子",
)

# A game's deadline still fires however late the scheduler gets to it (a busy loop, a
# suspended laptop): closing late beats never closing. Restarts are handled at load.
LATE_OK = timedelta(days=3650)

# WeChat separates an @name from what follows with U+2005.
MENTION_SEP = "\u2005"


def render(text: str, allowed: Iterable[str], values: Mapping[str, object]) -> str:
    return Template.parse(text, tuple(allowed)).render(values)


def mention_list(people: Iterable[tuple[str, str]], limit: int) -> tuple[str, list[str]]:
    """(text, ids): "@A @B" for the first `limit` (id, name) pairs, then plain names."""
    people = list(people)
    shown = people[:limit]
    text = "".join(f"@{name or pid}{MENTION_SEP}" for pid, name in shown).strip()
    rest = "、".join(name or pid for pid, name in people[limit:])
    return (f"{text} {rest}".strip() if rest else text), [pid for pid, _ in shown]


class Game:
    """Base of the games: one instance per game per loaded plugin (rebuilt on reload)."""

    kind = "game"

    def __init__(self, host: PluginHost, repo: GamesRepo) -> None:
        self.host = host
        self.repo = repo

    @property
    def services(self) -> Services:
        return self.host.services

    def now(self) -> datetime:
        return self.services.clock.now()

    def config(self, group_id: str) -> GamesConfig:
        return self.host.config_for(group_id)

    def context(self, group_id: str) -> Context:
        return self.host.context(group_id=group_id)

    def job_id(self, item_id: int, what: str = "end") -> str:
        return f"games:{self.kind}:{what}:{item_id}"

    def at(
        self, job_id: str, when: datetime, func: Callable[[datetime], Awaitable[None]], *, deferred: bool = False
    ) -> None:
        self.services.scheduler.add(
            job_id, date_trigger(when, self.services.clock.tz), func, grace=LATE_OK, deferred=deferred
        )

    def unschedule(self, job_id: str) -> None:
        self.services.scheduler.remove(job_id)

    async def restore(self) -> None:
        """Reload open games from the database at start-up (and config reload)."""

    async def on_text(self, ctx: Context, event: GroupMessage, key: str, raw: str) -> bool:
        """A group message that is no command of ours (`raw`: the text without the bot's
        @-mention; `key`: its `answer_key`). True when this game consumed it."""
        return False


class RoundGame(Game):
    """A game played in timed rounds (quiz questions, guess-the-number)."""

    async def restore(self) -> None:
        """Reopen this game's rounds left open by a restart; one whose time ran out while the
        bot was down ends now."""
        now = self.now()
        for rnd in await self.repo.open_rounds():
            if rnd.kind != self.kind:
                continue
            try:
                if rnd.ends_at <= now:
                    await self.timeout(rnd)
                else:
                    self._track(rnd)
            except Exception:
                log.exception("could not restore %s round %s", self.kind, rnd.id)

    def _track(self, rnd: Round) -> None:
        raise NotImplementedError

    async def timeout(self, rnd: Round) -> None:
        raise NotImplementedError


class Cooldowns:
    """Per-member cooldowns (kept in memory: losing them on restart is harmless). A member
    who keeps trying during the cooldown is told once, then ignored until it ends.

    Bounded in time and size: the members are kept oldest start first, those whose longest
    cooldown seen so far has ended are dropped as new ones come, and past `cap` the oldest go
    even if their cooldown is still running (a crowd that large is no longer waiting on one)."""

    def __init__(self, cap: int = 10_000) -> None:
        self._last: OrderedDict[tuple[str, ...], datetime] = OrderedDict()
        self._told: set[tuple[str, ...]] = set()
        self._cap = cap
        self._longest = timedelta()

    def wait_left(self, key: tuple[str, ...], now: datetime, seconds: float) -> float:
        """Seconds left (0: go ahead, and the cooldown starts now)."""
        last = self._last.get(key)
        if last is not None and seconds > 0:
            left = seconds - (now - last).total_seconds()
            if left > 0:
                return left
        self._longest = max(self._longest, timedelta(seconds=max(seconds, 0)))
        self._last.pop(key, None)
        self._last[key] = now
        self._told.discard(key)
        self._expire(now)
        return 0.0

    def _expire(self, now: datetime) -> None:
        last, told = self._last, self._told
        while last:
            key, started = next(iter(last.items()))
            if len(last) <= self._cap and now - started < self._longest:
                break
            last.popitem(last=False)
            told.discard(key)

    def __len__(self) -> int:
        return len(self._last)

    def tell_once(self, key: tuple[str, ...]) -> bool:
        """True the first time it is asked during one cooldown."""
        if key in self._told:
            return False
        self._told.add(key)
        return True
