"""The connection to the puppet service, kept alive.

python-wechaty connects once: when the gRPC event stream ends it just returns, and it has no
working heartbeat check. This loop does the whole life cycle itself:

1. check that the endpoint accepts TCP connections (async, bounded by `connect_timeout`);
2. build a fresh puppet client, register the event listeners on it (once: a new client per
   connection, so a reconnect never doubles a handler), Stop + Start the puppet;
3. read the event stream, handing events one at a time, in order, to the sink;
4. watch liveness: after `heartbeat_interval` seconds without any event, ping the service
   (`ding`, answered by a `dong` event); no event at all within `liveness_timeout` seconds, or
   the stream ending or breaking, means the connection is dead;
5. drop the dead client and reconnect after an exponential back-off with jitter.

Messages the service replays after a reconnect reach the sink like any other; the core's
de-duplication (platform message id) and stale-message guard (the platform's timestamp) make
sure they are recorded but trigger nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bot.adapters.wechaty.mapping import describe_error
from bot.config.models import WechatyReconnect, WechatySettings

log = logging.getLogger("qunbot.wechaty")

# Every event python-wechaty's puppet-service client emits. "error" must have a listener:
# the client emits it on a pyee emitter, which raises when nobody listens to "error", and
# that exception would end the event stream.
EVENTS = (
    "login",
    "logout",
    "ready",
    "message",
    "room-join",
    "room-leave",
    "room-topic",
    "room-invite",
    "friendship",
    "scan",
    "error",
    "heartbeat",
    "dong",
)
# Liveness signals only: they reset the watchdog and go no further.
_LIVENESS_ONLY = frozenset({"heartbeat", "dong"})


class PuppetClient(Protocol):
    """What the connection needs of a puppet client (`_puppet.QunbotPuppetService`; tests fake it)."""

    def on(self, event_name: str, caller: Callable[..., None]) -> None: ...

    async def handshake(self) -> None: ...

    async def listen(self) -> None: ...

    async def ding(self, data: str = "") -> None: ...

    async def stop(self) -> None: ...

    def close_channel(self) -> None: ...


Sink = Callable[[str, Any, Any], Awaitable[None]]


class Backoff:
    """Exponential back-off with jitter: initial_delay × multiplier^n, capped at max_delay,
    each delay drawn from [(1 - jitter) × d, d]."""

    def __init__(self, settings: WechatyReconnect, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        s = self.settings
        ceiling = min(s.max_delay, s.initial_delay * s.multiplier**self.failures)
        self.failures += 1
        return ceiling * (1.0 - s.jitter * self._rng.random())

    def reset(self) -> None:
        self.failures = 0


async def tcp_probe(endpoint: str, seconds: float) -> None:
    """Raise unless `endpoint` (host:port) accepts a TCP connection within `seconds`.
    Replaces python-wechaty's blocking telnetlib "ping"."""
    host, _, port = endpoint.rpartition(":")
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), seconds)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class PuppetConnection:
    def __init__(
        self,
        settings: WechatySettings,
        endpoint: str,
        factory: Callable[[], PuppetClient],
        *,
        sink: Sink | None = None,
        redact: Callable[[str], str] = str,
        rng: random.Random | None = None,
        probe: Callable[[str, float], Awaitable[None]] = tcp_probe,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.sink = sink
        self._factory = factory
        self._redact = redact
        self._probe = probe
        self.backoff = Backoff(settings.reconnect, rng or random.Random())
        self._closing = asyncio.Event()
        # Set while a connection is up and the account is logged in: sends wait for it.
        self.logged_in = asyncio.Event()
        self.puppet: PuppetClient | None = None
        self.self_id: str | None = None
        # False once shutdown begins: events still arriving are dropped, not handled.
        self.deliver = True
        self.sessions = 0  # connections established so far
        self.last_reason = ""
        self._last_event = 0.0
        self._last_ding = 0.0

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect and stay connected until `close()`."""
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():
            started = loop.time()
            reason = await self._session()
            self.last_reason = reason
            if self._closing.is_set():
                return
            if loop.time() - started >= self.settings.reconnect.reset_after:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.warning("wechaty: %s; reconnecting in %.1f s (attempt %d)", reason, delay, self.backoff.failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def close(self) -> None:
        """Ask `run()` to stop; it stops the puppet (Stop call) and closes the channel."""
        self._closing.set()

    async def _session(self) -> str:
        """One connection, from connect to death. Returns why it ended."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        try:
            puppet = self._factory()
        except Exception as exc:
            return f"cannot create the puppet client: {describe_error(exc, self._redact)}"
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in EVENTS:
            puppet.on(name, self._listener(name, queue))
        try:
            await self._probe(self.endpoint, settings.connect_timeout)
            async with asyncio.timeout(settings.connect_timeout):
                await puppet.handshake()
        except Exception as exc:
            _close_quietly(puppet)
            if isinstance(exc, TimeoutError):
                return f"no answer from {self.endpoint} within {settings.connect_timeout:g} s"
            return f"cannot connect to {self.endpoint}: {describe_error(exc, self._redact)}"
        self.sessions += 1
        log.info("wechaty: connected to the puppet service at %s", self.endpoint)
        self._last_event = self._last_ding = loop.time()
        stream = asyncio.create_task(puppet.listen(), name="wechaty-event-stream")
        consumer = asyncio.create_task(self._consume(queue, puppet), name="wechaty-events")
        closing = asyncio.create_task(self._closing.wait(), name="wechaty-closing")
        ding: asyncio.Task[None] | None = None
        self.puppet = puppet
        graceful = False
        try:
            while True:
                now = loop.time()
                next_check = min(
                    self._last_event + settings.liveness_timeout,
                    max(self._last_event, self._last_ding) + settings.heartbeat_interval,
                )
                await asyncio.wait(
                    {stream, closing, consumer},
                    timeout=max(0.05, next_check - now),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if self._closing.is_set():
                    graceful = True
                    return "closing"
                if stream.done():
                    return self._stream_end(stream)
                if consumer.done():  # a bug in the consumer: reconnecting is the safe way on
                    return f"the event handler stopped: {_task_error(consumer, self._redact)}"
                now = loop.time()
                idle = now - self._last_event
                if idle >= settings.liveness_timeout:
                    return f"no event or heartbeat from the puppet service for {idle:.0f} s"
                if idle >= settings.heartbeat_interval and now - self._last_ding >= settings.heartbeat_interval:
                    self._last_ding = now
                    if ding is None or ding.done():
                        ding = asyncio.create_task(self._ding(puppet), name="wechaty-ding")
        finally:
            self.puppet = None
            self.logged_in.clear()
            tasks = [t for t in (stream, consumer, closing, ding) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if graceful:
                # Shutdown: stop the puppet as python-wechaty does (Stop call), briefly.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(min(settings.rpc_timeout, 5.0)):
                        await puppet.stop()
            _close_quietly(puppet)

    def _listener(self, name: str, queue: asyncio.Queue[tuple[str, Any]]) -> Callable[..., None]:
        loop = asyncio.get_running_loop()

        def on_event(payload: Any = None, *_args: Any) -> None:
            # Called synchronously by the client's emitter: never raise here (it would end the
            # stream), never block. Every event proves the connection is alive.
            self._last_event = loop.time()
            if name == "login":
                self.self_id = getattr(payload, "contact_id", None) or self.self_id
                self.logged_in.set()
            elif name == "logout":
                self.logged_in.clear()
            if name not in _LIVENESS_ONLY:
                queue.put_nowait((name, payload))

        return on_event

    async def _consume(self, queue: asyncio.Queue[tuple[str, Any]], puppet: PuppetClient) -> None:
        """Hand events to the sink one at a time, in arrival order."""
        while True:
            name, payload = await queue.get()
            if not self.deliver or self.sink is None:
                continue
            try:
                await self.sink(name, payload, puppet)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wechaty: could not handle a %s event", name)

    async def _ding(self, puppet: PuppetClient) -> None:
        try:
            async with asyncio.timeout(self.settings.rpc_timeout):
                await puppet.ding("qunbot-liveness")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the watchdog decides; this is only a hint
            log.debug("wechaty: ding failed: %s", describe_error(exc, self._redact))

    def _stream_end(self, stream: asyncio.Task[None]) -> str:
        if stream.cancelled():
            return "the event stream was cancelled"
        exc = stream.exception()
        if exc is None:
            return "the event stream ended"
        return f"the event stream broke ({describe_error(exc, self._redact)})"


def _task_error(task: asyncio.Task[None], redact: Callable[[str], str]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return str(describe_error(exc, redact)) if exc is not None else "returned"


def _close_quietly(puppet: PuppetClient) -> None:
    try:
        puppet.close_channel()
    except Exception as exc:
        log.debug("wechaty: closing the channel failed: %s", type(exc).__name__)
