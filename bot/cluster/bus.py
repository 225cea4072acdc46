"""Notices between the processes sharing one PostgreSQL: LISTEN/NOTIFY (DESIGN §6).

One dedicated asyncpg connection listens on one PostgreSQL channel (`qunbot`); every notice is
an envelope `{"topic", "origin", "data"}`, so subscribing to a topic needs no new LISTEN and a
reconnect re-listens on one channel only. Notices are sent through the ordinary engine
(`SELECT pg_notify(...)`), so sending works whether or not our own listener is connected.

Notifications are not queued for a listener that is away: while the connection is down (a
database restart, a network cut) everything sent is lost. So the listener reconnects with
back-off and then asks every subscriber to resync (re-read what it caches). A connection that
silently died (no RST) is noticed by a probe every `probe_every` seconds.

A process ignores its own notices: it made the change and applied it already.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.bus import P, Topic

log = logging.getLogger("qunbot.cluster.bus")

CHANNEL = "qunbot"
# PostgreSQL refuses a payload of 8000 bytes or more.
MAX_PAYLOAD = 7900

QUEUE_CAP = 1000

_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


@dataclass(slots=True)
class _Subscription:
    topic: Topic[Any]
    on_message: Callable[[Any], Awaitable[None]]
    on_resync: Callable[[], Awaitable[None]] | None


def listener_dsn(engine: AsyncEngine) -> str:
    """The engine's URL as a plain asyncpg DSN (the same server, database and credentials)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgBus:
    """`bot.core.bus.Bus` on PostgreSQL LISTEN/NOTIFY, for one process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        origin: str | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        probe_every: float = 10.0,
        resync_every: float | None = 60.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"LISTEN/NOTIFY needs PostgreSQL; this database is {engine.dialect.name}")
        self.engine = engine
        self.origin = origin or uuid.uuid4().hex
        self._dsn = listener_dsn(engine)
        self._backoff = (backoff_initial, backoff_max)
        self._probe_every = probe_every
        self._resync_every = resync_every
        self._connect_timeout = connect_timeout
        self._subs: list[_Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        # Notices (and resyncs: None) are handled one at a time, in the order they came, by one
        # worker, so no subscriber runs twice at once; a backlog past the cap is dropped and
        # replaced by one resync.
        self._queue: asyncio.Queue[tuple[_Subscription, BaseModel] | None] = asyncio.Queue(QUEUE_CAP)
        self._worker: asyncio.Task[None] | None = None
        self._overflowed = False
        self.connected = asyncio.Event()
        # Counters for tests and logs: connections made (the first one included), resyncs run.
        self.connects = 0
        self.resyncs = 0

    # --- the interface ---------------------------------------------------------------------
    def subscribe(
        self,
        topic: Topic[P],
        on_message: Callable[[P], Awaitable[None]],
        *,
        on_resync: Callable[[], Awaitable[None]] | None = None,
    ) -> Callable[[], None]:
        sub = _Subscription(topic, on_message, on_resync)
        self._subs.append(sub)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subs.remove(sub)

        return unsubscribe

    async def publish(self, topic: Topic[P], payload: P) -> None:
        text = json.dumps(
            {"topic": topic.name, "origin": self.origin, "data": payload.model_dump(mode="json")},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        if len(text.encode()) > MAX_PAYLOAD:
            log.error("bus: a %s notice of %d bytes is too large to send; not sent", topic.name, len(text.encode()))
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": text})
        except Exception as exc:  # the others catch up on their next re-read or resync
            first = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("bus: could not send a %s notice (%s: %s)", topic.name, type(exc).__name__, first)

    # --- running ---------------------------------------------------------------------------
    async def start(self, *, wait: float = 5.0) -> None:
        """Start listening in the background; wait up to `wait` seconds for the first connection
        (a database that is away now is retried in the background)."""
        self._worker = asyncio.create_task(self._work(), name="cluster-bus-handlers")
        self._task = asyncio.create_task(self._run(), name="cluster-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=wait)

    async def stop(self) -> None:
        for task in (self._task, self._worker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._worker = None
        await self._close()

    async def _run(self) -> None:
        delay, longest = self._backoff
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
            except Exception as exc:
                if failing_since is None:
                    failing_since = loop.time()
                    log.warning("bus: cannot listen for notices (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            self._conn = conn
            self._lost.clear()
            try:
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connects += 1
                delay = self._backoff[0]
                self.connected.set()
                if self.connects > 1:
                    away = f" after {loop.time() - failing_since:.0f} s" if failing_since is not None else ""
                    log.warning("bus: listening again%s; resyncing what notices would have said", away)
                    failing_since = None
                    self._request_resync()
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failing_since is None:
                    failing_since = loop.time()
                    log.warning("bus: lost the listening connection (%s: %s); reconnecting", type(exc).__name__, exc)
            finally:
                self.connected.clear()
                await self._close()

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return (raise) when the connection is gone: closed by the server, or dead silently
        (a probe that gets no answer). Every `resync_every` seconds, a resync anyway: a notice
        that could not be sent (the sender's database connection failed) is not lost for good."""
        loop = asyncio.get_running_loop()
        last_resync = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=self._probe_every)
            if self._lost.is_set() or conn.is_closed():
                raise ConnectionError("the listening connection was closed")
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=self._connect_timeout)
            if self._resync_every is not None and loop.time() - last_resync >= self._resync_every:
                last_resync = loop.time()
                self._request_resync()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1)
            if not conn.is_closed():
                conn.terminate()

    def _request_resync(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._overflowed = True  # the worker resyncs once the backlog is gone

    async def _resync(self) -> None:
        self.resyncs += 1
        for sub in list(self._subs):
            if sub.on_resync is None:
                continue
            try:
                await sub.on_resync()
            except Exception:
                log.exception("bus: resync of %s failed", sub.topic.name)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            envelope = json.loads(payload)
            name, origin, data = envelope["topic"], envelope["origin"], envelope["data"]
        except (ValueError, KeyError, TypeError):
            log.warning("bus: a notice that is not ours was ignored: %.80r", payload)
            return
        if origin == self.origin:
            return
        for sub in list(self._subs):
            if sub.topic.name != name:
                continue
            try:
                message: BaseModel = sub.topic.model.model_validate(data)
            except ValidationError as err:
                log.warning("bus: a %s notice did not match its model (%s); ignored", name, err.errors()[0]["msg"])
                continue
            try:
                self._queue.put_nowait((sub, message))
            except asyncio.QueueFull:
                if not self._overflowed:
                    log.warning("bus: %d notices waiting; dropping the rest and resyncing instead", QUEUE_CAP)
                self._overflowed = True

    async def _work(self) -> None:
        while True:
            entry = await self._queue.get()
            if entry is None:
                await self._resync()
                continue
            sub, message = entry
            try:
                await sub.on_message(message)
            except Exception:
                log.exception("bus: the %s handler failed", sub.topic.name)
            if self._overflowed and self._queue.empty():
                self._overflowed = False
                await self._resync()
