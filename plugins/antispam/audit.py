"""The audit writer: the rows of what the executor did, written off the message path.

The executor acts in the chat at once and hands the rows of each action (the decision, and
its strike or its ban) to `AuditWriter.put`. One task writes them in the order handed over,
what is queued at once in one transaction (`AntispamStore.record_actions`: during a spam
wave, one write rather than one per action, which would queue behind each other and behind
the recorder for SQLite's write lock), and ends when nothing is left; the next `put` starts
another. A write that fails is retried once; if that fails too, each action is tried alone
once, so that one bad row costs only its own action, whose rows are then logged with their
content. `settle()` waits until everything handed over is written: the commands that read or
change these tables, the plugin's shutdown and a reload call it.

The queue is bounded (`max_pending`): with the database gone for long during a wave, the
actions past the bound are logged with their rows instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

from sqlmodel import SQLModel

from bot.storage.health import DatabaseHealth, is_outage

from .models import AntispamBan, AntispamDecision, AntispamStrike

if TYPE_CHECKING:
    from .store import AntispamStore, AuditRows

log = logging.getLogger("qunbot.plugin.antispam")

_Row = TypeVar("_Row", bound=SQLModel)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action's rows. The strike's and the ban's `decision_id` are set when written."""

    decision: AntispamDecision
    strike: AntispamStrike | None = None
    ban: AntispamBan | None = None

    def rows(self) -> AuditRows:
        """Unsaved copies of the rows, as the store takes them: the rows handed over are never
        bound to a session, and an attempt that failed half-way leaves nothing behind for the
        retry."""
        return _copy(self.decision), self.strike and _copy(self.strike), self.ban and _copy(self.ban)

    def describe(self) -> str:
        rows = {"decision": self.decision, "strike": self.strike, "ban": self.ban}
        return json.dumps(
            {k: v.model_dump(mode="json", exclude={"id"}) for k, v in rows.items() if v is not None}, ensure_ascii=False
        )


def _copy(row: _Row) -> _Row:
    return type(row)(**row.model_dump(exclude={"id"}))


# Actions written in one transaction at most: a wave's backlog goes in a few writes, none of
# which holds the database's write lock for long.
_BATCH = 200


class AuditWriter:
    def __init__(
        self,
        store: AntispamStore,
        *,
        retry_after: float = 0.5,
        max_pending: int = 10_000,
        health: DatabaseHealth | None = None,
    ) -> None:
        self.store = store
        # With it, an unreachable database is waited out (bans are never given up for an
        # outage), and reported once there instead of a warning per action.
        self.health = health
        self.retry_after = retry_after
        self.max_pending = max_pending
        self._queue: deque[AuditEntry] = deque()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # actions whose rows were given up on (logged instead)

    @property
    def pending(self) -> int:
        """Actions handed over and not yet written (or given up on)."""
        return len(self._queue)

    def put(self, entry: AuditEntry) -> None:
        """Queue an action's rows; returns at once."""
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            log.error(
                "%d anti-spam actions are waiting to be recorded; rows dropped: %s", len(self._queue), entry.describe()
            )
            return
        self._queue.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="antispam-audit")

    async def settle(self) -> None:
        """Wait until every action handed over so far (and any handed over meanwhile) is
        written. Cancelling the wait does not cancel the writing."""
        while (task := self._task) is not None and not task.done():
            await asyncio.wait((task,))

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch = list(islice(queue, _BATCH))
            await self._write(batch)
            for _ in batch:
                queue.popleft()
        # Returning with the queue empty and no await in between: a `put` from now on
        # sees this task done and starts the next one, so nothing is stranded.

    async def _write(self, batch: list[AuditEntry]) -> None:
        while True:
            try:
                await self.store.record_actions([entry.rows() for entry in batch])
                return
            except Exception as exc:
                if self.health is None or not is_outage(exc):
                    failure = exc
                    break
                self.health.failed(exc)
                self.health.count("anti-spam actions waiting", len(batch))
                await self.health.wait_up()
        first = batch[0].decision
        log.warning(
            "could not record %d anti-spam action(s) (the first for %s in %s) (%s: %s); retrying once",
            len(batch),
            first.member_id,
            first.group_id,
            type(failure).__name__,
            failure,
        )
        await asyncio.sleep(self.retry_after)
        try:
            await self.store.record_actions([entry.rows() for entry in batch])
            return
        except Exception:
            if len(batch) == 1:
                # The action itself happened; the log keeps what the audit rows would have said.
                self.dropped += 1
                log.exception("could not record an anti-spam action, rows dropped: %s", batch[0].describe())
                return
            log.warning("could not record %d anti-spam actions together; trying each alone", len(batch), exc_info=True)
        for entry in batch:
            try:
                await self.store.record_actions([entry.rows()])
            except Exception:
                self.dropped += 1
                log.exception("could not record an anti-spam action, rows dropped: %s", entry.describe())
