"""Is the database reachable? One place that tells an outage from bad data, and one object
that tracks an outage: a warning when it starts, a probe with back-off while it lasts, and
one summary with counts when it ends.

Everything that writes (the recorder, the points ledger's users, command handlers) reports
failures here with `failed()`; code that can wait (the recorder, queued check-ins) waits with
`wait_up()` or registers `on_up`. Nothing else retries on its own timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url

log = logging.getLogger("qunbot.storage")

# SQLSTATE classes that mean "the server is not there right now", not "your data is wrong":
# 08 connection exceptions, 53 insufficient resources, 57P01-57P03 shutdown / not accepting.
_OUTAGE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")
# Driver errors raised without a SQLSTATE when the connection is gone (asyncpg's names).
_SQLITE_OUTAGE_WORDS = ("locked", "busy", "disk", "unable to open", "readonly")
_OUTAGE_NAMES = frozenset({"ConnectionDoesNotExistError", "ConnectionResetError", "ClientConfigurationError"})


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or went away (retry later),
    False when the statement itself was refused (bad data: retrying cannot help)."""
    return outage_reason(exc) is not None


def outage_reason(exc: BaseException) -> str | None:
    """Why `exc` means an outage, in one line for the log; None when it does not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.exc.DBAPIError) and current.connection_invalidated:
            return f"connection lost: {describe(current)}"
        if isinstance(current, (OSError, TimeoutError)):
            return describe(current)  # refused, reset, unreachable host, connect timeout, disk gone
        if type(current).__name__ in _OUTAGE_NAMES:
            return describe(current)
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES):
            return describe(current)
        if type(current).__module__ == "sqlite3" and type(current).__name__ == "OperationalError":
            # Locked, I/O error, full disk, cannot open: the file's problem, not the row's.
            message = str(current).lower()
            if any(word in message for word in _SQLITE_OUTAGE_WORDS):
                return describe(current)
        inner = current.orig if isinstance(current, sa.exc.DBAPIError) else None
        current = inner or current.__cause__ or current.__context__
    return None


def masked_url(url: str) -> str:
    """A database URL fit for a log line: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database url>"


def describe(exc: BaseException) -> str:
    """The innermost cause of a database error, in one line ("ConnectionRefusedError: ...")."""
    inner: BaseException = exc
    while isinstance(inner, sa.exc.DBAPIError) and inner.orig is not None:
        inner = inner.orig
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text}"[:300] if text else type(inner).__name__


class DatabaseHealth:
    """The database's reachability as the bot last saw it.

    `counts` gathers what happened during the current outage (events buffered, check-ins
    queued, commands refused, raw messages dropped …); the end-of-outage line reports them and
    `on_up` listeners get them."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        name: str,
        *,
        first_delay: float = 0.5,
        max_delay: float = 5.0,
    ) -> None:
        self._probe = probe
        self.name = name  # the masked URL
        self._first_delay = first_delay
        self._max_delay = max_delay
        self.up = True
        self.down_since: float | None = None
        self.reason = ""
        self.counts: Counter[str] = Counter()
        self.outages = 0
        self._up_event = asyncio.Event()
        self._up_event.set()
        self._prober: asyncio.Task[None] | None = None
        self.on_down: list[Callable[[str], object]] = []
        # Add their own figures to the counts when the outage ends (before the summary).
        self.reporters: list[Callable[[Counter[str]], None]] = []
        self.on_up: list[Callable[[float, Counter[str]], object]] = []

    def count(self, what: str, n: int = 1) -> None:
        """Note something the outage caused (only kept while the database is down)."""
        if not self.up:
            self.counts[what] += n

    def failed(self, exc: BaseException) -> None:
        """An operation failed because the database is unreachable. The first failure of
        an outage logs one warning and starts probing; later ones only count."""
        if not self.up:
            return
        self.up = False
        self.outages += 1
        self.down_since = time.monotonic()
        self.reason = outage_reason(exc) or describe(exc)
        self.counts = Counter()
        self._up_event.clear()
        log.warning(
            "database %s unreachable (%s): events are buffered in memory, check-ins queued, other"
            " database commands refused with a hint to retry, until it is back",
            self.name,
            self.reason,
        )
        for listener in list(self.on_down):
            call_listener(listener, self.reason)
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe_until_up(), name="database-probe")

    def succeeded(self) -> None:
        """An operation went through: the database is back (if it was away)."""
        if self.up:
            return
        self.up = True
        seconds = time.monotonic() - (self.down_since or time.monotonic())
        counts, self.counts = self.counts, Counter()
        for report in list(self.reporters):
            call_listener(report, counts)
        summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if n) or "nothing waiting"
        log.warning("database %s is back after %.1f s: %s", self.name, seconds, summary)
        self._up_event.set()
        for listener in list(self.on_up):
            call_listener(listener, seconds, counts)

    async def wait_up(self) -> None:
        await self._up_event.wait()

    async def _probe_until_up(self) -> None:
        delay = self._first_delay
        while not self.up:
            await asyncio.sleep(delay)
            if self.up:
                return
            try:
                await self._probe()
            except Exception as exc:
                if not is_outage(exc):
                    log.debug("database probe: %s", describe(exc))
                delay = min(delay * 2, self._max_delay)
                continue
            self.succeeded()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._prober
            self._prober = None


_RUNNING: set[asyncio.Task[object]] = set()  # listener coroutines, kept until they finish


def call_listener(listener: Callable[..., object], *args: object) -> None:
    """Call a listener; a coroutine it returns runs as a task (kept until it finishes)."""
    try:
        result = listener(*args)
    except Exception:
        log.exception("database health listener failed")
        return
    if asyncio.iscoroutine(result):
        task: asyncio.Task[object] = asyncio.ensure_future(result)
        _RUNNING.add(task)
        task.add_done_callback(_finished)


def _finished(task: asyncio.Task[object]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("database health listener failed", exc_info=task.exception())
