"""The plugin contract.

A plugin is a module in `plugins/` that exposes exactly one `plugin = Plugin(...)`
declaration: its name, its pydantic config model and its handlers. Handlers are
`async def` functions that declare what they need by parameter name (see `INJECTABLE`)::

    plugin = Plugin("welcome", title="入群欢迎", config=WelcomeConfig)

    @plugin.on(MembersJoined)
    async def greet(event: MembersJoined, ctx: Context, config: WelcomeConfig) -> None: ...

    @plugin.command("签到", words_from=lambda c: c.keywords)
    async def check_in(cmd: Command, ctx: Context) -> None: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from bot.core.events import Event

if TYPE_CHECKING:
    from bot.core.context import PluginHost

# Names a handler may declare, and how each is read from (event, ctx, cmd).
_SOURCES: dict[str, str] = {
    "event": "e",
    "ctx": "c",
    "config": "c.config",
    "state": "c.state",
    "cmd": "m",
    "services": "c.services",
    "clock": "c.clock",
    "db": "c.db",
}
INJECTABLE = frozenset(_SOURCES)


class Permission(IntEnum):
    MEMBER = 0
    GROUP_ADMIN = 1  # the group owner and the admins the platform reports
    BOT_ADMIN = 2  # contacts listed in `bot_admins`

    @property
    def label(self) -> str:
        return {0: "成员", 1: "群管理员", 2: "机器人管理员"}[int(self)]


class PluginConfig(BaseModel):
    """Base for every plugin's config model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmptyConfig(PluginConfig):
    pass


Scope = Literal["group", "private", "both"]


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed chat command, as handed to a command handler."""

    word: str  # the command word as configured (not the alias typed)
    typed: str  # what the user actually typed as the command word
    args: tuple[str, ...]
    rest: str  # everything after the command word, stripped, with original spacing

    def arg(self, index: int, default: str | None = None) -> str | None:
        return self.args[index] if index < len(self.args) else default


@dataclass(slots=True)
class HandlerSpec:
    plugin: str
    event_types: tuple[type[Event], ...]
    func: Callable[..., Awaitable[Any]]
    priority: int | None  # None: the plugin's priority
    block: bool
    params: tuple[str, ...]
    # (plugin state, group id) -> whether the handler can act in that group at all. Asked when
    # the dispatcher plans a group (at load, reload and switch): for what only those change.
    concerns: Callable[[Any, str], bool] | None = None
    call: Callable[..., Awaitable[Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.call = make_caller(self.func, self.params)


@dataclass(slots=True)
class CommandSpec:
    plugin: str
    word: str
    aliases: tuple[str, ...]
    func: Callable[..., Awaitable[Any]]
    permission: Permission
    help: str
    usage: str
    scope: Scope
    params: tuple[str, ...]
    # Per-group command words taken from the plugin's resolved config (e.g. check-in keywords).
    words_from: Callable[[Any], Iterable[str]] | None = None
    block: bool = True
    # The argument may be glued to the word (投2, 关闭入群欢迎) when it is of this kind:
    # "number", or a vocabulary the runtime provides ("plugin": the plugins' names and aliases).
    glued: str | None = None
    call: Callable[..., Awaitable[Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.call = make_caller(self.func, self.params)

    def words(self, config: Any) -> tuple[str, ...]:
        if self.words_from is not None:
            return tuple(w for w in self.words_from(config) if w)
        return (self.word, *self.aliases)


StateFactory = Callable[["PluginHost"], Awaitable[Any]]
# What a plugin sends to on its own (relays, broadcasts), from its config: (what, group
# selectors) pairs, e.g. ("转发「讲座」", ["g2", "set:learning"]). Read by `bot.core.reach`.
TargetsOf = Callable[[Any], Iterable[tuple[str, list[str]]]]


@dataclass
class Plugin:
    name: str
    title: str = ""
    config: type[PluginConfig] = EmptyConfig
    description: str = ""
    priority: int = 50  # lower runs first; configurable per deployment in YAML
    handlers: list[HandlerSpec] = field(default_factory=list)
    commands: list[CommandSpec] = field(default_factory=list)
    state_factory: StateFactory | None = None
    shutdown_hooks: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # Added after the original fields so positional construction keeps its meaning (the plugin
    # contract is a stable interface).
    # Other names people call the plugin by (关闭 欢迎, 开启 打卡): the title and `name` always work.
    aliases: tuple[str, ...] = ()
    # What a member can send privately beyond the commands (keywords a handler reads, like 进群).
    guide_factory: Callable[[Any], Iterable[tuple[str, str]]] | None = None
    targets_of: TargetsOf | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"plugin name must be an identifier: {self.name!r}")
        self.title = self.title or self.name

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the plugin answers to in 开启/关闭: title, aliases, then the id."""
        return tuple(dict.fromkeys((self.title, *self.aliases, self.name)))

    def on(
        self,
        *event_types: type[Event],
        priority: int | None = None,
        block: bool = False,
        concerns: Callable[[Any, str], bool] | None = None,
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Handle events of these types. `block=True` stops lower-priority handlers
        whenever this one returns without error; returning `STOP` does so case by case.
        `concerns(state, group_id)`, when given, says whether the handler has anything to do
        in a group as loaded (e.g. the groups a relay links): in the others it is never
        called. It must depend only on the config and the state built at load."""

        def deco(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.handlers.append(
                HandlerSpec(self.name, event_types, func, priority, block, _params(func, self.name), concerns)
            )
            return func

        return deco

    def command(
        self,
        word: str,
        *aliases: str,
        permission: Permission = Permission.MEMBER,
        help: str = "",
        usage: str = "",
        scope: Scope = "group",
        words_from: Callable[[Any], Iterable[str]] | None = None,
        glued: str | None = None,
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """A chat command. The core parses it, checks `permission` (replying with a refusal
        when the asker lacks it) and lists it in 帮助 for those who may use it. `glued`
        ("number" or a vocabulary name) lets its argument follow without a space (投2)."""

        def deco(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.commands.append(
                CommandSpec(
                    self.name,
                    word,
                    aliases,
                    func,
                    permission,
                    help,
                    usage,
                    scope,
                    _params(func, self.name),
                    words_from,
                    glued=glued,
                )
            )
            return func

        return deco

    def state(self, factory: StateFactory) -> StateFactory:
        """Build the plugin's runtime state once per (re)load; handlers receive it as `state`."""
        self.state_factory = factory
        return factory

    def guide(self, func: Callable[[Any], Iterable[tuple[str, str]]]) -> Callable[[Any], Iterable[tuple[str, str]]]:
        """List, in a member's private 帮助, what the plugin's handlers answer besides its
        commands: `func(state)` returns (what to send, what it does) pairs, built from the
        plugin's state as loaded (so the list follows the config, never a hard-coded copy)."""
        self.guide_factory = func
        return func

    def targets(self, func: TargetsOf) -> TargetsOf:
        """Declare the groups the plugin sends to on its own (not replies), so that targets
        the bot is not in are reported by `qunbot check-config` and at start-up."""
        self.targets_of = func
        return func

    def on_shutdown(self, func: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        self.shutdown_hooks.append(func)
        return func


class _Stop:
    """Return `STOP` from a handler to stop propagation for this event."""

    def __repr__(self) -> str:
        return "STOP"


STOP = _Stop()


class ShutdownIncomplete(Exception):
    """Raised by a shutdown hook that could not write everything for a known reason (the
    database is away) and put it somewhere safe: the message says where. Logged as one line,
    not a traceback; the plugin still counts as failed, so `qunbot run` exits non-zero."""


def _params(func: Callable[..., Any], plugin: str) -> tuple[str, ...]:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"plugin {plugin}: handler {func.__name__} must be `async def`")
    parameters = inspect.signature(func).parameters
    if any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters.values()):
        raise TypeError(f"plugin {plugin}: handler {func.__name__} takes plain parameters only (no *, **)")
    names = tuple(parameters)
    unknown = [n for n in names if n not in INJECTABLE]
    if unknown:
        raise TypeError(
            f"plugin {plugin}: handler {func.__name__} asks for {unknown}; handlers may ask for {sorted(INJECTABLE)}"
        )
    return names


def make_caller(func: Callable[..., Any], params: tuple[str, ...]) -> Callable[[Event, Any, Any], Any]:
    """`call(event, ctx, cmd)` passing the handler exactly its declared dependencies.

    This runs for every handler on every message, so the call is written out once at load
    (``lambda e, c, m: func(e, c, c.config)``), the way `dataclasses` writes `__init__`:
    no per-call loop, dict or getter call. The source is built only from `_SOURCES`."""
    args = ", ".join(_SOURCES[name] for name in params)
    caller: Callable[[Event, Any, Any], Any] = eval(f"lambda e, c, m: func({args})", {"func": func})
    return caller
