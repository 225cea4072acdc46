"""`qunbot simulate`: replay a scenario file through the real bot on a virtual clock.

The scenario format is a stable interface (DESIGN §7). Each step happens at the current
virtual time; after a step the bot finishes what it queued (the outbox paces sends in
virtual time, so pacing is visible in the timestamps but costs nothing). `wait` moves the
clock forward and runs whatever scheduled work falls due meanwhile, in order.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.adapters.world import World, WorldPlatform, qr_image
from bot.app import BotApp, LoadedConfig
from bot.config.errors import ConfigError, ConfigIssue, LineMap
from bot.config.yamlio import load_yaml
from bot.core.clock import VirtualClock
from bot.core.events import (
    Event,
    FriendRequest,
    GroupMessage,
    GroupRenamed,
    Member,
    MembersJoined,
    MembersLeft,
    MessageKind,
    PrivateMessage,
    Quote,
)
from bot.core.platform import ActionRecord
from bot.core.timeparse import TimeParseError
from bot.core.timeparse import parse_duration as core_parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioContact(_Strict):
    id: str
    name: str = ""


class ScenarioBot(_Strict):
    id: str = "wxid_bot"
    name: str = "小助手"
    # Whether the bot account may remove members (False: ad removal must fail closed).
    can_remove: bool = True


class ScenarioGroup(_Strict):
    id: str
    topic: str = ""
    owner: str | None = None
    admins: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)


class Scenario(_Strict):
    clock: datetime
    bot: ScenarioBot = Field(default_factory=ScenarioBot)
    contacts: list[ScenarioContact] = Field(default_factory=list)
    groups: list[ScenarioGroup] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("clock")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("clock needs a UTC offset, e.g. 2026-12-01T08:00:00+08:00")
        return value


def parse_duration(value: object) -> timedelta:
    """A `wait:` step: 90 (seconds), 90s, 5m, 2h, 1d (the core's duration parser, which also
    reads 30分钟 and 1h30m); the error is in the CLI's language."""
    try:
        return core_parse_duration(value)
    except TimeParseError:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 2h, 1d)") from None


class ScenarioError(Exception):
    pass


_STEP_KEYS: dict[str, set[str]] = {
    "message": {"group", "from", "text", "kind", "url", "mentions", "id", "qr", "quote"},
    "join": {"join", "members", "inviter"},
    "leave": {"leave", "members", "by"},
    "private": {"private", "text", "kind", "url", "id"},
    "wait": {"wait"},
    "rename": {"rename", "topic", "by"},
    "friend_request": {"friend_request", "hello"},
}


def step_kind(step: dict[str, Any]) -> str | None:
    for kind in ("join", "leave", "private", "wait", "rename", "friend_request"):
        if kind in step:
            return kind
    if "group" in step and "from" in step:
        return "message"
    return None


@dataclass
class Simulation:
    scenario: Scenario
    lines: LineMap
    loaded: LoadedConfig
    db_url: str | None = None
    seed: int = 0
    on_action: Callable[[ActionRecord], None] | None = None
    actions: list[ActionRecord] = field(default_factory=list)

    async def run(self) -> list[ActionRecord]:
        await self.start()
        try:
            for number, step in enumerate(self.scenario.steps, start=1):
                await self.step(step, number)
            await self.finish()
        finally:
            await self.close()
        return self.actions

    async def start(self) -> None:
        sc = self.scenario
        self.clock = VirtualClock(sc.clock)
        world = self.world = World(Member(sc.bot.id, sc.bot.name))
        for c in sc.contacts:
            world.add_contact(c.id, c.name)
        for g in sc.groups:
            world.add_group(g.id, g.topic, g.owner, g.admins, g.members)
        self.known = self._known_ids(world)
        self.followups: list[Event] = []
        self.platform = WorldPlatform(
            world, self.clock, on_action=self._record, on_event=self.followups.append, can_remove=sc.bot.can_remove
        )
        # The scenario's bot identity wins over the config's: it is who the world knows.
        base = self.loaded.config
        config = base.model_copy(update={"bot": base.bot.model_copy(update={"id": sc.bot.id, "name": sc.bot.name})})
        loaded = LoadedConfig(config, self.loaded.lines, self.loaded.plugins, self.loaded.path)
        self._tmp = tempfile.TemporaryDirectory(prefix="qunbot-sim-")
        db_url = self.db_url or f"sqlite+aiosqlite:///{Path(self._tmp.name) / 'sim.db'}"
        self.app = BotApp(loaded, self.platform, self.clock, rng=random.Random(self.seed), db_url=db_url)
        await self.app.start()
        # The scenario's groups exist before the bot: their members are already there.
        await self.app.refresh_members()
        # Step ids are unique, and two steps may share one virtual instant: the same text twice
        # in a row is two messages here, never a redelivery.
        self.app.dispatcher.dedup_by_content = False  # type: ignore[union-attr]
        self._nominal = self.clock.now()
        self._seq = 0
        self._number = 0

    async def step(self, step: dict[str, Any], number: int | None = None) -> None:
        """Run one scenario step (the same dicts as in a scenario file's `steps`)."""
        self._number = number = number if number is not None else self._number + 1
        kind = self._check_step(number, step)
        if kind == "wait":
            try:
                delta = parse_duration(step["wait"])
            except ValueError as exc:
                raise self._fail(number, str(exc)) from None
            self._nominal += delta
            await self._advance(self._nominal)
            return
        self.clock.advance_to(self._nominal)
        self._seq += 1
        event = self._event(number, kind, step, self.clock.now(), self.world, self._seq)
        await self.app.handle(event)
        await self._advance(None)

    async def finish(self) -> None:
        """Let the bot finish: queued sends, then deferred work (merged welcomes) at the
        time it falls due, as a running bot would."""
        await self._advance(None)
        services = self.app.services
        assert services is not None
        while (deferred := services.scheduler.next_deferred()) is not None:
            await self._advance(max(deferred, self.clock.now()))

    async def close(self) -> None:
        try:
            await self.app.stop(drain_seconds=0)
        finally:
            self._tmp.cleanup()

    def _record(self, record: ActionRecord) -> None:
        self.actions.append(record)
        if self.on_action is not None:
            self.on_action(record)

    # --- driving virtual time -------------------------------------------------------
    async def _advance(self, target: datetime | None) -> None:
        """Move virtual time forward, running follow-up events, paced sends and scheduled
        jobs in time order. With no target: until the outbox is empty (settling after a
        step); future schedules are left for later waits."""
        app, clock, followups = self.app, self.clock, self.followups
        services = app.services
        assert services is not None
        stuck = 0
        while True:
            while followups:
                await app.handle(followups.pop(0))
            before = (clock.now(), services.outbox.pending)
            candidates = [t for t in (services.outbox.next_due(), services.scheduler.next_due()) if t is not None]
            if target is None and services.outbox.pending == 0:
                candidates = []
            if target is not None:
                candidates = [t for t in candidates if t <= target]
            if not candidates:
                break
            clock.advance_to(max(min(candidates), clock.now()))
            await services.scheduler.run_due()
            due = services.outbox.next_due()
            if due is not None and due <= clock.now():
                await services.outbox.send_next()
            # Guard against a component that reports work due but makes no progress.
            stuck = stuck + 1 if (clock.now(), services.outbox.pending) == before and not followups else 0
            if stuck > 1000:
                raise RuntimeError("simulation made no progress (outbox or scheduler stuck)")
        if target is not None:
            clock.advance_to(target)
            await services.scheduler.run_due()
            if services.outbox.pending or followups:
                await self._advance(None)

    # --- steps ----------------------------------------------------------------------
    def _known_ids(self, world: World) -> set[str]:
        known = set(world.contacts)
        for g in world.groups.values():
            known.update(g.members)
            known.update(g.admins)
            if g.owner:
                known.add(g.owner)
        return known

    def _fail(self, number: int, problem: str) -> ScenarioError:
        line = self.lines.line_of(("steps", number - 1))
        return ScenarioError(f"{self.lines.file}:{line}: step {number}: {problem}")

    def _check_step(self, number: int, step: object) -> str:
        if not isinstance(step, dict):
            raise self._fail(number, "a step must be a mapping")
        kind = step_kind(step)
        if kind is None:
            raise self._fail(
                number,
                f"unknown step {sorted(step)!r} (expected one of: group message, "
                "join, leave, private, wait, rename, friend_request)",
            )
        extra = set(step) - _STEP_KEYS[kind]
        if extra:
            raise self._fail(number, f"unknown key(s) {sorted(extra)} in a {kind} step")
        return kind

    def _group(self, number: int, world: World, gid: object) -> str:
        if not isinstance(gid, str) or gid not in world.groups:
            raise self._fail(number, f"unknown group {gid!r}")
        return gid

    def _contact(self, number: int, world: World, cid: object) -> Member:
        if not isinstance(cid, str) or cid not in self.known:
            raise self._fail(number, f"unknown contact {cid!r} (list it under contacts)")
        return world.contact(cid)

    def _members(self, number: int, world: World, value: object) -> list[Member]:
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, list) or not ids:
            raise self._fail(number, "members must be a non-empty list of contact ids")
        return [self._contact(number, world, m) for m in ids]

    def _quote(self, number: int, world: World, value: object) -> Quote | None:
        """`quote: {from: id, text: …}`: a reply quoting a message, as WeChat shows it (the
        quoted sender's display name and text, no ids)."""
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"from", "text"} or "from" not in value:
            raise self._fail(number, "quote must be {from: contact id, text: the quoted text}")
        quoted = self._contact(number, world, value["from"])
        return Quote(name=quoted.display, text=str(value.get("text") or ""))

    def _event(self, number: int, kind: str, step: dict[str, Any], now: datetime, world: World, seq: int) -> Event:
        try:
            return self._build(number, kind, step, now, world, seq)
        except ScenarioError:
            raise
        except (TypeError, ValueError) as exc:
            raise self._fail(number, str(exc)) from None

    def _build(self, number: int, kind: str, step: dict[str, Any], now: datetime, world: World, seq: int) -> Event:
        bot = world.bot
        if kind == "message":
            gid = self._group(number, world, step["group"])
            sender = self._contact(number, world, step["from"])
            text = str(step.get("text", "") or "")
            url = step.get("url")
            mentions = tuple(str(m) for m in step.get("mentions") or ())
            mentions_bot = bot.id in mentions or f"@{bot.name}" in text
            if mentions_bot and bot.id not in mentions:
                mentions = (*mentions, bot.id)
            qr = step.get("qr")
            msg_kind = (
                MessageKind.parse(step.get("kind"))
                if step.get("kind")
                else (MessageKind.IMAGE if qr is not None else MessageKind.URL if url else MessageKind.TEXT)
            )
            message_id = str(step.get("id") or f"sim-{seq}")
            if qr is not None:
                # A real QR image, so the bot fetches and decodes it as it would on WeChat.
                if msg_kind is not MessageKind.IMAGE or not isinstance(qr, str) or not qr:
                    raise ValueError("qr: the QR code's content as text, on an image step (kind: image)")
                world.post_image(message_id, qr_image(qr))
            return GroupMessage(
                at=now,
                group_id=gid,
                sender=sender,
                text=text,
                kind=msg_kind,
                url=url,
                mentions=mentions,
                mentions_bot=mentions_bot,
                message_id=message_id,
                group_topic=world.groups[gid].topic,
                quote=self._quote(number, world, step.get("quote")),
            )
        if kind == "private":
            sender = self._contact(number, world, step["private"])
            url = step.get("url")
            msg_kind = (
                MessageKind.parse(step.get("kind"))
                if step.get("kind")
                else (MessageKind.URL if url else MessageKind.TEXT)
            )
            return PrivateMessage(
                at=now,
                sender=sender,
                text=str(step.get("text", "") or ""),
                kind=msg_kind,
                url=url,
                message_id=str(step.get("id") or f"sim-{seq}"),
            )
        if kind == "join":
            gid = self._group(number, world, step["join"])
            ids = step.get("members")
            ids = [ids] if isinstance(ids, str) else ids
            if isinstance(ids, list):
                # Newcomers are usually strangers: joining introduces them to the world.
                self.known.update(str(m) for m in ids)
            members = self._members(number, world, ids)
            inviter = self._contact(number, world, step["inviter"]) if step.get("inviter") else None
            added = world.join(gid, [m.id for m in members])
            return MembersJoined(
                at=now, group_id=gid, members=tuple(added), inviter=inviter, group_topic=world.groups[gid].topic
            )
        if kind == "leave":
            gid = self._group(number, world, step["leave"])
            members = self._members(number, world, step.get("members"))
            remover = self._contact(number, world, step["by"]) if step.get("by") else None
            gone = world.leave(gid, [m.id for m in members])
            return MembersLeft(
                at=now, group_id=gid, members=tuple(gone), removed_by=remover, group_topic=world.groups[gid].topic
            )
        if kind == "rename":
            gid = self._group(number, world, step["rename"])
            old = world.groups[gid].topic
            world.groups[gid].topic = str(step.get("topic", ""))
            by = self._contact(number, world, step["by"]) if step.get("by") else None
            return GroupRenamed(at=now, group_id=gid, old_topic=old, new_topic=world.groups[gid].topic, changed_by=by)
        if kind == "friend_request":
            cid = str(step["friend_request"])
            contact = world.add_contact(cid)
            self.known.add(cid)
            return FriendRequest(at=now, contact=contact, hello=str(step.get("hello", "")), request_id=f"fr-{cid}")
        raise self._fail(number, f"unsupported step {kind}")


def load_scenario(path: str | Path) -> tuple[Scenario, LineMap]:
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(str(path), 1, "", "a scenario must be a mapping")])
    try:
        return Scenario.model_validate(data), lines
    except ValidationError as err:
        raise ConfigError(lines.from_validation(err)) from None
