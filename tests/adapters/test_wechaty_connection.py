"""The connection loop of the wechaty adapter, over fake puppet clients: reconnects, liveness,
back-off, handlers registered once per connection, graceful close."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from bot.adapters.wechaty.connection import EVENTS, PuppetConnection
from bot.adapters.wechaty.redact import SecretRedactor
from bot.config.models import WechatyReconnect, WechatySettings
from tests.adapters.wechaty_fakes import FakePuppet, FakeWorld

FAST = WechatySettings(
    heartbeat_interval=0.05,
    liveness_timeout=0.3,
    connect_timeout=1,
    rpc_timeout=1,
    send_wait=1,
    reconnect=WechatyReconnect(initial_delay=0.01, max_delay=0.02, reset_after=100),
)


async def no_probe(endpoint: str, seconds: float) -> None:
    return None


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll a condition the fakes make true from another task (no event to wait on)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Harness:
    def __init__(
        self, make: Callable[[int], FakePuppet], settings: WechatySettings = FAST, redact: Callable[[str], str] = str
    ) -> None:
        self.puppets: list[FakePuppet] = []
        self.events: list[tuple[str, Any, FakePuppet]] = []
        self._make = make

        def factory() -> FakePuppet:
            puppet = make(len(self.puppets))
            self.puppets.append(puppet)
            return puppet

        async def sink(name: str, payload: Any, puppet: Any) -> None:
            self.events.append((name, payload, puppet))

        self.conn = PuppetConnection(
            settings, "127.0.0.1:1", factory, sink=sink, redact=redact, rng=random.Random(1), probe=no_probe
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.conn.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    def named(self, name: str) -> list[Any]:
        return [payload for n, payload, _p in self.events if n == name]


async def test_events_reach_the_sink_in_order_and_a_reconnect_does_not_double_handlers() -> None:
    world = FakeWorld()
    async with Harness(lambda n: FakePuppet(world)) as h:
        await eventually(lambda: h.conn.logged_in.is_set())
        first = h.puppets[0]
        assert all(len(first.listeners[name]) == 1 for name in EVENTS)
        for i in range(5):
            first.emit("message", SimpleNamespace(message_id=f"m{i}"))
        await eventually(lambda: len(h.named("message")) == 5)
        assert [p.message_id for p in h.named("message")] == [f"m{i}" for i in range(5)]
        assert h.conn.self_id == "bot" and h.named("login")[0].contact_id == "bot"

        first.end()  # the service closed the event stream
        await eventually(lambda: h.conn.sessions == 2 and h.conn.logged_in.is_set())
        assert "ended" in h.conn.last_reason
        assert first.closed and not first.stopped  # a dead connection gets no Stop call
        second = h.puppets[1]
        assert all(len(second.listeners[name]) == 1 for name in EVENTS)
        first.emit("message", SimpleNamespace(message_id="late"))  # the old client is gone
        second.emit("message", SimpleNamespace(message_id="m5"))
        await eventually(lambda: len(h.named("message")) == 6)
        await asyncio.sleep(0.05)
        assert [p.message_id for p in h.named("message")][-1] == "m5"
        assert len(h.named("message")) == 6
        assert h.events[-1][2] is second  # events are read with the connection they came on


async def test_a_silent_service_gets_pinged_and_is_dropped_when_nothing_answers() -> None:
    world = FakeWorld()
    async with Harness(lambda n: FakePuppet(world, answer_ding=n > 0)) as h:
        await eventually(lambda: h.conn.sessions == 2, seconds=5)
        dead = h.puppets[0]
        assert dead.dings >= 1 and dead.closed and not dead.stopped
        assert "no event or heartbeat" in h.conn.last_reason
        # The second client answers its pings: it stays up well past liveness_timeout.
        await asyncio.sleep(FAST.liveness_timeout * 2.5)
        assert h.conn.sessions == 2 and h.puppets[1].dings >= 2


async def test_connect_failures_back_off_and_recover() -> None:
    world = FakeWorld()
    errors = [ConnectionRefusedError("refused"), OSError("unreachable")]

    def make(n: int) -> FakePuppet:
        return FakePuppet(world, handshake_error=errors[n] if n < len(errors) else None)

    async with Harness(make) as h:
        await eventually(lambda: h.conn.sessions == 1 and h.conn.logged_in.is_set())
        assert len(h.puppets) == 3 and h.puppets[0].closed and h.puppets[1].closed
        assert h.conn.backoff.failures == 2


async def test_close_stops_the_puppet_with_a_stop_call_and_ends_the_loop() -> None:
    world = FakeWorld()
    h = Harness(lambda n: FakePuppet(world))
    async with h:
        await eventually(lambda: h.conn.logged_in.is_set())
    assert h.task is not None and h.task.done() and h.conn.last_reason == "closing"
    assert h.puppets[0].stopped and h.puppets[0].closed
    assert not h.conn.logged_in.is_set() and h.conn.puppet is None


async def test_reasons_never_contain_the_token() -> None:
    world = FakeWorld()
    redactor = SecretRedactor(["tok_secret"])

    def make(n: int) -> FakePuppet:
        if n == 0:
            return FakePuppet(world, handshake_error=RuntimeError("bad authority tok_secret"))
        return FakePuppet(world)

    async with Harness(make, redact=redactor.redact) as h:
        await eventually(lambda: h.conn.sessions == 1)
        h.puppets[1].end(RuntimeError("stream reset for tok_secret"))
        await eventually(lambda: h.conn.sessions == 2)
        assert "tok_secret" not in h.conn.last_reason and "***" in h.conn.last_reason


async def test_a_failing_sink_does_not_drop_the_connection_and_shutdown_stops_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = FakeWorld()
    seen: list[str] = []

    async def sink(name: str, payload: Any, puppet: Any) -> None:
        if name == "message":
            if payload.message_id == "boom":
                raise ValueError("handler bug")
            seen.append(payload.message_id)

    puppets: list[FakePuppet] = []

    def factory() -> FakePuppet:
        puppets.append(FakePuppet(world))
        return puppets[-1]

    conn = PuppetConnection(FAST, "127.0.0.1:1", factory, sink=sink, probe=no_probe)
    task = asyncio.create_task(conn.run())
    try:
        await eventually(lambda: conn.logged_in.is_set())
        puppets[0].emit("message", SimpleNamespace(message_id="boom"))
        puppets[0].emit("message", SimpleNamespace(message_id="ok"))
        await eventually(lambda: seen == ["ok"])
        assert "could not handle a message event" in caplog.text
        conn.deliver = False
        puppets[0].emit("message", SimpleNamespace(message_id="after"))
        await asyncio.sleep(0.05)
        assert seen == ["ok"] and conn.sessions == 1
    finally:
        await conn.close()
        await asyncio.wait_for(task, 5)
