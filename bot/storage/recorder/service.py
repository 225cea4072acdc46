"""The recorder: takes events on the message path (`record`, O(1)), and a background task
writes them in batches, holding them through database outages and setting aside what the
database refuses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.core.events import Event
from bot.storage.db import Database
from bot.storage.health import call_listener, describe, is_outage
from bot.storage.models import EventLog, EventType, table_of
from bot.storage.recorder import deadletter
from bot.storage.recorder.buffer import EventBuffer
from bot.storage.recorder.fold import FOLD, OutboundMessage
from bot.storage.recorder.writer import BatchWriter
from bot.storage.settings import StorageSettings

log = logging.getLogger("bot.storage.recorder")

_LOG = table_of(EventLog)
_MAX_PENDING_SOURCES = 10_000
_PURGE_CHUNK = 5_000
DROPPED = "raw messages dropped (buffer full)"  # the outage summary's name for them


class _Outage(Exception):
    """A flush cannot go on: the database went away, or (`database` False) it refused rows
    that the dead-letter file cannot take. These events are still unwritten."""

    def __init__(self, unwritten: list[Event], cause: BaseException, *, database: bool = True) -> None:
        super().__init__(str(cause))
        self.unwritten = unwritten
        self.cause = cause
        self.database = database  # False: the database is there, the dead-letter file is not


class Recorder:
    """Batches events into the database. One per process; start it after the database
    is open and stop it before closing the database (stop flushes)."""

    def __init__(
        self,
        db: Database,
        tz: tzinfo,
        settings: StorageSettings | None = None,
        *,
        dead_letter_path: Path | str | None = None,
    ) -> None:
        self._db = db
        self._settings = settings or db.settings
        self.dead_letter_path = (
            Path(dead_letter_path) if dead_letter_path else deadletter.default_dead_letter_path(self._settings)
        )
        self._buffer = EventBuffer(self._settings)
        self._in_flight = 0
        self._sources: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._writer = BatchWriter(db, tz, self._settings.store_text == "full")
        self.written = 0  # events written to the database since start
        self.dead_lettered = 0  # events set aside (refused by the database) since start
        self.dropped = 0  # raw messages dropped from a full buffer since start
        # Called with the number dropped when a full buffer first drops messages (then again
        # only after the buffer had room): the app tells the bot admins.
        self.on_drop: Callable[[int], object] | None = None
        self._dropping = False
        self._done_at_outage = 0
        db.health.on_down.append(self._outage_began)
        db.health.reporters.append(self._report_outage)

    def _outage_began(self, _reason: str) -> None:
        self._done_at_outage = self.written + self.dead_lettered

    def _report_outage(self, counts: Counter[str]) -> None:
        # What waited: still pending, or handled since the outage began.
        counts["events buffered"] += self.pending + self.written + self.dead_lettered - self._done_at_outage

    # -- the synchronous, O(1) side ---------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events accepted but not yet written (buffered or in the batch being written)."""
        return len(self._buffer) + self._in_flight

    @property
    def buffered_bytes(self) -> int:
        """The buffer's approximate size in memory (what `buffer_max_bytes` limits)."""
        return self._buffer.bytes

    def record(self, event: Event) -> None:
        """Queue an event for writing. Never touches the database; types that are not
        recorded (e.g. Tick) are ignored."""
        if type(event) not in FOLD:
            log.debug("recorder: not recording %s", type(event).__name__)
            return
        if event.at.tzinfo is None:
            raise ValueError(f"{type(event).__name__}.at is a naive datetime: {event.at!r}")
        buffer = self._buffer
        over = buffer.add(event)
        if len(buffer) >= self._settings.batch_size:
            self._wake.set()
        if over:
            self._shed()

    def _shed(self) -> None:
        dropped = self._buffer.shed()
        if not dropped:
            return
        self.dropped += dropped
        self._db.health.count(DROPPED, dropped)
        if not self._dropping:
            self._dropping = True
            log.warning(
                "recorder: buffer full (%d events, ~%d MB): dropping the oldest chat messages (%d so far)",
                len(self._buffer),
                self._buffer.bytes // (1024 * 1024),
                self.dropped,
            )
            if self.on_drop is not None:
                call_listener(self.on_drop, dropped)

    def record_outbound(self, group_id: str | None, text: str, at: datetime, message_id: str | None = None) -> None:
        """Log a message the bot sent (type "bot_message"); text follows `store_text`."""
        self.record(OutboundMessage(at=at, group_id=group_id, text=text, message_id=message_id))

    def record_membership_source(self, group_id: str, member_id: str, source: str) -> None:
        """Say how a member is about to join (e.g. "keyword:进群"): the next join of that
        member in that group that this recorder writes carries it."""
        if len(self._sources) >= _MAX_PENDING_SOURCES:
            self._sources.pop(next(iter(self._sources)))
        self._sources[(group_id, member_id)] = source

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._stopped.clear()
        self._task = asyncio.create_task(self._run(), name="storage-recorder")

    async def stop(self, *, patience: float = 0.0) -> bool:
        """Stop the background task and write everything still buffered. If the database is
        unreachable, wait up to `patience` seconds for it; what is still unwritten then is
        set aside (the dead-letter file, replayed at the next start) rather than lost.
        False when the database was still away at the end: the rows set aside then are safe
        on disk, but the flush failed, and `qunbot run` says so with its exit code. (Rows the
        database refused for their data are set aside as at any other time: not a failure.)"""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
        health = self._db.health
        await self.flush()
        if self._buffer and not health.up and patience > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience):
                    await health.wait_up()
            await self.flush()
        if self._buffer:
            events = self._buffer.take_all()
            reason = f"unwritten at shutdown: database unreachable ({health.reason or 'no reason known'})"
            if await self._set_aside(events, reason):
                log.error(
                    "recorder: %d unwritten events set aside in %s (replayed at the next start)",
                    len(events),
                    self.dead_letter_path,
                )
            else:
                log.error("recorder stopped with %d events neither written nor set aside; they follow", len(events))
                for event in events:
                    log.error("unwritten event: %s", json.dumps(deadletter.event_to_json(event), ensure_ascii=False))
            return False
        return True

    async def _run(self) -> None:
        health = self._db.health
        while not self._stopping:
            if not health.up:
                # Nothing to try until the health probe sees the database again (a full
                # buffer's wake-ups are no reason to try earlier).
                await _first(health.wait_up(), self._stopped.wait())
                if self._stopping:
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the task alive whatever happens; flush logs details
                log.exception("recorder: flush failed")

    # -- writing ------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything buffered now, in batches of `batch_size`, in arrival order. When
        the database is unreachable, what is unwritten stays buffered (nothing raised)."""
        async with self._lock:
            remaining = len(self._buffer)  # events queued meanwhile wait for the next flush
            health = self._db.health
            while remaining > 0 and self._buffer:
                size = min(self._settings.batch_size, remaining, len(self._buffer))
                batch = self._buffer.take(size)
                size = len(batch)
                remaining -= size
                self._in_flight = size
                unwritten: list[Event] = batch  # until the write says otherwise
                try:
                    await self._write_isolating(batch)
                    unwritten = []
                except _Outage as outage:
                    unwritten = outage.unwritten
                    if outage.database:
                        health.failed(outage.cause)
                finally:
                    self._in_flight = 0
                    if unwritten:
                        # Neither written nor set aside (or cancelled meanwhile): keep them,
                        # in order, for the next flush.
                        self._buffer.put_back(unwritten)
                if unwritten:
                    return
                health.succeeded()
            if len(self._buffer) < self._settings.buffer_max_events // 2:
                self._dropping = False

    async def _write_isolating(self, batch: list[Event]) -> None:
        """Write `batch`; if the database refuses it for its data, split it in halves until
        the refused events are alone, and set only those aside. Raises `_Outage` (with what
        is still unwritten) when the database is unreachable."""
        pieces = [batch]  # a stack: the last piece is written next
        refused: list[str] = []
        try:
            while pieces:
                piece = pieces.pop()
                try:
                    await self._write(piece)
                except Exception as exc:
                    if is_outage(exc):
                        raise _Outage([*piece, *chain.from_iterable(reversed(pieces))], exc) from exc
                    if len(piece) > 1:
                        half = len(piece) // 2
                        pieces += [piece[half:], piece[:half]]
                        continue
                    reason = describe(exc)
                    if not await self._set_aside(piece, reason):
                        # Nowhere to put it: keep everything left for the next flush.
                        raise _Outage([*piece, *chain.from_iterable(reversed(pieces))], exc, database=False) from exc
                    refused.append(reason)
                    continue
                self.written += len(piece)
        finally:
            if refused:
                # One line per batch, however many rows were refused.
                log.warning(
                    "recorder: the database refused %d event(s) (%s); set aside in %s",
                    len(refused),
                    refused[0],
                    self.dead_letter_path,
                )

    async def _set_aside(self, events: list[Event], reason: str) -> bool:
        if not await deadletter.set_aside(self.dead_letter_path, events, reason):
            return False
        self.dead_lettered += len(events)
        return True

    async def _write(self, events: Sequence[Event]) -> None:
        await self._writer.write(events, self._sources)

    # -- maintenance --------------------------------------------------------------------------

    async def purge_text(self, now: datetime) -> int:
        """Clear the text (and URLs) of messages older than `purge_after_days`; the rest of
        the row and the rollups stay. Works in short transactions. Returns rows purged."""
        days = self._settings.purge_after_days
        if days is None:
            return 0
        cutoff = now - timedelta(days=days)
        c = _LOG.c
        if self._db.dialect == "postgresql":
            has_url = c.meta.op("?")(sa.literal("url", sa.String))
            without_url: Any = c.meta.op("-")(sa.literal("url", sa.String))
        else:
            has_url = sa.func.json_extract(c.meta, "$.url").is_not(None)
            without_url = sa.func.json_remove(c.meta, "$.url")
        purged, last_id = 0, 0
        while True:
            async with self._db.engine.begin() as conn:
                ids = (
                    (
                        await conn.execute(
                            sa.select(c.id)
                            .where(
                                c.id > last_id,
                                c.at < cutoff,
                                c.type.in_(EventType.WITH_TEXT),
                                sa.or_(c.text.is_not(None), has_url),
                            )
                            .order_by(c.id)
                            .limit(_PURGE_CHUNK)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return purged
                await conn.execute(sa.update(_LOG).where(c.id.in_(ids)).values(text=None, meta=without_url))
            purged += len(ids)
            last_id = ids[-1]

    async def replay_dead_letter(self, path: Path | str | None = None) -> int:
        """Queue the events of a dead-letter file again, flush, and rename the file to
        `*.replayed`. Events are cleaned as at the edge (`storable`: rows set aside for a NUL
        before it was cleaned there now go in); those refused again are set aside again, in a
        new file. A malformed line raises ValueError (with its number) and changes nothing."""
        events = await deadletter.take_events(Path(path) if path else self.dead_letter_path)
        if events is None:
            return 0
        for event in events:
            self.record(event)
        await self.flush()
        return len(events)


async def _first(*waits: Any) -> None:
    """Wait until the first of these coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
