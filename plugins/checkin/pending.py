"""Work that needs the database, held while it is unreachable and done when it is back.

Check-ins, invite awards and their revocations are kept here during a database outage
instead of being lost or refused. Every job is idempotent on its own (a check-in is one per
member and day, a ledger award one per ref), and the queue is keyed (by message id), so a
job queued twice or run again after a failure changes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.storage.health import DatabaseHealth, is_outage

log = logging.getLogger("qunbot.plugin.checkin")

Job = Callable[[], Awaitable[None]]
# Past this many held jobs a new one is refused (the member is told to retry): memory stays
# bounded however long the outage.
MAX_JOBS = 20_000


class PendingWork:
    def __init__(self, health: DatabaseHealth, *, max_jobs: int = MAX_JOBS) -> None:
        self._health = health
        self._max = max_jobs
        self._jobs: dict[str, Job] = {}
        self._running: asyncio.Task[None] | None = None
        self.done = 0
        health.on_up.append(self._database_back)

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: str) -> bool:
        return key in self._jobs

    def hold(self, key: str, job: Job, what: str) -> bool:
        """Keep `job` until the database is back. False when the queue is full (the caller
        refuses instead). A key already held is not added again (True)."""
        if key in self._jobs:
            return True
        if len(self._jobs) >= self._max:
            return False
        self._jobs[key] = job
        self._health.count(what)
        if self._health.up:  # it came back meanwhile: nobody else will start the run
            self._database_back()
        return True

    def _database_back(self, *_args: object) -> None:
        if self._jobs and (self._running is None or self._running.done()):
            self._running = asyncio.create_task(self.run(), name="checkin-pending")

    async def run(self) -> None:
        """Do the held jobs in the order they came; stop (keeping the rest) if the database
        goes away again. Other failures are logged once per job and the job dropped."""
        while self._jobs:
            key = next(iter(self._jobs))
            job = self._jobs[key]
            try:
                await job()
            except Exception as exc:
                if is_outage(exc):
                    self._health.failed(exc)
                    return
                log.exception("held database work %s failed; dropped", key)
            self._jobs.pop(key, None)
            self.done += 1

    async def run_now(self) -> None:
        """At shutdown: do what is held now if the database is there (after any run already
        going). Held work lives in memory: a stop while the database is away leaves it undone,
        and says so."""
        if self._running is not None and not self._running.done():
            await self._running
        if self._jobs and self._health.up:
            await self.run()
        if self._jobs:
            log.warning("the database is unreachable: %d held jobs not done yet: %s",
                        len(self._jobs), ", ".join(list(self._jobs)[:50]))

    def close(self) -> None:
        """Stop listening (a reload's old state): held jobs still run when it is back."""
        if not self._jobs:
            self._detach()
        else:
            self._health.on_up.append(self._detach_when_empty)

    async def _detach_when_empty(self, *_args: object) -> None:
        if self._running is not None:
            await self._running
        if not self._jobs:
            self._detach()

    def _detach(self) -> None:
        for listener in (self._database_back, self._detach_when_empty):
            while listener in self._health.on_up:
                self._health.on_up.remove(listener)
