"""What plugins see: the app-wide services, a per-plugin host, and a per-event context."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.bus import Bus, Handoff
from bot.core.clock import Clock
from bot.core.duty import DutyGate
from bot.core.events import Event, GroupMessage, Member, PrivateMessage, group_of
from bot.core.health import AccountHealth
from bot.core.outbox import OutboundItem, Outbox
from bot.core.platform import Platform
from bot.core.plugin import Permission, PluginConfig
from bot.core.text import normalize, strip_mention

if TYPE_CHECKING:
    from bot.config.models import BotConfig
    from bot.core.groups import GroupDirectory
    from bot.core.loader import PluginSettings
    from bot.core.members import MemberLists
    from bot.core.notify import Notifier
    from bot.core.scheduler import Scheduler
    from bot.storage.db import Database
    from bot.storage.recorder import Recorder


@dataclass
class Services:
    """Everything the composition root builds once per bot account."""

    config: BotConfig
    clock: Clock
    platform: Platform
    outbox: Outbox
    groups: GroupDirectory
    notifier: Notifier
    scheduler: Scheduler
    rng: random.Random
    db: Database | None = None
    recorder: Recorder | None = None
    # Several accounts on one PostgreSQL: who acts in which group. None: this account acts everywhere.
    duty: DutyGate | None = None
    # This account's health (rate limits, bans, disconnects): the 账号状态 command, the web
    # console and the admin digest read it.
    health: AccountHealth | None = None
    # Several accounts: notices to the other processes (LISTEN/NOTIFY), and actions handed to
    # the account on duty in another group. None: one account, nobody to tell.
    bus: Bus | None = None
    handoff: Handoff | None = None
    # The platform's member lists, read into the recorder (start-up, bot joined, hourly).
    member_lists: MemberLists | None = None
    # Set by the composition root; built-in commands read the loaded plugins through it.
    dispatcher: Any = None
    # A file of the bot's own under the data directory, by kind (e.g. "held-checkins.jsonl"):
    # an absolute path named for the database. None: nowhere to keep files (tests).
    data_file: Callable[[str], Path] | None = None
    # Told of what happened (member_joined, member_left, ad_removed, broadcast_report) with
    # plain JSON data; the web console's outgoing webhooks listen. Kept across config reloads.
    listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)

    @property
    def bot(self) -> Member:
        return self.platform.bot

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Hand an event to every listener; a failing listener is logged, never raised."""
        for listener in self.listeners:
            try:
                listener(event, data)
            except Exception:
                logging.getLogger("qunbot.core").exception("listener for %s failed", event)

    def require_db(self) -> Database:
        """The database, for code that cannot work without one (a running bot always has one;
        only unit tests build Services without)."""
        if self.db is None:
            raise RuntimeError("no database: this needs the bot's storage")
        return self.db


class PluginHost:
    """One plugin, loaded: its resolved settings, its state, and a way to act outside an
    event (scheduled jobs, start-up work)."""

    def __init__(self, settings: PluginSettings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self.state: Any = None
        self.log = logging.getLogger(f"qunbot.plugin.{settings.name}")

    @property
    def name(self) -> str:
        return self.settings.name

    def config_for(self, group_id: str | None) -> Any:
        return self.settings.for_group(group_id)

    def enabled_in(self, group_id: str) -> bool:
        return self.services.groups.plugin_enabled(self.settings, group_id)

    def context(
        self, event: Event | None = None, group_id: str | None = None, scratch: EventScratch | None = None
    ) -> Context:
        gid = group_id if group_id is not None else (group_of(event) if event else None)
        return Context(self, event, gid, scratch, self.settings.for_group(gid))


class EventScratch:
    """Work derived from one event that several plugins need; done at most once."""

    __slots__ = ("_bot_name", "_normalized", "event")

    def __init__(self, event: Event | None, bot_name: str) -> None:
        self.event = event
        self._bot_name = bot_name
        self._normalized: str | None = None

    @property
    def normalized(self) -> str:
        if self._normalized is None:
            raw = getattr(self.event, "text", "") or ""
            self._normalized = normalize(strip_mention(raw, self._bot_name)) if raw else ""
        return self._normalized


class Context:
    """Per event and plugin. Sends are queued on the outbox and never awaited here: a
    handler returns quickly and the outbox paces the account."""

    __slots__ = ("_config", "_stopped", "event", "group_id", "host", "scratch")

    def __init__(
        self,
        host: PluginHost,
        event: Event | None,
        group_id: str | None,
        scratch: EventScratch | None,
        config: PluginConfig,
    ) -> None:
        """`config`: the plugin's config resolved for `group_id` (the dispatcher resolves it
        once per group, not per event)."""
        self.host = host
        self.event = event
        self.group_id = group_id
        self.scratch = scratch if scratch is not None else EventScratch(event, host.services.bot.name)
        self._config = config
        self._stopped = False

    @property
    def text(self) -> str:
        """The message's matching form (normalised, the @-mention of the bot stripped),
        computed once per event and shared by every plugin."""
        return self.scratch.normalized

    # --- what the handler knows -------------------------------------------------------
    @property
    def services(self) -> Services:
        return self.host.services

    @property
    def config(self) -> PluginConfig:
        return self._config

    @property
    def state(self) -> Any:
        return self.host.state

    @property
    def clock(self) -> Clock:
        return self.host.services.clock

    @property
    def db(self) -> Database | None:
        return self.host.services.db

    @property
    def log(self) -> logging.Logger:
        return self.host.log

    def now(self) -> Any:
        return self.host.services.clock.now()

    @property
    def sender(self) -> Member | None:
        ev = self.event
        return ev.sender if isinstance(ev, (GroupMessage, PrivateMessage)) else None

    async def permission(self, member_id: str | None = None, group_id: str | None = None) -> Permission:
        who = member_id or (self.sender.id if self.sender else "")
        return await self.services.groups.permission(who, group_id or self.group_id)

    # --- actions (all through the outbox) ---------------------------------------------
    def say(
        self, text: str, mentions: tuple[str, ...] | list[str] = (), group_id: str | None = None
    ) -> list[OutboundItem]:
        gid = group_id or self.group_id
        if gid is None:
            raise ValueError("say() outside a group needs group_id")
        return self.services.outbox.say(gid, text, tuple(mentions))

    def send_private(self, contact_id: str, text: str) -> list[OutboundItem]:
        return self.services.outbox.send_private(contact_id, text)

    def reply(self, text: str, *, mention: bool = False) -> list[OutboundItem]:
        """Answer where the event came from: in the group (optionally @-mentioning the
        sender) or privately."""
        ev = self.event
        if isinstance(ev, GroupMessage):
            mentions = (ev.sender.id,) if mention else ()
            if mention:
                text = f"@{ev.sender.display}\u2005{text}"
            return self.say(text, mentions, ev.group_id)
        if isinstance(ev, PrivateMessage):
            return self.send_private(ev.sender.id, text)
        raise ValueError(f"cannot reply to {type(ev).__name__}")

    def remove(self, group_id: str, member_id: str, reason: str) -> OutboundItem:
        return self.services.outbox.remove(group_id, member_id, reason)

    def invite(self, group_id: str, contact_id: str) -> OutboundItem:
        return self.services.outbox.invite(group_id, contact_id)

    async def notify_admins(self, text: str, group_id: str | None = None) -> None:
        await self.services.notifier.notify(text, group_id=group_id or self.group_id, source=self.host.name)

    def stop(self) -> None:
        """Stop propagation: lower-priority handlers will not see this event."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped
