"""Answer what arrived while a group had nobody on duty (several accounts, DESIGN §6).

When the account on duty in a group dies, its lease runs out up to `lease_ttl` later, and only
then does another account take the group over. Every account receives every message of its
groups, so the messages of that gap reach the others; but they were off duty then and only
recorded them. This module makes the new account answer them, once:

- The account on duty marks the group events it handled (`cluster_handled`, one row per group
  and event key). An event whose handlers queued an action is marked when its first action goes
  out: `may_act`, which the outbox calls right before each platform call, writes that mark (and
  whatever else is pending) first. Which event an action answers is noted when the outbox asks
  for its fencing token as it is queued (`token`, under the event being handled: a context
  variable set when it was taken); a group's actions then go out in that order. An event that
  queued nothing (or whose plugin answers from another task: merged check-in replies, scheduled
  welcomes) is marked before our next send, or `QUIET_FOR` after it was taken. Marks are written
  in batches (every `FLUSH_EVERY` seconds, and before a send).
- Every account keeps, in memory, the events of the groups where it is *not* on duty, for
  `catch_up_within` seconds (at most `catch_up_events` of them in all).
- When an account takes the duty in a group (after a death, a graceful hand-over, a pinned
  hand-back, or its own lease lapsing), it reads which of its kept events of that group are
  marked, and sends the others through the dispatcher's handlers, in the order they arrived.
  Live events of that group wait until that is done, so the order holds. The replayed events
  are marked too (for the account after us).

Why nothing is answered twice: an action of the old holder is sent only after `may_act` wrote
its event's mark and then found the lease still valid by its own clock, i.e. before the lease
ran out; the new holder reads the marks after the database gave it the lease, i.e. after it ran
out. So every event whose action the old holder sent is marked when the new holder looks (the
one exception is the one fencing cannot cover either: a platform call that stalls past
`safety_margin` after the check). And the actions still queued in the dead holder's outbox are
not lost: their events are not marked, so the new holder answers them.

While the database cannot take the marks, sends go on without them (the outbox must not
stall): an account that dies then may see a few of its answered events answered again.

What can still be missed or doubled: an action whose mark was written but whose platform call
the death interrupted (at most once). Removals (their own lane in the outbox) and messages of
one group can go out in another order than queued: a mark may then come one action early or
late. An event whose handler had not queued its action yet when another action went out (or
`QUIET_FOR` passed) is marked before that action went out: a death then loses it. Events without a key are never kept: a
chat message without a platform message id (there is no way to tell whether the old holder took
it). Joins, leaves and renames are keyed by their content (the members, the new topic), since
the platform gives them no id; the same member joining the same group twice within
`catch_up_within` would be taken for one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cluster.duty import ClusterDuty, _default_monotonic
from bot.cluster.settings import ClusterSettings
from bot.core.duty import AccountRow
from bot.core.events import Event, GroupMessage, GroupRenamed, MembersJoined, MembersLeft, group_of

log = logging.getLogger("qunbot.cluster.catchup")

# Marks are written at least this often (and before every send).
FLUSH_EVERY = 1.0
# Marks waiting for the database (it is unreachable): past this many the oldest are dropped (a
# dropped mark can only make its event be answered twice, after a crash during the outage).
PENDING_CAP = 100_000
# How long a send waits for the marks to be written; while the database is failing, sends do
# not wait (the timer keeps retrying), so an outage does not stall the outbox.
SEND_PATIENCE = 1.0
# An event taken that queued no action within this many seconds is marked (the timer's round).
QUIET_FOR = 1.0
# Old marks are deleted about this often.
PURGE_EVERY = 60.0

_MARK = sa.text(
    """
    INSERT INTO cluster_handled (group_id, key, handled_at)
    SELECT g, k, now() FROM unnest(:groups, :keys) AS t(g, k)
    ON CONFLICT (group_id, key) DO NOTHING
    """
).bindparams(sa.bindparam("groups", type_=ARRAY(sa.String())), sa.bindparam("keys", type_=ARRAY(sa.String())))

_MARKED = sa.text("SELECT key FROM cluster_handled WHERE group_id = :group AND key = ANY(:keys)").bindparams(
    sa.bindparam("keys", type_=ARRAY(sa.String()))
)

# The event being handled in this task (set when it is taken): the outbox asks for a token when
# a handler queues an action, and that tells which event the action answers.
_taking: ContextVar[tuple[str, str] | None] = ContextVar("qunbot_catchup_taking", default=None)

_PURGE = sa.text("DELETE FROM cluster_handled WHERE handled_at < now() - make_interval(secs => :keep)")


def event_key(event: Event) -> str | None:
    """What identifies `event` across accounts (each receives its own copy), or None when
    nothing does. The prefix keeps the kinds apart."""
    if isinstance(event, GroupMessage):
        return f"m:{event.message_id}" if event.message_id else None
    if isinstance(event, MembersJoined):
        return "j:" + ",".join(sorted(m.id for m in event.members))
    if isinstance(event, MembersLeft):
        return "l:" + ",".join(sorted(m.id for m in event.members))
    if isinstance(event, GroupRenamed):
        return f"r:{event.new_topic}"
    return None


@dataclass(frozen=True, slots=True)
class Kept:
    received: float  # local monotonic seconds
    group_id: str
    key: str
    event: Event


class EventWindow:
    """The recent events of groups where another account is on duty, oldest first: at most
    `keep_seconds` old and `cap` in number (the oldest go first either way)."""

    def __init__(self, keep_seconds: float, cap: int, monotonic: Callable[[], float]) -> None:
        self.keep_seconds = keep_seconds
        self.cap = cap
        self._mono = monotonic
        self._kept: deque[Kept] = deque()
        self.dropped = 0  # pushed out by the cap while still young enough to replay

    def __len__(self) -> int:
        return len(self._kept)

    def add(self, group_id: str, key: str, event: Event) -> None:
        if self.cap <= 0 or self.keep_seconds <= 0:
            return
        now = self._mono()
        self._kept.append(Kept(now, group_id, key, event))
        self._trim(now)
        if len(self._kept) > self.cap:
            self._kept.popleft()
            self.dropped += 1

    def take(self, group_id: str) -> list[Kept]:
        """Remove and return `group_id`'s events still young enough, oldest first (a takeover is
        rare, so one pass over everything kept is fine)."""
        self._trim(self._mono())
        mine = [k for k in self._kept if k.group_id == group_id]
        if mine:
            self._kept = deque(k for k in self._kept if k.group_id != group_id)
        return mine

    def _trim(self, now: float) -> None:
        kept, horizon = self._kept, now - self.keep_seconds
        while kept and kept[0].received < horizon:
            kept.popleft()


@dataclass(slots=True)
class _Waiting:
    """An event taken whose actions wait in the outbox: marked when the first goes out."""

    mark: tuple[str, str]
    since: float
    items: int = 1
    marked: bool = False


class CatchUp:
    """The duty gate the core sees when several accounts share the database: `ClusterDuty`'s,
    plus the marks and the window above. Build it before `ClusterDuty.start` (it hears every
    duty taken, `on_acquired`), then `bind` the dispatcher's `redo` once it exists."""

    def __init__(
        self,
        engine: AsyncEngine,
        cluster: ClusterDuty,
        settings: ClusterSettings,
        *,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine
        self.cluster = cluster
        self.settings = settings
        self._mono = monotonic or _default_monotonic()
        self.window = EventWindow(settings.catch_up_within, settings.catch_up_events, self._mono)
        self._pending: list[tuple[str, str]] = []  # to write now
        # Taken, no action queued (yet): marked after QUIET_FOR.
        self._quiet: dict[tuple[str, str], float] = {}
        # Taken, with actions queued: per group, in the order of their first action.
        self._waiting: dict[str, deque[_Waiting]] = {}
        self._write_lock = asyncio.Lock()
        self._redo: Callable[[Event], Awaitable[None]] | None = None
        # Groups being caught up: their live events wait on these.
        self._catching: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._failing = False
        self.stats = {"replayed": 0, "already_handled": 0}
        cluster.on_acquired = self._acquired

    def bind(self, redo: Callable[[Event], Awaitable[None]]) -> None:
        """How to handle a kept event: the dispatcher's handlers, without de-duplicating or
        recording it again (that happened when it arrived)."""
        self._redo = redo

    # --- the duty gate (bot.core.duty.DutyGate) ---------------------------------------------
    async def acts_in(self, event: Event) -> bool:
        _taking.set(None)
        ours = await self.cluster.acts_in(event)
        group_id = group_of(event)
        key = event_key(event) if group_id is not None else None
        if group_id is None or key is None:
            return ours
        if ours:
            catching = self._catching.get(group_id)
            if catching is not None:  # what came before it goes first
                await catching.wait()
            self._take(group_id, key)
            return True
        self.window.add(group_id, key, event)
        if self.cluster.on_duty(group_id) and group_id not in self._catching:
            self._acquired(group_id, 0)  # taken while we were asking: catch this one up too
        return False

    def on_duty(self, group_id: str) -> bool:
        return self.cluster.on_duty(group_id)

    def on_duty_gained(self, callback: Callable[[str, int], Awaitable[None]]) -> Callable[[], None]:
        return self.cluster.on_duty_gained(callback)

    async def roster(self) -> list[AccountRow]:
        return await self.cluster.roster()

    def token(self, group_id: str) -> int | None:
        # Called by the outbox as an action is queued: note which event it answers.
        taking = _taking.get()
        if taking is not None and taking[0] == group_id:
            waiting = self._waiting.get(group_id)
            if waiting and waiting[-1].mark == taking:
                waiting[-1].items += 1
            elif self._quiet.pop(taking, None) is not None:
                self._waiting.setdefault(group_id, deque()).append(_Waiting(taking, self._mono()))
        return self.cluster.token(group_id)

    async def may_act(self, group_id: str, token: int | None) -> bool:
        # The group's actions go out in the order they were queued: this one answers the oldest
        # waiting event (approximately, when removals and messages of one group interleave).
        waiting = self._waiting.get(group_id)
        if waiting:
            head = waiting[0]
            if not head.marked:
                head.marked = True
                self._mark(*head.mark)
            head.items -= 1
            if head.items <= 0:
                waiting.popleft()
                if not waiting:
                    del self._waiting[group_id]
        # Every event taken that queued nothing here: a plugin that answers from another task (a
        # merged check-in reply, a scheduled welcome) may be sending its answer now.
        self._release(float("inf"), quiet_only=True)
        # The marks first: whatever we send, the next account on duty must find marked.
        if self._pending and not self._failing:
            try:
                async with asyncio.timeout(SEND_PATIENCE):
                    await self.flush()
            except TimeoutError:
                self._failing = True
                log.warning("catch-up: writing the handled marks takes over %g s; retrying", SEND_PATIENCE)
        return await self.cluster.may_act(group_id, token)

    # --- marks ------------------------------------------------------------------------------
    def _take(self, group_id: str, key: str) -> None:
        _taking.set((group_id, key))
        self._quiet[(group_id, key)] = self._mono()
        if len(self._quiet) > PENDING_CAP:
            self._release(float("inf"), quiet_only=True)

    def _release(self, before: float, *, quiet_only: bool = False) -> None:
        """Mark the events taken before `before` that queued nothing; unless `quiet_only`, also
        those whose actions have waited since before `before` minus catch_up_within (no
        account would replay them any more; an action dropped unsent leaves one behind)."""
        quiet = self._quiet
        while quiet:
            mark, since = next(iter(quiet.items()))
            if since >= before:
                break
            del quiet[mark]
            self._mark(*mark)
        if quiet_only:
            return
        stale = before - self.settings.catch_up_within - self.settings.lease_ttl
        for group_id in [g for g, w in self._waiting.items() if w[0].since < stale]:
            waiting = self._waiting[group_id]
            while waiting and waiting[0].since < stale:
                head = waiting.popleft()
                if not head.marked:
                    self._mark(*head.mark)
            if not waiting:
                del self._waiting[group_id]

    def _mark(self, group_id: str, key: str) -> None:
        pending = self._pending
        pending.append((group_id, key))
        if len(pending) > PENDING_CAP:
            del pending[: len(pending) - PENDING_CAP]

    async def flush(self) -> None:
        """Write the pending marks (one statement). On failure they stay pending, and the next
        flush retries; one warning per outage."""
        if not self._pending:
            return
        async with self._write_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(_MARK, {"groups": [g for g, _ in batch], "keys": [k for _, k in batch]})
            except BaseException as exc:  # cancelled (a send's patience ran out) too: kept for later
                self._pending[:0] = batch
                if not isinstance(exc, Exception):
                    raise
                if not self._failing:
                    self._failing = True
                    log.warning("catch-up: could not write %d handled mark(s) (%s); retrying", len(batch), exc)
                return
            if self._failing:
                self._failing = False
                log.warning("catch-up: handled marks written again")

    async def marked(self, group_id: str, keys: Iterable[str]) -> set[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(_MARKED, {"group": group_id, "keys": list(keys)})
            return {str(r.key) for r in rows}

    # --- taking a group over ----------------------------------------------------------------
    def _acquired(self, group_id: str, token: int) -> None:
        if group_id in self._catching:
            return
        done = self._catching[group_id] = asyncio.Event()
        task = asyncio.create_task(self._catch_up(group_id, done), name=f"catch-up-{group_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, group_id: str, done: asyncio.Event) -> None:
        try:
            kept = self.window.take(group_id)
            if kept and self._redo is not None:
                await self._replay(group_id, kept, self._redo)
        except Exception:
            log.exception("catch-up: failed in %s", group_id)
        finally:
            del self._catching[group_id]
            done.set()

    async def _replay(self, group_id: str, kept: list[Kept], redo: Callable[[Event], Awaitable[None]]) -> None:
        try:
            marked = await self.marked(group_id, {k.key for k in kept})
        except Exception as exc:  # not retried: live events of the group wait for this
            log.warning(
                "catch-up: could not read the handled marks of %s (%s); %d event(s) that arrived while nobody "
                "was on duty stay unanswered",
                group_id,
                exc,
                len(kept),
            )
            return
        replayed = skipped = 0
        seen: set[str] = set()
        for item in kept:
            if item.key in marked or item.key in seen:
                skipped += 1
                continue
            if not self.cluster.on_duty(group_id):
                break  # lost it again: the next account has its own window
            seen.add(item.key)
            self._take(group_id, item.key)
            replayed += 1
            await redo(item.event)
        self.stats["replayed"] += replayed
        self.stats["already_handled"] += skipped
        log.info(
            "catch-up: %s answered %d event(s) of %s that arrived while nobody was on duty (%d already handled)",
            self.cluster.account_id,
            replayed,
            group_id,
            skipped,
        )

    # --- running ----------------------------------------------------------------------------
    def start(self) -> None:
        self._flusher = asyncio.create_task(self._run(), name="catch-up-marks")

    async def _run(self) -> None:
        keep = 2 * (self.settings.catch_up_within + self.settings.lease_ttl) + 60
        purged = self._mono()
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self._release(self._mono() - QUIET_FOR)
            await self.flush()
            if self._mono() - purged >= PURGE_EVERY:
                purged = self._mono()
                try:
                    async with self.engine.begin() as conn:
                        await conn.execute(_PURGE, {"keep": keep})
                except Exception as exc:
                    log.debug("catch-up: could not delete old marks (%s)", exc)

    async def settle(self) -> None:
        """Wait for the catch-ups under way (at shutdown, before the outbox drains: what they
        answer is then sent)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Finish catching up, write the last marks (the next account must not answer what we
        did), stop the timer."""
        await self.settle()
        self._release(float("inf"), quiet_only=True)
        for waiting in self._waiting.values():  # the outbox has drained: sent or given up
            self._pending.extend(w.mark for w in waiting if not w.marked)
        self._waiting.clear()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} handled mark(s) could not be written")
