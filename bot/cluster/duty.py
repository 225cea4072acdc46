# Over 500 lines: the lease statements and the rounds that run them share one safety argument (below).
"""Who acts in a group when several bot accounts share one PostgreSQL (DESIGN §6).

Each process serves one account and holds a lease on it (`cluster_accounts`). Per group, one
account is on duty (`cluster_duty`): it answers and acts; the others only record. A duty lease
carries a fencing token that grows by one on every takeover; an outbound action is stamped with
the token current when it was queued, and is sent only if that token is still ours (`may_act`).

Safety argument for the local cache (why `may_act` usually needs no database round trip):
- Every lease row gets `expires_at = now() + ttl` from the *database's* clock, and another
  account may take the duty only once the database's now() has passed `expires_at`.
- Before sending a claim or renewal we read our own monotonic clock (t0). The database
  evaluates now() after the statement arrives, i.e. after t0, so the lease lasts at least until
  t0 + (expires_at - db_now) on our clock. We keep that instant, minus `safety_margin`, as our
  local deadline and act only before it. Only durations cross machines, never wall-clock
  instants, so skew between the machines' clocks does not matter; only rate drift does (parts
  per million: negligible over a lease of seconds).
- The local clock is CLOCK_BOOTTIME where available, which keeps counting while the process is
  stopped or the machine is suspended: a process that wakes up late finds its deadline passed,
  asks the database, and learns the duty (and its token) moved on.
- Past the deadline (the background renewals were late) `may_act` renews in the database (one
  UPDATE that succeeds only if we still hold the lease with that token) instead of acting.
- What no fencing can cover: WeChat does not check our token, so an action must reach the
  platform within `safety_margin` after the check. A call that stalls longer than that may land
  after another account took over.

With `cluster.enabled` off (the default, and always on SQLite) nothing here runs: the outbox
and dispatcher skip the checks entirely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.cluster.balance import Standing, preferred, should_hand_over
from bot.cluster.settings import ClusterSettings
from bot.core.clock import Clock
from bot.core.duty import AccountRow
from bot.core.events import BotJoinedGroup, BotLeftGroup, Event, group_of

log = logging.getLogger("qunbot.cluster")


def _default_monotonic() -> Callable[[], float]:
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return lambda: time.clock_gettime(boottime)
    return time.monotonic


GainedCallback = Callable[[str, int], Awaitable[None]]


class ClusterUnavailable(RuntimeError):
    """The cluster cannot start: another running process already serves this account, or the
    database is not PostgreSQL."""


@dataclass(slots=True)
class _Held:
    token: int
    deadline: float  # local monotonic seconds; act only before this


class _Stmt:
    """A statement in two forms: with the database's now() (real processes), and with the
    time bound as :now (the simulator's virtual clock, so leases run out in virtual time)."""

    __slots__ = ("real", "virtual")

    def __init__(self, sql: str) -> None:
        self.real = sa.text(sql)
        self.virtual = sa.text(sql.replace("now()", "CAST(:now AS timestamptz)"))


_REGISTER = _Stmt(
    """
    INSERT INTO cluster_accounts (account_id, instance, started_at, renewed_at, expires_at,
                                  budget_left, budget, trouble)
    VALUES (:account, :instance, now(), now(), now() + make_interval(secs => :ttl),
            :budget_left, :budget, :trouble)
    ON CONFLICT (account_id) DO UPDATE
       SET instance = EXCLUDED.instance,
           started_at = CASE WHEN cluster_accounts.instance = EXCLUDED.instance
                             THEN cluster_accounts.started_at ELSE now() END,
           renewed_at = now(),
           expires_at = EXCLUDED.expires_at,
           budget_left = EXCLUDED.budget_left,
           budget = EXCLUDED.budget,
           trouble = EXCLUDED.trouble
     WHERE cluster_accounts.instance = EXCLUDED.instance OR cluster_accounts.expires_at <= now()
    RETURNING extract(epoch FROM expires_at - now()) AS left
    """
)

# Who else could serve our groups (running accounts in them, with their standing), and who
# holds each group's duty now: what a round decides from (bot.cluster.balance).
_CANDIDATES = _Stmt(
    """
    SELECT m.group_id, a.account_id, a.budget_left, a.budget, a.trouble
      FROM cluster_members m JOIN cluster_accounts a ON a.account_id = m.account_id
     WHERE a.expires_at > now()
       AND m.group_id IN (SELECT group_id FROM cluster_members WHERE account_id = :account)
    """
)
_HOLDERS = _Stmt(
    """
    SELECT d.group_id, d.instance FROM cluster_duty d
     WHERE d.expires_at > now()
       AND d.group_id IN (SELECT group_id FROM cluster_members WHERE account_id = :account)
    """
)

_RESIGN = _Stmt("UPDATE cluster_accounts SET expires_at = now() WHERE account_id = :account AND instance = :instance")

_JOIN = _Stmt(
    """
    INSERT INTO cluster_members (group_id, account_id, seen_at) VALUES (:group, :account, now())
    ON CONFLICT (group_id, account_id) DO UPDATE SET seen_at = now()
    """
)
_LEAVE = _Stmt("DELETE FROM cluster_members WHERE group_id = :group AND account_id = :account")
_FORGET_GROUPS = _Stmt("DELETE FROM cluster_members WHERE account_id = :account")

# Take or renew the duty in one group, atomically: only while our account lease is valid, only
# if the lease is free (expired) or already ours, and, for an account the group is not pinned
# to, only while the pinned account is not running in that group. The token stays on renewal
# and grows by one on every takeover (including our own re-take after our lease lapsed).
_CLAIM = _Stmt(
    """
    WITH allowed AS (
        SELECT 1 FROM cluster_accounts me
         WHERE me.account_id = :account AND me.instance = :instance AND me.expires_at > now()
           AND NOT EXISTS (
               SELECT 1 FROM cluster_accounts p
                 JOIN cluster_members m ON m.account_id = p.account_id AND m.group_id = :group
                WHERE p.account_id = CAST(:pinned AS text) AND p.expires_at > now())
    )
    INSERT INTO cluster_duty AS d (group_id, account_id, instance, token, acquired_at, expires_at)
    SELECT :group, :account, :instance, 1, now(), now() + make_interval(secs => :ttl) FROM allowed
    ON CONFLICT (group_id) DO UPDATE
       SET token = CASE WHEN d.instance = EXCLUDED.instance AND d.expires_at > now()
                        THEN d.token ELSE d.token + 1 END,
           acquired_at = CASE WHEN d.instance = EXCLUDED.instance AND d.expires_at > now()
                              THEN d.acquired_at ELSE now() END,
           account_id = EXCLUDED.account_id,
           instance = EXCLUDED.instance,
           expires_at = EXCLUDED.expires_at
     WHERE d.instance = EXCLUDED.instance OR d.expires_at <= now()
    RETURNING d.token, extract(epoch FROM d.expires_at - now()) AS left
    """
)

# Renew only: the lease must still be ours, unexpired, under this very token.
_RENEW = _Stmt(
    """
    UPDATE cluster_duty SET expires_at = now() + make_interval(secs => :ttl)
     WHERE group_id = :group AND instance = :instance AND token = :token AND expires_at > now()
       AND EXISTS (SELECT 1 FROM cluster_accounts me
                    WHERE me.account_id = :account AND me.instance = :instance AND me.expires_at > now())
    RETURNING extract(epoch FROM expires_at - now()) AS left
    """
)

_ROSTER = _Stmt(
    """
    SELECT a.account_id, a.expires_at > now() AS running, a.budget_left, a.budget, a.trouble,
           (SELECT count(*) FROM cluster_duty d
             WHERE d.account_id = a.account_id AND d.expires_at > now()) AS duties
      FROM cluster_accounts a ORDER BY a.account_id
    """
)

# Renew many at once (a round): each under its own token, as `_RENEW`.
_RENEW_ALL = _Stmt(
    """
    UPDATE cluster_duty d SET expires_at = now() + make_interval(secs => :ttl)
      FROM unnest(CAST(:groups AS text[]), CAST(:tokens AS bigint[])) AS h(group_id, token)
     WHERE d.group_id = h.group_id AND d.token = h.token AND d.instance = :instance AND d.expires_at > now()
       AND EXISTS (SELECT 1 FROM cluster_accounts me
                    WHERE me.account_id = :account AND me.instance = :instance AND me.expires_at > now())
    RETURNING d.group_id, extract(epoch FROM d.expires_at - now()) AS left
    """
)

# Give the duty up early (left the group, shutting down). Not at once: an action already
# checked may still be on its way, so the others wait out the safety margin.
_RELEASE = _Stmt(
    """
    UPDATE cluster_duty SET expires_at = LEAST(expires_at, now() + make_interval(secs => :margin))
     WHERE group_id = :group AND instance = :instance
    """
)


class ClusterDuty:
    """This process's view of the cluster: its account lease, its groups and the duties it
    holds. `acts_in` (dispatcher) and `token` / `may_act` (outbox) are the hooks the core uses."""

    def __init__(
        self,
        engine: AsyncEngine,
        account_id: str,
        settings: ClusterSettings,
        *,
        instance: str | None = None,
        monotonic: Callable[[], float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ClusterUnavailable(
                f"cluster.enabled needs PostgreSQL (storage.url); this database is {engine.dialect.name}"
            )
        self.engine = engine
        self.account_id = account_id
        self.settings = settings
        self.instance = instance or f"{account_id}/{uuid.uuid4().hex[:12]}"
        # A virtual clock (the simulator): lease times come from it, in the database too.
        self._clock = clock if clock is not None and clock.virtual else None
        virtual = self._clock
        self._mono = monotonic or ((lambda: virtual.now().timestamp()) if virtual is not None else _default_monotonic())
        self._groups: set[str] = set()
        # Membership changes not yet written (the next round writes them).
        self._joining: set[str] = set()
        self._leaving: set[str] = set()
        self._held: dict[str, _Held] = {}
        self._account_deadline = float("-inf")
        self._lost_reported = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Groups seen free (nobody on duty) at a round, since when (local clock).
        self._free_since: dict[str, float] = {}
        self._on_gained: list[GainedCallback] = []
        # This account's budget and health, published with every renewal (set by the app).
        self.standing: Callable[[], Standing] | None = None
        # Told (group, token) whenever we take a group's duty (bot/cluster/catchup.py).
        self.on_acquired: Callable[[str, int], None] | None = None

    async def _exec(self, conn: AsyncConnection, stmt: _Stmt, params: dict[str, Any]) -> CursorResult[Any]:
        if self._clock is None:
            return await conn.execute(stmt.real, params)
        return await conn.execute(stmt.virtual, {**params, "now": self._clock.now()})

    # --- hooks for the core --------------------------------------------------------------
    async def acts_in(self, event: Event) -> bool:
        """Whether this account handles `event` (else it only records it). Private events are
        always ours; the bot's own joins and leaves are ours too (they change what we claim).
        From memory, except for a group's first event (the duty there is claimed at once, so
        that first message is not lost) and when the background renewals are late."""
        group_id = group_of(event)
        if group_id is None:
            return True
        if isinstance(event, BotJoinedGroup):
            self.join(group_id)
            return True
        if isinstance(event, BotLeftGroup):
            self.leave(group_id)
            return True
        if self.on_duty(group_id):
            return True
        if group_id not in self._groups:
            return await self._claim_new(group_id)  # we see its messages, so we are in it
        held = self._held.get(group_id)
        return held is not None and await self.may_act(group_id, held.token)

    def on_duty(self, group_id: str) -> bool:
        """Whether we hold the duty in `group_id` by the local cache (no database round trip)."""
        held = self._held.get(group_id)
        now = self._mono()
        return held is not None and now < held.deadline and now < self._account_deadline

    def token(self, group_id: str) -> int | None:
        """The fencing token to stamp on an action queued now for `group_id`, or None if we are
        not on duty there (such an action will be refused)."""
        held = self._held.get(group_id)
        return held.token if held is not None else None

    async def may_act(self, group_id: str, token: int | None) -> bool:
        """May an action stamped with `token` go to `group_id` now? From the local cache before the
        local deadline (the background renewals keep it ahead); past it, only if the database
        still has our lease under this token, which is then renewed."""
        held = self._held.get(group_id)
        if token is None or held is None or held.token != token:
            return False
        now = self._mono()
        if now < held.deadline and now < self._account_deadline:
            return True
        try:
            return await self._renew(group_id, held)
        except Exception as exc:
            log.warning("cluster: could not renew the duty in %s (%s); not acting there", group_id, exc)
            return False

    # --- membership ----------------------------------------------------------------------
    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self._groups)

    @property
    def duties(self) -> dict[str, int]:
        """Groups where we hold the duty now, with their tokens."""
        return {g: h.token for g, h in self._held.items() if self.on_duty(g)}

    def join(self, group_id: str) -> None:
        """We are in `group_id`: take part in its duty from the next round (started at once)."""
        if group_id not in self._groups:
            self._groups.add(group_id)
            self._leaving.discard(group_id)
            self._joining.add(group_id)
            self._wake.set()

    def leave(self, group_id: str) -> None:
        """We left `group_id`: stop acting there now; membership and lease are released in the
        next round (started at once)."""
        self._groups.discard(group_id)
        self._joining.discard(group_id)
        self._held.pop(group_id, None)
        self._leaving.add(group_id)
        self._wake.set()

    async def _claim_new(self, group_id: str) -> bool:
        self._groups.add(group_id)
        self._leaving.discard(group_id)
        if self._mono() >= self._account_deadline:
            return False  # the next round re-registers, then claims
        try:
            async with self.engine.connect() as conn:
                async with conn.begin():
                    await self._exec(conn, _JOIN, {"group": group_id, "account": self.account_id})
                await self._claim(conn, group_id)
        except Exception as exc:
            log.warning("cluster: could not claim the duty in new group %s (%s)", group_id, exc)
            return False
        held = self._held.get(group_id)
        if held is not None:
            await self._tell_gained([(group_id, held.token)])
        return self.on_duty(group_id)

    # --- the rounds ----------------------------------------------------------------------
    async def start(self, groups: Iterable[str] = (), *, renew_in_background: bool = True) -> None:
        """Register the account (refusing if another live process serves it), record our
        groups, claim what we can, and keep renewing in the background (tests turn that off
        and call `tick()` themselves)."""
        self._groups.update(groups)
        self._joining.clear()  # all written below
        async with self.engine.begin() as conn:
            if not await self._register(conn):
                raise ClusterUnavailable(
                    f"account {self.account_id} is already served by another running process "
                    f"(its lease runs out at most {self.settings.lease_seconds:g} s after it stops)"
                )
            await self._exec(conn, _FORGET_GROUPS, {"account": self.account_id})
            for group_id in sorted(self._groups):
                await self._exec(conn, _JOIN, {"group": group_id, "account": self.account_id})
        await self.tick()
        if renew_in_background:
            self._task = asyncio.create_task(self._run(), name=f"cluster-{self.account_id}")
        log.info(
            "cluster: account %s registered (instance %s), %d group(s), on duty in %d",
            self.account_id,
            self.instance,
            len(self._groups),
            len(self.duties),
        )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.renew_every)
            self._wake.clear()
            try:
                await self.tick()
            except Exception as exc:  # the database is unreachable: we keep nothing we cannot renew
                self._lose_all(f"{type(exc).__name__}: {exc}")

    async def tick(self) -> None:
        """One round: renew the account lease (or re-register after losing it), sync group
        memberships, then take or renew the duty in each of our groups."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                registered = await self._register(conn)
            if not registered:
                self._lose_all("another process took over this account")
                return
            if self._lost_reported:
                log.warning("cluster: account %s lease regained", self.account_id)
                self._lost_reported = False
            leaving, joining = sorted(self._leaving), sorted(self._joining)
            if leaving or joining:
                async with conn.begin():
                    for group_id in leaving:  # `leave` already stopped us acting there
                        await self._exec(conn, _LEAVE, {"group": group_id, "account": self.account_id})
                        await self._exec(
                            conn,
                            _RELEASE,
                            {"group": group_id, "instance": self.instance, "margin": self.settings.safety_margin},
                        )
                    for group_id in joining:
                        await self._exec(conn, _JOIN, {"group": group_id, "account": self.account_id})
                self._leaving.difference_update(leaving)
                self._joining.difference_update(joining)
            gained = await self._claim_round(conn)
        await self._tell_gained(gained)

    async def _claim_round(self, conn: AsyncConnection) -> list[tuple[str, int]]:
        """Take or renew the duty where we should have it; hand over where another account is
        clearly better placed (budget, health: bot.cluster.balance). Returns what we gained."""
        candidates: dict[str, dict[str, Standing]] = {}
        async with conn.begin():
            for row in await self._exec(conn, _CANDIDATES, {"account": self.account_id}):
                standing = Standing(row.budget_left, row.budget, row.trouble)
                candidates.setdefault(row.group_id, {})[row.account_id] = standing
            holders = {r.group_id: r.instance for r in await self._exec(conn, _HOLDERS, {"account": self.account_id})}
        now = self._mono()
        renew: list[str] = []  # ours, to keep: renewed in one statement
        claim: list[str] = []  # free (or ours but forgotten): taken one by one
        hand_over: list[str] = []
        for group_id in sorted(self._groups):
            pinned = self.settings.pinned.get(group_id)
            here = candidates.get(group_id, {})
            holder = holders.get(group_id)
            if holder == self.instance:
                self._free_since.pop(group_id, None)
                if group_id not in self._held:
                    claim.append(group_id)
                elif should_hand_over(self.account_id, group_id, here, pinned):
                    log.info(
                        "cluster: %s hands %s over to %s (%s)",
                        self.account_id,
                        group_id,
                        preferred(group_id, here, pinned),
                        self._standing_text(),
                    )
                    hand_over.append(group_id)
                else:
                    renew.append(group_id)
            elif holder is not None:
                self._free_since.pop(group_id, None)
                if self._held.pop(group_id, None) is not None:
                    log.info("cluster: %s no longer on duty in %s", self.account_id, group_id)
            else:
                # Free: the preferred account takes it; any other one only once it has stayed
                # free for a whole round (the preferred one may not see what we see).
                first_free = self._free_since.setdefault(group_id, now)
                best = preferred(group_id, here, pinned)
                if best in (None, self.account_id) or now - first_free >= self.settings.renew_every:
                    self._free_since.pop(group_id, None)
                    claim.append(group_id)
        if hand_over:
            await self._hand_over(conn, hand_over)
        if renew:
            claim += await self._renew_all(conn, renew)
        gained: list[tuple[str, int]] = []
        for group_id in claim:
            before = self._held.get(group_id)
            await self._claim(conn, group_id)
            after = self._held.get(group_id)
            if after is not None and (before is None or before.token != after.token):
                gained.append((group_id, after.token))
        return gained

    async def _renew_all(self, conn: AsyncConnection, groups: list[str]) -> list[str]:
        """Renew the duties we hold in `groups`, under their tokens, in one statement; returns
        the groups where that failed (our lease there had run out: they are claimed again)."""
        held = [(g, self._held[g]) for g in groups]
        started = self._mono()
        async with conn.begin():
            rows = await self._exec(
                conn,
                _RENEW_ALL,
                {
                    "groups": [g for g, _ in held],
                    "tokens": [h.token for _, h in held],
                    "instance": self.instance,
                    "account": self.account_id,
                    "ttl": self.settings.lease_seconds,
                },
            )
            renewed = {row.group_id: float(row.left) for row in rows}
        for group_id, h in held:
            if group_id in renewed:
                h.deadline = started + renewed[group_id] - self.settings.safety_margin
        return [g for g, _ in held if g not in renewed]

    async def _hand_over(self, conn: AsyncConnection, groups: list[str]) -> None:
        # Stop acting at once; the others may take over after the safety margin.
        for group_id in groups:
            self._held.pop(group_id, None)
        async with conn.begin():
            for group_id in groups:
                await self._exec(
                    conn,
                    _RELEASE,
                    {"group": group_id, "instance": self.instance, "margin": self.settings.safety_margin},
                )

    async def _tell_gained(self, gained: list[tuple[str, int]]) -> None:
        for group_id, token in gained:
            for callback in list(self._on_gained):
                try:
                    await callback(group_id, token)
                except Exception:
                    log.exception("cluster: a duty-gained callback failed for %s", group_id)

    def on_duty_gained(self, callback: GainedCallback) -> Callable[[], None]:
        """Call `callback(group_id, token)` whenever this account takes a group's duty (work
        that fell to nobody meanwhile, such as a due broadcast, can then be done). Returns a
        function that unsubscribes."""
        self._on_gained.append(callback)
        return lambda: self._on_gained.remove(callback) if callback in self._on_gained else None

    async def roster(self) -> list[AccountRow]:
        """Every account registered in the database: running or not, its standing, its duties."""
        async with self.engine.connect() as conn:
            rows = (await self._exec(conn, _ROSTER, {})).all()
        return [
            AccountRow(r.account_id, bool(r.running), r.budget_left, r.budget, r.trouble, int(r.duties)) for r in rows
        ]

    def _standing_text(self) -> str:
        standing = self.standing() if self.standing is not None else Standing()
        if standing.trouble:
            return f"in trouble: {standing.trouble}"
        if standing.budget_left is not None:
            return f"{standing.budget_left} of {standing.budget} sends left this hour"
        return "standing unknown"

    async def _register(self, conn: AsyncConnection) -> bool:
        standing = self.standing() if self.standing is not None else Standing()
        started = self._mono()
        row = (
            await self._exec(
                conn,
                _REGISTER,
                {
                    "account": self.account_id,
                    "instance": self.instance,
                    "ttl": self.settings.lease_seconds,
                    "budget_left": standing.budget_left,
                    "budget": standing.budget,
                    "trouble": standing.trouble,
                },
            )
        ).first()
        if row is None:
            self._account_deadline = float("-inf")
            return False
        self._account_deadline = started + float(row.left) - self.settings.safety_margin
        return True

    async def _claim(self, conn: AsyncConnection, group_id: str) -> None:
        pinned = self.settings.pinned.get(group_id)
        started = self._mono()
        async with conn.begin():
            row = (
                await self._exec(
                    conn,
                    _CLAIM,
                    {
                        "group": group_id,
                        "account": self.account_id,
                        "instance": self.instance,
                        "pinned": None if pinned in (None, self.account_id) else pinned,
                        "ttl": self.settings.lease_seconds,
                    },
                )
            ).first()
        before = self._held.get(group_id)
        if row is None:
            if before is not None:
                # Stopped acting above (the cache entry is gone); hand over without waiting for
                # the lease to run out (a pinned account came back, or our lease lapsed).
                del self._held[group_id]
                log.info("cluster: %s no longer on duty in %s", self.account_id, group_id)
                async with conn.begin():
                    await self._exec(
                        conn,
                        _RELEASE,
                        {"group": group_id, "instance": self.instance, "margin": self.settings.safety_margin},
                    )
            return
        token = int(row.token)
        self._held[group_id] = _Held(token, started + float(row.left) - self.settings.safety_margin)
        if before is None or before.token != token:
            log.info("cluster: %s on duty in %s (token %d)", self.account_id, group_id, token)
            if self.on_acquired is not None:
                self.on_acquired(group_id, token)

    async def _renew(self, group_id: str, held: _Held) -> bool:
        """Renew the account lease and this one duty lease (under its token), in the database."""
        async with self.engine.begin() as conn:
            if not await self._register(conn):
                self._lose_all("another process took over this account")
                return False
            started = self._mono()
            row = (
                await self._exec(
                    conn,
                    _RENEW,
                    {
                        "group": group_id,
                        "instance": self.instance,
                        "account": self.account_id,
                        "token": held.token,
                        "ttl": self.settings.lease_seconds,
                    },
                )
            ).first()
        if row is None:
            if self._held.get(group_id) is held:
                del self._held[group_id]
            log.info("cluster: %s lost the duty in %s (token %d is stale)", self.account_id, group_id, held.token)
            return False
        held.deadline = started + float(row.left) - self.settings.safety_margin
        now = self._mono()
        return now < held.deadline and now < self._account_deadline

    def _lose_all(self, why: str) -> None:
        """Stop acting everywhere: we cannot prove we still hold anything."""
        self._held.clear()
        self._account_deadline = float("-inf")
        if not self._lost_reported:
            self._lost_reported = True
            log.warning(
                "cluster: account %s lost its lease (%s); only recording until it is regained", self.account_id, why
            )

    async def stop(self) -> None:
        """Stop renewing and hand everything over: the duties after the safety margin, the
        account lease at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        held, self._held = list(self._held), {}
        self._account_deadline = float("-inf")
        try:
            async with self.engine.begin() as conn:
                for group_id in held:
                    await self._exec(
                        conn,
                        _RELEASE,
                        {"group": group_id, "instance": self.instance, "margin": self.settings.safety_margin},
                    )
                await self._exec(conn, _RESIGN, {"account": self.account_id, "instance": self.instance})
        except Exception as exc:
            log.warning("cluster: could not release leases at shutdown (%s); they expire on their own", exc)
