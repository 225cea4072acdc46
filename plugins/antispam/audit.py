"""The audit writer: the rows of what the executor did, written off the message path.

The executor acts in the chat at once and hands the rows of each action (the decision, and
its strike or its ban) to `AuditWriter.put`. One task writes them in the order handed over,
each action in one transaction (`AntispamStore.record_action`), and ends when nothing is
left; the next `put` starts another. A write that fails is retried once, then logged with
the rows' content. `settle()` waits until everything handed over is written: the commands
that read or change these tables, the plugin's shutdown and a reload call it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlmodel import SQLModel

from .models import AntispamBan, AntispamDecision, AntispamStrike

if TYPE_CHECKING:
    from .store import AntispamStore

log = logging.getLogger("qunbot.plugin.antispam")

_Row = TypeVar("_Row", bound=SQLModel)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action's rows. The strike's and the ban's `decision_id` are set when written."""

    decision: AntispamDecision
    strike: AntispamStrike | None = None
    ban: AntispamBan | None = None

    def fresh(self) -> AuditEntry:
        """Unsaved copies: the rows handed over are never bound to a session, and an attempt
        that failed half-way leaves nothing behind for the retry."""
        return AuditEntry(_copy(self.decision), self.strike and _copy(self.strike), self.ban and _copy(self.ban))

    def describe(self) -> str:
        rows = {"decision": self.decision, "strike": self.strike, "ban": self.ban}
        return json.dumps({k: v.model_dump(mode="json", exclude={"id"}) for k, v in rows.items() if v is not None},
                          ensure_ascii=False)


def _copy(row: _Row) -> _Row:
    return type(row)(**row.model_dump(exclude={"id"}))


class AuditWriter:
    def __init__(self, store: AntispamStore, *, retry_after: float = 0.5) -> None:
        self.store = store
        self.retry_after = retry_after
        self._queue: deque[AuditEntry] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Actions handed over and not yet written (or given up on)."""
        return len(self._queue)

    def put(self, entry: AuditEntry) -> None:
        """Queue an action's rows; returns at once."""
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
            await self._write(queue[0])
            queue.popleft()
        # Returning with the queue empty and no await in between: a `put` from now on
        # sees this task done and starts the next one, so nothing is stranded.

    async def _write(self, entry: AuditEntry) -> None:
        try:
            await self._record(entry.fresh())
            return
        except Exception as exc:
            log.warning("could not record an anti-spam action for %s in %s (%s: %s); retrying once",
                        entry.decision.member_id, entry.decision.group_id, type(exc).__name__, exc)
        await asyncio.sleep(self.retry_after)
        try:
            await self._record(entry.fresh())
        except Exception:
            # The action itself happened; the log keeps what the audit rows would have said.
            log.exception("could not record an anti-spam action, rows dropped: %s", entry.describe())

    async def _record(self, entry: AuditEntry) -> None:
        await self.store.record_action(entry.decision, strike=entry.strike, ban=entry.ban)
