# Over 500 lines: the step builders and the several-account time driver share one simulation's state.
"""`qunbot simulate`: replay a scenario file through the real bot on a virtual clock.

The scenario format is a stable interface (DESIGN §7; models in bot.adapters.scenario). Each
step happens at the current virtual time; after a step the bot finishes what it queued (the
outbox paces sends in virtual time, so pacing is visible in the timestamps but costs nothing).
`wait` moves the clock forward and runs whatever scheduled work falls due meanwhile, in order.

Several accounts (`bots:`): each is a whole bot (its own app, outbox, scheduler and engine,
as a `qunbot run` process would have) on one shared world, clock and database; a group's
events reach every running account in it. With `cluster.enabled` their leases run on the
virtual clock (with one `bot:`, as before, on real time in the background) and the
simulator drives each account's rounds every `lease_ttl`/3, so a
`stop` (the process is killed or paused: no renewals, no handover) is taken over within the
TTL in virtual time, and `resume` wakes it with what it had queued.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.adapters.scenario import (
    ACCOUNT_STATES,
    STEP_KEYS,
    Scenario,
    ScenarioAccount,
    ScenarioError,
    load_scenario,
    parse_duration,
    step_kind,
)
from bot.adapters.world import World, WorldPlatform, plain_photo, qr_image
from bot.app import BotApp, LoadedConfig
from bot.config.errors import LineMap
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
    group_of,
)
from bot.core.platform import ActionRecord
from bot.storage.db import Database

__all__ = ["Scenario", "ScenarioError", "Simulation", "load_scenario", "parse_duration", "step_kind"]


async def _forget_leases(db_url: str, accounts: list[str]) -> None:
    """A simulation starts with its accounts not running: a run kept in the same database
    (`--db`) left leases stamped with its own virtual times, which a new run's clock may not
    have reached. They are ended, not deleted: the fencing tokens keep growing."""
    db = await Database.open(db_url)
    try:
        async with db.engine.begin() as conn:
            for table in ("cluster_duty", "cluster_accounts"):
                await conn.execute(
                    sa.text(f"UPDATE {table} SET expires_at = '-infinity' WHERE account_id = ANY(:accounts)"),
                    {"accounts": accounts},
                )
    finally:
        await db.close()


@dataclass(eq=False)
class _Account:
    """One bot account of the scenario and the bot process serving it."""

    spec: ScenarioAccount
    member: Member
    platform: WorldPlatform
    app: BotApp
    running: bool = True
    next_round: datetime | None = None  # the cluster's next renewal round (virtual time)

    @property
    def id(self) -> str:
        return self.spec.id


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
        specs = sc.accounts
        self._several = len(specs) > 1
        cluster = self.loaded.config.cluster
        if self._several and not cluster.enabled:
            raise ScenarioError(
                f"{self.lines.file}: several bots need cluster.enabled in the config (and --db postgresql://...): "
                "without it every account would answer in every group"
            )
        self.clock = VirtualClock(sc.clock)
        first = specs[0]
        world = self.world = World(Member(first.id, first.name))
        for c in sc.contacts:
            world.add_contact(c.id, c.name)
        for g in sc.groups:
            world.add_group(g.id, g.topic, g.owner, g.admins, g.members)
        if self._several:
            self._seat_accounts(specs)
        self.known = self._known_ids(world)
        self.followups: list[tuple[_Account, Event]] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="qunbot-sim-")
        db_url = self.db_url or f"sqlite+aiosqlite:///{Path(self._tmp.name) / 'sim.db'}"
        if cluster.enabled and db_url.startswith("sqlite"):
            raise ScenarioError(
                f"{self.lines.file}: cluster.enabled needs a PostgreSQL database: run with --db postgresql://..."
            )
        # A `bots:` list: the accounts' leases run on the virtual clock, rounds driven here. One
        # `bot:` is one process as before: with the cluster on, its leases run on real time.
        self._virtual_leases = bool(sc.bots) and cluster.enabled
        if self._virtual_leases:
            await _forget_leases(db_url, [spec.id for spec in specs])
        self.accounts: list[_Account] = []
        for index, spec in enumerate(specs):
            self.accounts.append(await self._start_account(spec, index, db_url))
        primary = self.accounts[0]
        self.platform, self.app = primary.platform, primary.app
        self._nominal = self.clock.now()
        self._seq = 0
        # Message ids unique across runs on one database, as a platform's are (the event log
        # keeps one row per group and message id): a second run on the same --db is new traffic.
        self._run = secrets.token_hex(4)
        self._number = 0
        # stop/resume steps with `after`: (when, step number, kind, step), in time order.
        self._controls: list[tuple[datetime, int, str, dict[str, Any]]] = []

    def _seat_accounts(self, specs: list[ScenarioAccount]) -> None:
        """Several accounts: each is a member of its groups (all, unless it lists some)."""
        for group in self.world.groups.values():
            seated = [s.id for s in specs if s.groups is None or group.id in s.groups]
            others = {mid: None for mid in group.members if mid not in {s.id for s in specs}}
            group.members = {**dict.fromkeys(seated), **others}
        for spec in specs:
            self.world.add_contact(spec.id, spec.name)

    async def _start_account(self, spec: ScenarioAccount, index: int, db_url: str) -> _Account:
        member = self.world.contact(spec.id) if self._several else self.world.bot
        platform = WorldPlatform(
            self.world,
            self.clock,
            on_action=lambda record: self._record(spec.id, record),
            on_event=lambda event: self.followups.append((account, event)),
            can_remove=spec.can_remove,
            bot=member,
        )
        # The scenario's bot identity wins over the config's: it is who the world knows.
        base = self.loaded.config
        config = base.model_copy(update={"bot": base.bot.model_copy(update={"id": spec.id, "name": member.name})})
        loaded = LoadedConfig(config, self.loaded.lines, self.loaded.plugins, self.loaded.path)
        app = BotApp(
            loaded,
            platform,
            self.clock,
            rng=random.Random(self.seed + index),
            db_url=db_url,
            virtual_leases=self._virtual_leases,
        )
        account = _Account(spec, member, platform, app)
        await app.start()
        # The scenario's groups exist before the bot: their members are already there.
        await app.refresh_members()
        # Step ids are unique, and two steps may share one virtual instant: the same text twice
        # in a row is two messages here, never a redelivery.
        assert app.dispatcher is not None  # start() built it
        app.dispatcher.dedup_by_content = False
        if app.cluster is not None and self._virtual_leases:
            account.next_round = self.clock.now() + timedelta(seconds=app.config.cluster.renew_every)
        return account

    def account(self, account_id: str) -> _Account:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)

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
        if kind in ("stop", "resume", "account"):
            self._account_step(number, step[kind])
            if "after" in step:
                # Takes effect that much later, in the middle of whatever runs then (a kill
                # during a broadcast's sends).
                try:
                    delay = parse_duration(step["after"])
                except ValueError as exc:
                    raise self._fail(number, str(exc)) from None
                self._controls.append((self.clock.now() + delay, number, kind, step))
                self._controls.sort(key=lambda c: (c[0], c[1]))
            else:
                self._control(number, kind, step)
            await self._advance(None)
            return
        self._seq += 1
        event = self._event(number, kind, step, self.clock.now(), self.world, self._seq)
        for account in self._receivers(number, step, event):
            await account.app.handle(self._as_seen_by(account, event))
        await self._advance(None)

    def _control(self, number: int, kind: str, step: dict[str, Any]) -> None:
        account = self._account_step(number, step[kind])
        if kind == "stop":
            # Killed or paused: it neither renews, nor sends, nor hears anything; nothing is
            # handed over (its leases run out on their own).
            account.running = False
        elif kind == "resume":
            # Woken up where it stopped: what it had queued meets the fence; its next round
            # is due at once.
            account.running = True
            if account.next_round is not None:
                account.next_round = self.clock.now()
        else:
            state = step.get("state")
            if state not in ACCOUNT_STATES:
                raise self._fail(number, f"state must be one of {', '.join(ACCOUNT_STATES)}, not {state!r}")
            account.platform.fault = None if state == "ok" else str(state)

    def _account_step(self, number: int, value: object) -> _Account:
        try:
            return self.account(str(value))
        except KeyError:
            raise self._fail(number, f"unknown bot {value!r} (list it under bots)") from None

    def _receivers(self, number: int, step: dict[str, Any], event: Event) -> list[_Account]:
        """Who hears the event: every running, connected account in its group; a private
        event goes to the account named by `bot` (default the first)."""
        group_id = group_of(event)
        if group_id is None:
            account = self._account_step(number, step["bot"]) if "bot" in step else self.accounts[0]
            return [account] if self._hears(account) else []
        return [a for a in self._in_group(group_id, event) if self._hears(a)]

    def _in_group(self, group_id: str, event: Event) -> list[_Account]:
        """The accounts in the group, and any the event is about (a bot that just left)."""
        world_group = self.world.groups.get(group_id)
        members = set(world_group.members) if world_group is not None else set()
        if isinstance(event, MembersJoined | MembersLeft):
            members.update(m.id for m in event.members)
        return [a for a in self.accounts if a.member.id in members]

    @staticmethod
    def _hears(account: _Account) -> bool:
        return account.running and account.platform.fault != "disconnected"

    def _as_seen_by(self, account: _Account, event: Event) -> Event:
        """The event as this account's platform would report it: whether it is @-mentioned
        (several accounts; one account's events are built for it already)."""
        if not self._several or not isinstance(event, GroupMessage):
            return event
        bot = account.member
        mentions_bot = bot.id in event.mentions or f"@{bot.name}" in event.text
        mentions = event.mentions if bot.id in event.mentions or not mentions_bot else (*event.mentions, bot.id)
        return dataclasses.replace(event, mentions=mentions, mentions_bot=mentions_bot)

    async def finish(self) -> None:
        """Let the bots finish: queued sends, then deferred work (merged welcomes) at the
        time it falls due, as a running bot would."""
        await self._advance(None)
        while True:
            deferred = [d for a in self._running() if (d := self._services(a).scheduler.next_deferred()) is not None]
            if not deferred:
                break
            await self._advance(max(min(deferred), self.clock.now()))

    async def close(self) -> None:
        try:
            for account in reversed(getattr(self, "accounts", [])):
                if not account.running and account.app.services is not None:
                    # A stopped process is dead: what it had queued dies with it, unsent.
                    for group_id in self.world.groups:
                        account.app.services.outbox.discard_group(group_id)
                await account.app.stop(drain_seconds=0)
        finally:
            self._tmp.cleanup()

    def _record(self, account_id: str, record: ActionRecord) -> None:
        if self._several:
            record.account = account_id
        self.actions.append(record)
        if self.on_action is not None:
            self.on_action(record)

    # --- driving virtual time -------------------------------------------------------
    def _running(self) -> list[_Account]:
        return [a for a in self.accounts if a.running]

    @staticmethod
    def _services(account: _Account) -> Any:
        services = account.app.services
        assert services is not None
        return services

    async def _handle_followups(self) -> None:
        while self.followups:
            origin, event = self.followups.pop(0)
            group_id = group_of(event)
            if group_id is None:
                targets = [origin] if origin.running else []
            else:
                targets = [a for a in self._in_group(group_id, event) if self._hears(a)]
                if origin.running and origin not in targets:
                    targets.append(origin)  # the bot's own action (it may have left the group)
            for account in targets:
                await account.app.handle(self._as_seen_by(account, event))

    async def _advance(self, target: datetime | None) -> None:
        """Move virtual time forward, running follow-up events, cluster rounds, paced sends
        and scheduled jobs in time order. With no target: until the outboxes are empty
        (settling after a step); future schedules are left for later waits."""
        clock = self.clock
        stuck = 0
        while True:
            await self._handle_followups()
            running = self._running()
            pending = self._settling(running)
            before = (clock.now(), pending)
            candidates: list[datetime] = []
            if target is not None or pending:
                candidates += [c[0] for c in self._controls[:1]]
                for account in running:
                    services = self._services(account)
                    candidates += [
                        t
                        for t in (services.outbox.next_due(), services.scheduler.next_due(), account.next_round)
                        if t is not None
                    ]
            if target is not None:
                candidates = [t for t in candidates if t <= target]
            if not candidates:
                break
            clock.advance_to(max(min(candidates), clock.now()))
            await self._run_due(running)
            after = self._settling(running)
            # Guard against a component that reports work due but makes no progress.
            stuck = stuck + 1 if (clock.now(), after) == before and not self.followups else 0
            if stuck > 1000:
                raise RuntimeError("simulation made no progress (outbox or scheduler stuck)")
        if target is not None:
            clock.advance_to(target)
            await self._run_due(self._running())
            if self._settling(self._running()) or self.followups:
                await self._advance(None)

    def _settling(self, running: list[_Account]) -> int:
        """Sends still to settle after a step. An account with a simulated fault would retry
        forever (rate limits are never given up): its queue moves only during waits."""
        return sum(self._services(a).outbox.pending for a in running if a.platform.fault is None)

    async def _run_due(self, running: list[_Account]) -> None:
        """Everything due now: delayed stop/resume steps, then account by account its cluster
        round, its scheduled jobs, one send."""
        now = self.clock.now()
        while self._controls and self._controls[0][0] <= now:
            _at, number, kind, step = self._controls.pop(0)
            self._control(number, kind, step)
        running = [a for a in running if a.running]
        for account in running:
            app, services = account.app, self._services(account)
            if account.next_round is not None and account.next_round <= now and app.cluster is not None:
                account.next_round = now + timedelta(seconds=app.config.cluster.renew_every)
                await app.cluster.tick()
            await services.scheduler.run_due()
            due = services.outbox.next_due()
            if due is not None and due <= now:
                await services.outbox.send_next()

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
                "join, leave, private, wait, rename, friend_request, stop, resume, account)",
            )
        extra = set(step) - STEP_KEYS[kind]
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
            # Several accounts: who is mentioned is worked out per account (`_as_seen_by`).
            mentions_bot = not self._several and (bot.id in mentions or f"@{bot.name}" in text)
            if mentions_bot and bot.id not in mentions:
                mentions = (*mentions, bot.id)
            qr = step.get("qr")
            msg_kind = (
                MessageKind.parse(step.get("kind"))
                if step.get("kind")
                else (MessageKind.IMAGE if qr is not None else MessageKind.URL if url else MessageKind.TEXT)
            )
            message_id = str(step.get("id") or f"sim-{self._run}-{seq}")
            if qr is not None:
                # A real QR image, so the bot fetches and decodes it as it would on WeChat.
                if msg_kind is not MessageKind.IMAGE or not isinstance(qr, str) or not qr:
                    raise ValueError("qr: the QR code's content as text, on an image step (kind: image)")
                world.post_image(message_id, qr_image(qr))
            elif step.get("photo"):
                # An ordinary picture, no code in it: the bot can fetch and read it, as on WeChat.
                if msg_kind is not MessageKind.IMAGE:
                    raise ValueError("photo: only on an image step (kind: image)")
                world.post_image(message_id, plain_photo())
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
                message_id=str(step.get("id") or f"sim-{self._run}-{seq}"),
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
