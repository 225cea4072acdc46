"""Work that needs the database, held while it is unreachable and done when it is back.

Check-ins, invite awards and their revocations are kept here during a database outage
instead of being lost or refused. Every job is idempotent on its own (a check-in is one per
member and day, a ledger award one per ref), and the queue is keyed, so a job held twice or
run again after a failure changes nothing twice.

Held check-ins and invite jobs (and, at a stop, unwritten activity points) are also written
to a journal under the data directory (one JSON line each, and a `done` line when done), so
that a restart, even after kill -9, still does them; the journal is removed once nothing is
held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.storage.health import DatabaseHealth, is_outage

log = logging.getLogger("qunbot.plugin.checkin")

Job = Callable[[], Awaitable[None]]
# Past this many held jobs a new one is refused (the member is told to retry): memory stays
# bounded however long the outage.
MAX_JOBS = 20_000

# One queue per journal in a process: a config reload's new state takes over the old one's
# queue rather than replaying the journal a second time.
_BY_JOURNAL: weakref.WeakValueDictionary[Path, PendingWork] = weakref.WeakValueDictionary()


def pending_work(health: DatabaseHealth, journal: Path | None) -> PendingWork:
    """The queue for this journal (the one already open in this process, if any)."""
    if journal is None:
        return PendingWork(health)
    work = _BY_JOURNAL.get(journal)
    if work is None or work.health is not health:
        work = _BY_JOURNAL[journal] = PendingWork(health, journal=journal)
    return work


class PendingWork:
    def __init__(self, health: DatabaseHealth, *, journal: Path | None = None, max_jobs: int = MAX_JOBS) -> None:
        self.health = health
        self.journal = journal
        self._max = max_jobs
        self._jobs: dict[str, Job] = {}
        self._journaled: set[str] = set()  # held keys that have a line in the journal
        self._lines: list[str | None] = []  # journal lines to append; None: remove the file
        self._writer: asyncio.Task[None] | None = None
        self._running: asyncio.Task[None] | None = None
        self.restored = False
        self.done = 0
        health.on_up.append(self._database_back)

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: str) -> bool:
        return key in self._jobs

    def hold(self, key: str, job: Job, what: str, record: dict[str, Any] | None = None) -> bool:
        """Keep `job` until the database is back; `record` (JSON-able) goes to the journal, for
        `restore` to rebuild the job after a restart. False when the queue is full (the caller
        refuses instead). A key already held is not added again (True)."""
        if key in self._jobs:
            return True
        if len(self._jobs) >= self._max:
            return False
        self._jobs[key] = job
        self.health.count(what)
        if record is not None and self.journal is not None:
            self._journaled.add(key)
            self._write(json.dumps({"key": key, **record}, ensure_ascii=False))
        if self.health.up:  # it came back meanwhile: nobody else will start the run
            self._database_back()
        return True

    async def restore(self, rebuild: Callable[[dict[str, Any]], tuple[Job, str] | None]) -> int:
        """Hold again what the journal says was held and not done (a restart during an
        outage, or a kill): `rebuild(record)` gives (job, what) or None to skip. Once per
        queue. Returns how many were held again."""
        if self.restored or self.journal is None:
            return 0
        self.restored = True
        try:
            text = await asyncio.to_thread(self.journal.read_text, encoding="utf-8")
        except FileNotFoundError:
            return 0
        records: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                log.warning("%s:%d: not a held-work line (a write cut short?); skipped", self.journal, number)
                continue
            if "done" in entry:
                records.pop(entry["done"], None)
            elif "key" in entry:
                records[entry["key"]] = entry
        held = 0
        for key, record in records.items():
            rebuilt = rebuild(record)
            if rebuilt is None or key in self._jobs:
                continue
            job, what = rebuilt
            self._journaled.add(key)  # its line is in the journal already
            self._jobs[key] = job
            self.health.count(what)
            held += 1
        if held:
            log.warning(
                "doing %d jobs held before the restart (check-ins, invite and activity points; %s)", held, self.journal
            )
            if self.health.up:
                self._database_back()
        elif records or text:
            self._write(None)  # nothing left to do: the journal can go
        return held

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
                    self.health.failed(exc)
                    return
                log.exception("held database work %s failed; dropped", key)
            self._jobs.pop(key, None)
            self.done += 1
            if key in self._journaled:
                self._journaled.discard(key)
                self._write(json.dumps({"done": key}, ensure_ascii=False))
        self._write(None)  # nothing held: the journal can go

    async def run_now(self) -> None:
        """At shutdown: do what is held now if the database is there (after any run already
        going). What is still held stays in the journal for the next start."""
        if self._running is not None and not self._running.done():
            await self._running
        if self._jobs and self.health.up:
            await self.run()
        await self.settle()
        if self._jobs:
            where = f"kept in {self.journal} for the next start" if self.journal else "lost (no data directory)"
            log.warning(
                "the database is unreachable: %d held jobs not done yet, %s: %s",
                len(self._jobs),
                where,
                ", ".join(list(self._jobs)[:50]),
            )

    # -- the journal ---------------------------------------------------------------------------

    def _write(self, line: str | None) -> None:
        if self.journal is None:
            return
        self._lines.append(line)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_out(), name="checkin-held-journal")

    async def _write_out(self) -> None:
        assert self.journal is not None
        while self._lines:
            lines, self._lines = self._lines, []
            try:
                await asyncio.to_thread(_apply, self.journal, lines, lambda: not self._jobs)
            except OSError:
                log.exception("cannot write the held-work journal %s", self.journal)

    async def settle(self) -> None:
        """Wait until the journal has every line handed to it."""
        while self._writer is not None and not self._writer.done():
            await self._writer


def _apply(path: Path, lines: list[str | None], empty: Callable[[], bool]) -> None:
    """Append the lines; a None removes the file (when nothing is held by then)."""
    batch: list[str] = []
    for line in lines:
        if line is not None:
            batch.append(line + "\n")
            continue
        if batch:
            _append(path, batch)
            batch = []
        if empty():
            path.unlink(missing_ok=True)
    if batch:
        _append(path, batch)


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)
