"""How fast the console adapter reads piped input (`cat chat.txt | qunbot run`).

The same 50,000 chat lines (50 groups, 20,000 members, varied text) are written into a real
pipe and read three ways in one run:
- the baseline: a plain loop over the pipe's lines (`for line in file`), doing nothing else;
- the console adapter alone: lines read, parsed into events and handed to a handler that
  does nothing (what the adapter itself costs);
- `qunbot run` as deployed: the adapter in front of the whole bot (every plugin of the
  default config, the recorder writing to SQLite, replies sent), from the first line until
  end of input has been handled and sent; the shutdown flush is timed on its own. Its
  baseline is the same bot fed the same lines parsed beforehand (no console at all): the
  ratio is what the console costs the bot, 1.0 meaning it keeps up completely.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from bench.__main__ import figure
from bot.adapters.console import ConsoleAdapter, console_world, parse_line
from bot.app import BotApp, load_everything
from bot.core.clock import SystemClock
from bot.core.events import Event, Member
from bot.runner import CONSOLE_OUTBOX

REPO = Path(__file__).resolve().parent.parent
N_LINES = 50_000
_WORDS = [
    "今天天气不错",
    "有人吗",
    "哈哈哈",
    "明天几点开会",
    "收到",
    "谢谢大家",
    "中午吃什么",
    "好的",
    "这个链接打不开",
    "周末一起去爬山吗",
]


def chat_lines(n: int = N_LINES) -> bytes:
    rng = random.Random(3)
    # Many members, each saying a few things: no anti-spam flood rule fires.
    return "".join(f"g{i % 50} m{i % 20_000}: {rng.choice(_WORDS)} {i}\n" for i in range(n)).encode()


def _pipe(data: bytes) -> TextIO:
    """The read end of a pipe a thread fills with `data` (as `cat file |` would)."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)

    threading.Thread(target=write, daemon=True).start()
    return os.fdopen(read_fd, "r", encoding="utf-8")


class _Discard(io.TextIOBase):
    """Where the bot's printed actions go: the figure is about reading, not the terminal."""

    def write(self, text: str) -> int:
        return len(text)


def plain_loop_rate(data: bytes) -> float:
    with _pipe(data) as source:
        started = time.perf_counter()
        count = sum(1 for _ in source)
        return count / (time.perf_counter() - started)


async def adapter_rate(data: bytes) -> float:
    config = load_everything(REPO / "config" / "bot.yaml").config
    clock = SystemClock(config.tz)
    console = ConsoleAdapter(console_world(Member("wxid_bot", "小助手"), []), clock, out=_Discard())

    async def nothing(event: Event) -> None:
        return None

    with _pipe(data) as source:
        started = time.perf_counter()
        lines = await console.run(nothing, source, idle=lambda: True)
        return lines / (time.perf_counter() - started)


async def bot_rate(data: bytes, *, through_console: bool = True) -> tuple[float, float]:
    """Lines/s through `qunbot run`'s console path, and the shutdown flush in seconds. Without
    the console, the same lines are parsed beforehand and handed straight to the bot: what the
    bot can take, the most the console could feed it."""
    loaded = load_everything(REPO / "config" / "bot.yaml")
    config = loaded.config
    clock = SystemClock(config.tz)
    world = console_world(Member(config.bot.id, config.bot.name), [(g.id, g.name) for g in config.groups])
    with tempfile.TemporaryDirectory() as tmp:
        console = ConsoleAdapter(world, clock, out=_Discard())
        app = BotApp(
            loaded,
            console.platform,
            clock,
            db_url=f"sqlite+aiosqlite:///{Path(tmp) / 'console.db'}",
            outbox_settings_override=CONSOLE_OUTBOX,
        )
        await app.start()
        assert app.services is not None and app.dispatcher is not None
        app.dispatcher.dedup_by_content = False
        outbox = app.services.outbox
        sender = asyncio.create_task(outbox.run())
        if through_console:
            with _pipe(data) as source:
                started = time.perf_counter()
                lines = await console.run(app.handle, source, idle=lambda: outbox.pending == 0)
        else:
            events = [parse_line(line, world, clock, i) for i, line in enumerate(data.decode().splitlines(), 1)]
            started = time.perf_counter()
            for event in events:
                await app.handle(event)  # type: ignore[arg-type]
            await outbox.drain()  # the replies sent, as the console run waits for them
            lines = len(events)
        rate = lines / (time.perf_counter() - started)
        sender.cancel()
        flush_started = time.perf_counter()
        await app.stop()
        return rate, time.perf_counter() - flush_started


async def figures() -> list[dict[str, object]]:
    data = chat_lines()
    baseline = plain_loop_rate(data)
    adapter = await adapter_rate(data)
    direct, _ = await bot_rate(data, through_console=False)
    through_bot, flush = await bot_rate(data)
    return [
        figure(
            "console read, adapter only (lines/s; baseline: plain loop over the pipe)",
            adapter,
            "lines/s",
            baseline,
            lines=N_LINES,
            target=10_000,
        ),
        figure(
            "console read through the whole bot (lines/s; baseline: the same events handed straight to the bot)",
            through_bot,
            "lines/s",
            direct,
            lines=N_LINES,
            shutdown_flush_s=round(flush, 3),
        ),
    ]
