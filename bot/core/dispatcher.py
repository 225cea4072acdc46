"""The dispatcher: owns filtering, ordering, stop-propagation and per-plugin error isolation.

Per inbound event:
1. drop the bot's own messages (and other bot accounts');
2. drop duplicates (same platform id, or same sender/text within the same second);
3. record it (the recorder batches writes off this path);
4. stop there if it is stale (a reconnect replaying history);
5. derive BotJoinedGroup / BotLeftGroup when the bot itself joins or leaves;
6. run the handlers of enabled plugins in priority order until one stops propagation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from bot.core.commands import CommandTable, Match
from bot.core.context import EventScratch, PluginHost, Services
from bot.core.events import (
    BotJoinedGroup,
    BotLeftGroup,
    Event,
    GroupMessage,
    MembersJoined,
    MembersLeft,
    PrivateMessage,
    group_of,
)
from bot.core.loader import PluginSettings
from bot.core.plugin import STOP, CommandSpec, HandlerSpec, Permission

log = logging.getLogger("qunbot.dispatch")


@dataclass(slots=True)
class Route:
    priority: int
    order: int
    host: PluginHost
    handler: HandlerSpec | None  # None: this plugin's commands


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

        def table(group_id: str | None, scopes: tuple[str, ...]) -> CommandTable:
            entries = []
            for settings in ordered:
                cfg = settings.for_group(group_id)
                for spec in settings.plugin.commands:
                    if spec.scope in scopes:
                        entries.extend((w, spec) for w in spec.words(cfg))
            return CommandTable(entries)

        overridden = {gid for s in ordered for gid in s.per_group}
        return cls(
            hosts=hosts,
            routes=routes,
            group_tables={gid: table(gid, ("group", "both")) for gid in overridden},
            default_table=table(None, ("group", "both")),
            private_table=table(None, ("private", "both")),
            commands_by_plugin={s.name: list(s.plugin.commands) for s in ordered},
        )

    async def shutdown(self) -> None:
        for host in self.hosts.values():
            for hook in host.settings.plugin.shutdown_hooks:
                try:
                    await hook(host)
                except Exception:
                    log.exception("plugin %s failed to shut down", host.name)


class _Lru:
    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[Any, None] = OrderedDict()

    def seen(self, key: Any) -> bool:
        """True if `key` was seen before; remembers it otherwise."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return False


class Dispatcher:
    def __init__(self, services: Services, runtime: Runtime) -> None:
        self.services = services
        self.runtime = runtime
        size = services.config.dispatch.dedup_size
        self._ids = _Lru(size)
        self._fingerprints = _Lru(size)
        self.dedup_by_content = services.config.dispatch.dedup_by_content
        self._route_cache: dict[tuple[type[Event], str | None], list[Route]] = {}
        self._cache_key: tuple[int, int] = (0, -1)
        self.stats = {"received": 0, "own": 0, "duplicate": 0, "stale": 0, "handled": 0, "errors": 0}

    def swap(self, runtime: Runtime) -> Runtime:
        old, self.runtime = self.runtime, runtime
        return old

    # --- the pipeline ------------------------------------------------------------------
    async def dispatch(self, event: Event) -> None:
        self.stats["received"] += 1
        if self._is_own(event):
            self.stats["own"] += 1
            return
        if self._is_duplicate(event):
            self.stats["duplicate"] += 1
            return
        # Derived first, so the bot's own joins and leaves are recorded as such (the group's
        # active flag) and never as a membership of the bot.
        events = self._derive(event)
        recorder = self.services.recorder
        if recorder is not None:
            for ev in events:
                recorder.record(ev)
        stale = timedelta(seconds=self.services.config.dispatch.stale_after_seconds)
        if self.services.clock.now() - event.at > stale:
            self.stats["stale"] += 1
            log.debug("stale %s from %s: recorded, not acted on", type(event).__name__, event.at)
            return
        for ev in events:
            await self._route(ev)

    def _is_own(self, event: Event) -> bool:
        sender = getattr(event, "sender", None)
        if sender is None:
            return False
        return sender.id == self.services.bot.id or sender.id in self.services.config.other_bots

    def _is_duplicate(self, event: Event) -> bool:
        if not isinstance(event, (GroupMessage, PrivateMessage)):
            return False
        if event.message_id and self._ids.seen(event.message_id):
            return True
        if not self.dedup_by_content:
            return False
        # Puppets sometimes deliver one message twice under different ids: the copy carries the
        # same platform timestamp, while a member repeating themselves does not.
        fingerprint = (group_of(event), event.sender.id, event.kind, event.text, event.at)
        return self._fingerprints.seen(fingerprint)

    def _derive(self, event: Event) -> list[Event]:
        bot_id = self.services.bot.id
        if isinstance(event, MembersJoined) and any(m.id == bot_id for m in event.members):
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
            out = [BotLeftGroup(at=event.at, group_id=event.group_id, removed_by=event.removed_by)]
            others = tuple(m for m in event.members if m.id != bot_id)
            if others:
                out.append(replace(event, members=others))
            return out
        return [event]

    def _routes_for(self, etype: type[Event], group_id: str | None) -> list[Route]:
        """The routes of plugins enabled in this group, cached until a switch or reload."""
        groups = self.services.groups
        if self._cache_key != (id(self.runtime), groups.version):
            self._route_cache.clear()
            self._cache_key = (id(self.runtime), groups.version)
        key = (etype, group_id)
        routes = self._route_cache.get(key)
        if routes is None:
            routes = [
                r for r in self.runtime.routes.get(etype, ())
                if group_id is None or groups.plugin_enabled(r.host.settings, group_id)
            ]
            if len(self._route_cache) > 50_000:  # many groups × types: stay bounded
                self._route_cache.clear()
            self._route_cache[key] = routes
        return routes

    async def _route(self, event: Event) -> None:
        group_id = group_of(event)
        routes = self._routes_for(type(event), group_id)
        if not routes:
            return
        scratch = EventScratch(event, self.services.bot.name)
        match: Match | None = None
        parsed = False
        for route in routes:
            host = route.host
            if route.handler is None:
                if not parsed:
                    match = self._parse_command(event, scratch)
                    parsed = True
                if match is None or match.spec.plugin != host.name:
                    continue
                if await self._run_command(event, host, match, scratch):
                    return
                continue
            if await self._run_handler(event, host, route.handler, scratch):
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

    async def _run_command(self, event: Event, host: PluginHost, match: Match, scratch: EventScratch) -> bool:
        ctx = host.context(event, scratch=scratch)
        spec = match.spec
        if spec.permission > Permission.MEMBER:
            level = await ctx.permission()
            if level < spec.permission:
                refuse = self.services.config.commands.refuse_text.replace("{level}", spec.permission.label)
                ctx.reply(refuse, mention=isinstance(event, GroupMessage))
                return True
        try:
            result = await spec.call(event, ctx, match.command)
        except Exception:
            self.stats["errors"] += 1
            log.exception("plugin %s: command %s failed on %s", host.name, spec.word, _describe(event))
            return True
        self.stats["handled"] += 1
        return spec.block or result is STOP or ctx.stopped

    async def _run_handler(self, event: Event, host: PluginHost, spec: HandlerSpec, scratch: EventScratch) -> bool:
        ctx = host.context(event, scratch=scratch)
        try:
            result = await spec.call(event, ctx, None)
        except Exception:
            self.stats["errors"] += 1
            log.exception("plugin %s: handler %s failed on %s", host.name, spec.func.__name__, _describe(event))
            return False
        # A handler returns something truthy when it acted; `block` then stops the rest.
        stop = result is STOP or ctx.stopped
        if stop or result:
            self.stats["handled"] += 1
        return stop or (spec.block and bool(result))


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
