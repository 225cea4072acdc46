"""The dispatcher: owns filtering, ordering, stop-propagation and per-plugin error isolation.

Per inbound event:
0. clean out what a database cannot store (NUL, lone surrogates) from its ids, names and text;
1. drop the bot's own messages (and other bot accounts');
2. drop duplicates (same platform id, or same sender/text within the same second);
3. record it (the recorder batches writes off this path);
4. stop there if it is stale (a reconnect replaying history);
5. derive BotJoinedGroup / BotLeftGroup when the bot itself joins or leaves;
6. with several accounts, stop there in a group where another account is on duty;
7. run the handlers of enabled plugins in priority order until one stops propagation.

A handler that fails because the database is unreachable logs no traceback: the outage is
reported once (`bot.storage.health`), and a command gets a plain reply to retry later
(`OUTAGE_REPLY`) unless its plugin handled the outage itself (check-ins are queued).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from bot.core.commands import CommandTable, Match, fold
from bot.core.context import Context, EventScratch, PluginHost, Services
from bot.core.events import (
    BotJoinedGroup,
    BotLeftGroup,
    Event,
    GroupMessage,
    MembersJoined,
    MembersLeft,
    PrivateMessage,
    group_of,
    storable,
)
from bot.core.loader import PluginSettings
from bot.core.plugin import STOP, CommandSpec, HandlerSpec, Permission, ShutdownIncomplete
from bot.storage.health import is_outage

log = logging.getLogger("qunbot.dispatch")

OUTAGE_REPLY = "数据库暂时连不上，这条命令没能执行，请过几分钟再发一次。"


@dataclass(slots=True)
class Route:
    priority: int
    order: int
    host: PluginHost
    handler: HandlerSpec | None  # None: this plugin's commands


@dataclass(frozen=True, slots=True)
class Step:
    """A route resolved for one group: the plugin, its handler (None: its commands) and its
    config there, so the per-event path looks nothing up."""

    host: PluginHost
    handler: HandlerSpec | None
    config: Any


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps one event type takes in one group, in priority order. `handlers` leaves the
    command steps out: most messages cannot be a command, and skip them all at once."""

    steps: tuple[Step, ...]
    handlers: tuple[Step, ...]
    commands: bool


_NO_PLAN = Plan((), (), False)
_YIELD_EVERY = 32  # events dispatched without a pause at most


@dataclass
class Runtime:
    """An immutable snapshot of loaded plugins; hot reload swaps in a new one whole."""

    hosts: dict[str, PluginHost]
    routes: dict[type[Event], list[Route]]
    group_tables: dict[str, CommandTable]
    default_table: CommandTable
    private_table: CommandTable
    commands_by_plugin: dict[str, list[CommandSpec]] = field(default_factory=dict)

    def table_for(self, group_id: str) -> CommandTable:
        return self.group_tables.get(group_id, self.default_table)

    @classmethod
    async def build(cls, loaded: Iterable[PluginSettings], services: Services) -> Runtime:
        ordered = sorted(loaded, key=lambda s: s.priority)
        hosts: dict[str, PluginHost] = {}
        routes: dict[type[Event], list[Route]] = {}
        order = 0
        for settings in ordered:
            host = PluginHost(settings, services)
            if settings.plugin.state_factory is not None:
                host.state = await settings.plugin.state_factory(host)
            hosts[settings.name] = host
            for spec in settings.plugin.handlers:
                for etype in spec.event_types:
                    prio = spec.priority if spec.priority is not None else settings.priority
                    routes.setdefault(etype, []).append(Route(prio, order, host, spec))
                    order += 1
            if settings.plugin.commands:
                for etype in (GroupMessage, PrivateMessage):
                    routes.setdefault(etype, []).append(Route(settings.priority, order, host, None))
                    order += 1
        for lst in routes.values():
            lst.sort(key=lambda r: (r.priority, r.order))

        # What a command may take glued on besides a number (关闭入群欢迎).
        vocabularies = {"plugin": plugin_names(ordered)}

        def table(group_id: str | None, scopes: tuple[str, ...]) -> CommandTable:
            entries: list[tuple[str, CommandSpec]] = []
            for settings in ordered:
                cfg = settings.for_group(group_id)
                for spec in settings.plugin.commands:
                    if spec.scope in scopes:
                        entries.extend((w, spec) for w in spec.words(cfg))
            return CommandTable(entries, vocabularies)

        overridden = {gid for s in ordered for gid in s.per_group}
        return cls(
            hosts=hosts,
            routes=routes,
            group_tables={gid: table(gid, ("group", "both")) for gid in overridden},
            default_table=table(None, ("group", "both")),
            private_table=table(None, ("private", "both")),
            commands_by_plugin={s.name: list(s.plugin.commands) for s in ordered},
        )

    async def shutdown(self) -> list[str]:
        """Run every plugin's shutdown hooks (they write what they hold in memory: activity
        points, audit rows). Returns the names of the plugins whose hook failed."""
        failed: list[str] = []
        for host in self.hosts.values():
            for hook in host.settings.plugin.shutdown_hooks:
                try:
                    await hook(host)
                except ShutdownIncomplete as exc:
                    log.error("plugin %s: %s", host.name, exc)
                except Exception:
                    log.exception("plugin %s failed to shut down", host.name)
                else:
                    continue
                if host.name not in failed:
                    failed.append(host.name)
        return failed


class _Recent:
    """The last `size` keys seen (oldest forgotten first): enough to catch a redelivery,
    which comes within moments of the original."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: set[Any] = set()
        self._order: deque[Any] = deque()

    def seen(self, key: Any) -> bool:
        """True if `key` was seen before; remembers it otherwise."""
        keys = self._keys
        if key in keys:
            return True
        keys.add(key)
        order = self._order
        order.append(key)
        if len(order) > self._size:
            keys.discard(order.popleft())
        return False


class Dispatcher:
    def __init__(self, services: Services, runtime: Runtime) -> None:
        self.services = services
        self.runtime = runtime
        size = services.config.dispatch.dedup_size
        self._ids = _Recent(size)
        self._fingerprints = _Recent(size)
        self.dedup_by_content = services.config.dispatch.dedup_by_content
        self._plans: dict[tuple[type[Event], str | None], Plan] = {}
        self._plans_key: tuple[int, int] = (0, -1)
        self._burst = 0
        self._stale_seconds = -1.0
        self._stale = timedelta()
        self.stats = dict.fromkeys(
            ("received", "own", "duplicate", "stale", "off_duty", "replayed", "handled", "errors"), 0
        )

    def swap(self, runtime: Runtime) -> Runtime:
        old, self.runtime = self.runtime, runtime
        return old

    # --- the pipeline ------------------------------------------------------------------
    async def dispatch(self, event: Event) -> None:
        stats = self.stats
        stats["received"] += 1
        event = storable(event)
        bot_id = self.services.bot.id
        if self._is_own(event, bot_id):
            stats["own"] += 1
            return
        if self._is_duplicate(event):
            stats["duplicate"] += 1
            return
        # Derived first, so the bot's own joins and leaves are recorded as such (the group's
        # active flag) and never as a membership of the bot. A chat message derives nothing.
        events: Sequence[Event] = (event,) if type(event) is GroupMessage else self._derive(event, bot_id)
        recorder = self.services.recorder
        if recorder is not None:
            for ev in events:
                recorder.record(ev)
        if self.services.clock.now() - event.at > self._stale_after():
            stats["stale"] += 1
            log.debug("stale %s from %s: recorded, not acted on", type(event).__name__, event.at)
            return
        duty = self.services.duty
        for ev in events:
            if duty is not None and not await duty.acts_in(ev):
                stats["off_duty"] += 1  # another account is on duty in this group: recorded only
                continue
            await self._route(ev)
        self._burst += 1
        if self._burst >= _YIELD_EVERY:
            # Events fed back to back (a replay, a burst after reconnecting) never suspend a
            # handler: let the recorder, the outbox and timers run now and then.
            self._burst = 0
            await asyncio.sleep(0)

    async def redo(self, event: Event) -> None:
        """Run the handlers on an event that arrived earlier while another account was on duty
        in its group, and that account died before handling it (bot/cluster/catchup.py). It was
        de-duplicated and recorded when it arrived."""
        self.stats["replayed"] += 1
        await self._route(event)

    def _stale_after(self) -> timedelta:
        seconds = self.services.config.dispatch.stale_after_seconds  # a reload may change it
        if seconds != self._stale_seconds:
            self._stale_seconds, self._stale = seconds, timedelta(seconds=seconds)
        return self._stale

    def _is_own(self, event: Event, bot_id: str) -> bool:
        sender = getattr(event, "sender", None)
        if sender is None:
            return False
        return sender.id == bot_id or sender.id in self.services.config.other_bots

    def _is_duplicate(self, event: Event) -> bool:
        if not isinstance(event, (GroupMessage, PrivateMessage)):
            return False
        if event.message_id and self._ids.seen(event.message_id):
            return True
        if not self.dedup_by_content:
            return False
        # Puppets sometimes deliver one message twice under different ids: the copy carries the
        # same platform timestamp, while a member repeating themselves does not.
        # Kept as its hash: the tuple would hold the text and five objects per message (some
        # 500 bytes each over `dedup_size` messages); two different messages sharing a 64-bit
        # hash within that window is not a practical risk.
        fingerprint = hash((group_of(event), event.sender.id, event.kind, event.text, event.at))
        return self._fingerprints.seen(fingerprint)

    def _derive(self, event: Event, bot_id: str) -> list[Event]:
        if isinstance(event, MembersJoined) and any(m.id == bot_id for m in event.members):
            self.services.groups.forget(event.group_id)  # the groups it is in changed
            out: list[Event] = [
                BotJoinedGroup(
                    at=event.at, group_id=event.group_id, inviter=event.inviter, group_topic=event.group_topic
                )
            ]
            others = tuple(m for m in event.members if m.id != bot_id)
            if others:
                out.append(replace(event, members=others))
            return out
        if isinstance(event, MembersLeft) and any(m.id == bot_id for m in event.members):
            self.services.groups.forget(event.group_id)
            out = [BotLeftGroup(at=event.at, group_id=event.group_id, removed_by=event.removed_by)]
            others = tuple(m for m in event.members if m.id != bot_id)
            if others:
                out.append(replace(event, members=others))
            return out
        return [event]

    def _plan_for(self, etype: type[Event], group_id: str | None) -> Plan:
        """The steps of plugins enabled in this group, cached until a switch or reload."""
        groups = self.services.groups
        if self._plans_key != (id(self.runtime), groups.version):
            self._plans.clear()
            self._plans_key = (id(self.runtime), groups.version)
        key = (etype, group_id)
        plan = self._plans.get(key)
        if plan is None:
            steps = tuple(
                Step(r.host, r.handler, r.host.settings.for_group(group_id))
                for r in self.runtime.routes.get(etype, ())
                if group_id is None or (groups.plugin_enabled(r.host.settings, group_id) and _concerns(r, group_id))
            )
            handlers = tuple(s for s in steps if s.handler is not None)
            plan = Plan(steps, handlers, len(handlers) < len(steps)) if steps else _NO_PLAN
            if len(self._plans) > 50_000:  # many groups × types: stay bounded
                self._plans.clear()
            self._plans[key] = plan
        return plan

    async def _route(self, event: Event) -> None:
        group_id = group_of(event)
        plan = self._plan_for(type(event), group_id)
        if not plan.steps:
            return
        scratch = EventScratch(event, self.services.bot.name)
        steps = plan.handlers
        match: Match | None = None
        if plan.commands:
            match = self._parse_command(event, scratch)
            if match is not None:
                steps = plan.steps
        stats = self.stats
        for step in steps:
            host, spec = step.host, step.handler
            if spec is None:
                assert match is not None  # command steps are only taken for a command
                if match.spec.plugin == host.name and await self._run_command(event, step, match, scratch):
                    return
                continue
            # The handler call, written out here: it runs for every plugin on every message.
            ctx = Context(host, event, group_id, scratch, step.config)
            try:
                result = await spec.call(event, ctx, None)
            except Exception as exc:
                stats["errors"] += 1
                if not self._database_outage(exc, "handler runs skipped"):
                    log.exception("plugin %s: handler %s failed on %s", host.name, spec.func.__name__, _describe(event))
                continue
            # A handler returns something truthy when it acted; `block` then stops the rest.
            if result is STOP or ctx.stopped:
                stats["handled"] += 1
                return
            if result:
                stats["handled"] += 1
                if spec.block:
                    return

    def _parse_command(self, event: Event, scratch: EventScratch) -> Match | None:
        cfg = self.services.config.commands
        if isinstance(event, GroupMessage):
            table = self.runtime.table_for(event.group_id)
        elif isinstance(event, PrivateMessage):
            table = self.runtime.private_table
        else:
            return None
        if not table.may_start(scratch.normalized, cfg.prefixes):
            return None
        return table.parse(event.text, cfg.prefixes, self.services.bot.name)

    async def _run_command(self, event: Event, step: Step, match: Match, scratch: EventScratch) -> bool:
        host = step.host
        ctx = Context(host, event, group_of(event), scratch, step.config)
        spec = match.spec
        if spec.permission > Permission.MEMBER:
            level = await ctx.permission()
            if level < spec.permission:
                refuse = self.services.config.commands.refuse_text.replace("{level}", spec.permission.label)
                ctx.reply(refuse, mention=isinstance(event, GroupMessage))
                return True
        try:
            result = await spec.call(event, ctx, match.command)
        except Exception as exc:
            self.stats["errors"] += 1
            if self._database_outage(exc, "commands refused"):
                ctx.reply(OUTAGE_REPLY, mention=isinstance(event, GroupMessage))
            else:
                log.exception("plugin %s: command %s failed on %s", host.name, spec.word, _describe(event))
            return True
        self.stats["handled"] += 1
        return spec.block or result is STOP or ctx.stopped

    def _database_outage(self, exc: Exception, what: str) -> bool:
        """True (and the outage noted, counted under `what`) when `exc` means the database
        is unreachable: one warning per outage instead of a traceback per message."""
        db = self.services.db
        if db is None or not is_outage(exc):
            return False
        db.health.failed(exc)
        db.health.count(what)
        return True


def plugin_names(loaded: Iterable[PluginSettings]) -> list[str]:
    """Every name the loaded plugins answer to in 开启/关闭; two plugins sharing one is an error."""
    owner: dict[str, str] = {}
    for settings in loaded:
        if settings.name == "core":
            continue
        for name in settings.plugin.names:
            key = fold(name)
            if owner.setdefault(key, settings.name) != settings.name:
                raise ValueError(f"plugins {owner[key]} and {settings.name} are both called {name!r}")
    return list(owner)


def _concerns(route: Route, group_id: str) -> bool:
    spec = route.handler
    return spec is None or spec.concerns is None or spec.concerns(route.host.state, group_id)


def _describe(event: Event) -> str:
    parts = [type(event).__name__, f"at={event.at.isoformat()}"]
    gid = group_of(event)
    if gid:
        parts.append(f"group={gid}")
    sender = getattr(event, "sender", None)
    if sender is not None:
        parts.append(f"from={sender.id}")
    text = getattr(event, "text", "")
    if text:
        parts.append(f"text={text[:60]!r}")
    return " ".join(parts)
