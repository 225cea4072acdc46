"""Actions into a group another account is on duty in (DESIGN §6): handed over through the
database, carried out by that account.

A relay line from a group served by account A into a group served by B, or a keyword invite
that A chose a group of B's for, would be refused by A's outbox (another account holds the
duty there). Instead A writes a row in `cluster_handoff` (its `key` makes it idempotent) and
publishes a notice; B, on duty in the group, takes the group's pending rows in id order, in one
statement that checks its duty lease in the database, and queues them on its own outbox,
stamped with its fencing token like any action of its own. So:
- each row is taken by at most one account, and only by the one on duty (checked by the
  database, then again by the outbox's fencing check right before the platform call);
- a row refused by the outbox's fencing (B lost the duty before sending) goes back to pending
  for the next account on duty, with its place in the order;
- the rows of one group are sent in the order they were handed over;
- a row nobody takes within `handoff_ttl` expires (logged; the originator's callback hears it);
- the result goes back to the originator (a `handoff_done` notice; a lost notice is caught by
  the originator's periodic check), whose `on_done` callback runs there.

A process that stops hands back what it took and never tried to send (after its outbox
drained). One that dies between taking a row and sending it leaves the row taken: it is not
sent twice, and not sent at all (the same at-most-once as a claimed broadcast delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cluster.duty import ClusterDuty
from bot.core.bus import Bus, HandoffKind, Topic
from bot.core.duty import OffDuty
from bot.core.outbox import DoneCallback, OutboundItem, Outbox
from bot.core.platform import PlatformError, SendResult

log = logging.getLogger("qunbot.cluster.handoff")


class HandoffQueued(BaseModel):
    group_id: str


class HandoffDone(BaseModel):
    id: int
    state: str  # sent | failed | expired
    detail: str | None = None


QUEUED = Topic("handoff", HandoffQueued)
DONE = Topic("handoff_done", HandoffDone)

# Rows taken per statement; a longer backlog is taken over several rounds, still in order.
TAKE_LIMIT = 200
# Callbacks kept for hand-overs not yet reported (the oldest are forgotten past this).
WAITING_CAP = 10_000
# Finished rows are kept this long for inspection, then deleted.
KEEP_DONE = "1 day"

_PASS_ON = sa.text(
    """
    INSERT INTO cluster_handoff (key, group_id, kind, payload, from_account, state, created_at, expires_at)
    VALUES (:key, :group, :kind, CAST(:payload AS jsonb), :account, 'pending', now(),
            now() + make_interval(secs => :ttl))
    ON CONFLICT (key) DO NOTHING
    RETURNING id
    """
)

# Take the pending rows of every group where the database has us on duty, oldest first.
_TAKE = sa.text(
    """
    WITH mine AS (
        SELECT h.id, d.token FROM cluster_handoff h
          JOIN cluster_duty d ON d.group_id = h.group_id
         WHERE h.state = 'pending' AND h.expires_at > now()
           AND d.instance = :instance AND d.expires_at > now()
           AND NOT (h.kind = 'say' AND h.group_id = ANY(CAST(:busy AS text[])))
         ORDER BY h.id
         LIMIT :limit
           FOR UPDATE OF h SKIP LOCKED
    )
    UPDATE cluster_handoff h SET state = 'taken', taken_by = :instance, token = mine.token
      FROM mine WHERE h.id = mine.id
    RETURNING h.id, h.group_id, h.kind, h.payload, h.token
    """
)

_FINISH = sa.text(
    """
    UPDATE cluster_handoff SET state = :state, detail = :detail, done_at = now()
     WHERE id = ANY(:ids) AND state = 'taken' AND taken_by = :instance
    """
)

_RELEASE = sa.text(
    """
    UPDATE cluster_handoff SET state = 'pending', taken_by = NULL, token = NULL
     WHERE id = ANY(:ids) AND state = 'taken' AND taken_by = :instance
    """
)

_EXPIRE = sa.text(
    """
    UPDATE cluster_handoff SET state = 'expired', done_at = now(), detail = 'no account on duty took it in time'
     WHERE state = 'pending' AND expires_at <= now()
    RETURNING id, group_id, kind
    """
)

_PURGE = sa.text(
    f"DELETE FROM cluster_handoff WHERE state <> 'pending' AND created_at < now() - interval '{KEEP_DONE}'"
)

_OUTCOMES = sa.text(
    "SELECT id, state, detail FROM cluster_handoff WHERE id = ANY(:ids) AND state IN ('sent', 'failed', 'expired')"
)

_SERVED = sa.text(
    """
    SELECT DISTINCT m.group_id FROM cluster_members m
      JOIN cluster_accounts a ON a.account_id = m.account_id
     WHERE a.expires_at > now()
    """
)


@dataclass(slots=True)
class _Taken:
    """Rows queued on our outbox as one action (several relay lines merged into one message)."""

    ids: list[int]
    group_id: str
    kind: str
    remaining: int
    report: bool = False  # the originator waits for the outcome
    problem: str | None = None
    fenced: bool = False
    items: list[OutboundItem] = field(default_factory=list)


class ClusterHandoff:
    """`bot.core.bus.Handoff` for one process: hands actions over, and carries out those handed
    to it. Woken by notices; also looks every `poll_every` seconds (a lost notice delays, never
    loses)."""

    def __init__(
        self,
        engine: AsyncEngine,
        duty: ClusterDuty,
        outbox: Outbox,
        bus: Bus,
        *,
        poll_every: float | None = None,
    ) -> None:
        self.engine = engine
        self.duty = duty
        self.outbox = outbox
        self.bus = bus
        self.settings = duty.settings
        self.poll_every = poll_every if poll_every is not None else duty.settings.renew_every
        self._waiting: OrderedDict[int, DoneCallback | None] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Any] = []
        self._served: tuple[float, frozenset[str]] | None = None
        # Rows taken and queued on our outbox, not yet reported: handed back if we stop first.
        self._inflight: dict[int, _Taken] = {}
        # Per group, the relay lines we queued last, while they wait in our outbox.
        self._saying: dict[str, _Taken] = {}
        self.taken = 0  # rows this process took (tests, logs)

    # --- the interface ---------------------------------------------------------------------
    def acts_in(self, group_id: str) -> bool:
        return self.duty.on_duty(group_id)

    async def served_groups(self) -> frozenset[str]:
        loop = asyncio.get_running_loop()
        cached = self._served
        if cached is not None and loop.time() - cached[0] < self.poll_every:
            return cached[1]
        async with self.engine.connect() as conn:
            groups = frozenset(str(r[0]) for r in await conn.execute(_SERVED))
        self._served = (loop.time(), groups)
        return groups

    async def pass_on(
        self,
        group_id: str,
        kind: HandoffKind,
        payload: Mapping[str, Any],
        key: str,
        *,
        on_done: DoneCallback | None = None,
        merge: bool = False,
    ) -> bool:
        # Kept with the row for the account that sends it: whether it may merge this line with
        # the next ones, and whether we wait to hear the outcome.
        payload = {**payload, "merge": merge, "report": on_done is not None}
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    _PASS_ON,
                    {
                        "key": key,
                        "group": group_id,
                        "kind": kind,
                        "payload": json.dumps(dict(payload), ensure_ascii=False),
                        "account": self.duty.account_id,
                        "ttl": self.settings.handoff_ttl,
                    },
                )
            ).first()
        if row is None:
            log.info("handoff: %s was handed over already", key)
            return False
        self._waiting[int(row.id)] = on_done
        while len(self._waiting) > WAITING_CAP:
            forgotten, _ = self._waiting.popitem(last=False)
            log.warning("handoff: too many hand-overs unreported; no longer waiting for #%d", forgotten)
        log.info("handoff: %s to %s handed to the account on duty there (#%d)", kind, group_id, row.id)
        await self.bus.publish(QUEUED, HandoffQueued(group_id=group_id))
        return True

    # --- running ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._unsubscribe = [
            self.bus.subscribe(QUEUED, self._on_queued, on_resync=self._on_resync),
            self.bus.subscribe(DONE, self._on_done_notice),
        ]
        self._task = asyncio.create_task(self._run(), name="cluster-handoff")

    async def stop(self) -> None:
        """Stop taking. Called after the outbox drained: what we took and could not send by
        then goes back in line for the account on duty next (nothing of it was sent)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Only what never reached the platform (a long text half sent stays taken: not twice).
        unsent = list({id(t): t for t in self._inflight.values() if all(i.attempts == 0 for i in t.items)}.values())
        self._inflight, self._saying = {}, {}
        if not unsent:
            return
        try:
            async with self.engine.begin() as conn:
                for taken in unsent:
                    await conn.execute(_RELEASE, {"ids": taken.ids, "instance": self.duty.instance})
        except Exception as exc:
            log.warning("handoff: could not hand back %d unsent action(s) at shutdown (%s)", len(unsent), exc)
            return
        log.info("handoff: handed back %d action(s) not sent before shutdown", len(unsent))

    def wake(self) -> None:
        self._wake.set()

    async def _on_queued(self, notice: HandoffQueued) -> None:
        if self.duty.on_duty(notice.group_id):
            self._wake.set()

    async def _on_resync(self) -> None:
        self._wake.set()

    async def _on_done_notice(self, notice: HandoffDone) -> None:
        if notice.id in self._waiting:
            await self._report(notice.id, notice.state, notice.detail)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_sweep = float("-inf")
        failed = 0  # rounds failed in a row: one warning when it starts, one when it ends
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_every)
            self._wake.clear()
            try:
                await self.take()
                if loop.time() - last_sweep >= self.poll_every:
                    last_sweep = loop.time()
                    await self.sweep()
            except Exception as exc:  # the database is away: the next round tries again
                if not failed:
                    log.warning("handoff: cannot take hand-overs (%s: %s); retrying", type(exc).__name__, exc)
                failed += 1
                continue
            if failed:
                log.warning("handoff: taking hand-overs again after %d failed round(s)", failed)
                failed = 0

    async def take(self) -> int:
        """Take what is handed to the groups we are on duty in, and queue it; returns how many
        rows. Relay lines for a group whose last message from here is still waiting in our
        outbox are left for later, and then go out merged (as the relay's own sender does):
        a lecturer faster than the account's pace does not build an ever-longer queue."""
        total = 0
        while True:
            busy = sorted(g for g, t in self._saying.items() if t.remaining > 0)
            async with self.engine.begin() as conn:
                rows = (
                    await conn.execute(_TAKE, {"instance": self.duty.instance, "limit": TAKE_LIMIT, "busy": busy})
                ).all()
            by_group: dict[str, list[Any]] = {}
            for row in sorted(rows, key=lambda r: int(r.id)):
                by_group.setdefault(str(row.group_id), []).append(row)
            for group_id, group_rows in by_group.items():
                await self._queue_group(group_id, group_rows)
            total += len(rows)
            if len(rows) < TAKE_LIMIT:
                break
        if total:
            self.taken += total
            log.info("handoff: took %d action(s) handed over by other accounts", total)
        return total

    async def sweep(self) -> None:
        """Expire what nobody took in time, forget old rows, and look up the outcome of our own
        hand-overs whose notice may have been lost."""
        async with self.engine.begin() as conn:
            expired = (await conn.execute(_EXPIRE)).all()
            await conn.execute(_PURGE)
        for row in expired:
            log.warning("handoff: %s to %s expired: no account on duty there took it in time", row.kind, row.group_id)
            await self.bus.publish(DONE, HandoffDone(id=int(row.id), state="expired"))
            if int(row.id) in self._waiting:
                await self._report(int(row.id), "expired", None)
        if self._waiting:
            async with self.engine.connect() as conn:
                done = (await conn.execute(_OUTCOMES, {"ids": list(self._waiting)})).all()
            for row in done:
                await self._report(int(row.id), str(row.state), row.detail)

    # --- carrying out ----------------------------------------------------------------------
    async def _queue_group(self, group_id: str, rows: list[Any]) -> None:
        """Queue one group's rows in id order; consecutive mergeable lines share a message (up
        to the outbox's `max_chars`)."""
        limit = self.outbox.settings.max_chars
        run: list[tuple[int, str, bool]] = []  # mergeable relay lines: (id, text, report)

        async def flush() -> None:
            if run:
                text = "\n".join(t for _, t, _ in run)
                await self._queue(group_id, "say", [i for i, _, _ in run], {"text": text}, any(r for *_, r in run))
                run.clear()

        for row in rows:
            data = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
            text = data.get("text")
            if row.kind == "say" and data.get("merge") and isinstance(text, str):
                if run and sum(len(t) + 1 for _, t, _ in run) + len(text) > limit:
                    await flush()
                run.append((int(row.id), text, bool(data.get("report"))))
                continue
            await flush()
            await self._queue(group_id, str(row.kind), [int(row.id)], data, bool(data.get("report")))
        await flush()

    async def _queue(self, group_id: str, kind: str, ids: list[int], data: dict[str, Any], report: bool) -> None:
        items: list[OutboundItem] = []
        try:
            if kind == "say":
                items = self.outbox.say(group_id, str(data["text"]), tuple(data.get("mentions") or ()))
            elif kind == "invite":
                items = [self.outbox.invite(group_id, str(data["contact_id"]))]
        except (KeyError, ValueError) as exc:
            log.error("handoff: #%d (%s to %s) is unusable: %s", ids[0], kind, group_id, exc)
        taken = _Taken(ids, group_id, kind, len(items), report, items=items)
        if not items:
            taken.problem = "nothing to send"
            await self._finish(taken)
            return
        for row_id in ids:
            self._inflight[row_id] = taken
        if kind == "say":
            self._saying[group_id] = taken
        for item in items:
            item.on_done = self._item_done_callback(taken)

    def _item_done_callback(self, taken: _Taken) -> DoneCallback:
        async def done(result: SendResult | None, error: Exception | None) -> None:
            taken.remaining -= 1
            if isinstance(error, OffDuty):
                taken.fenced = True
            elif error is not None or result is None or not result.ok:
                taken.problem = taken.problem or str(error or (result.error if result else None) or "failed")
            if taken.remaining <= 0:
                await self._finish(taken)

        return done

    async def _finish(self, taken: _Taken) -> None:
        for row_id in taken.ids:
            self._inflight.pop(row_id, None)
        if self._saying.get(taken.group_id) is taken:
            del self._saying[taken.group_id]
            self._wake.set()  # lines held back while this one waited may go now
        back = taken.fenced and taken.problem is None  # not sent: we lost the duty first
        try:
            async with self.engine.begin() as conn:
                if back:
                    await conn.execute(_RELEASE, {"ids": taken.ids, "instance": self.duty.instance})
                else:
                    state = "failed" if taken.problem else "sent"
                    await conn.execute(
                        _FINISH,
                        {"ids": taken.ids, "instance": self.duty.instance, "state": state, "detail": taken.problem},
                    )
        except Exception as exc:
            log.warning("handoff: could not record the outcome of #%d (%s)", taken.ids[0], exc)
            return
        if back:
            # Back in line for the account on duty now, in their places.
            log.info(
                "handoff: %d action(s) to %s handed back (another account is on duty there)",
                len(taken.ids),
                taken.group_id,
            )
            await self.bus.publish(QUEUED, HandoffQueued(group_id=taken.group_id))
            return
        state = "failed" if taken.problem else "sent"
        for row_id in taken.ids:
            if row_id in self._waiting:  # handed over by this very process (it took the duty since)
                await self._report(row_id, state, taken.problem)
            elif taken.report:
                await self.bus.publish(DONE, HandoffDone(id=row_id, state=state, detail=taken.problem))

    async def _report(self, row_id: int, state: str, detail: str | None) -> None:
        if row_id not in self._waiting:
            return
        callback = self._waiting.pop(row_id)
        if callback is None:
            return
        if state == "sent":
            result, error = SendResult(ok=True), None
        else:
            result, error = None, PlatformError(detail or f"handed over, then {state}")
        try:
            await callback(result, error)
        except Exception:
            log.exception("handoff: the callback of #%d failed", row_id)
