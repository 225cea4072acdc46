"""`qunbot run`: start the bot with the adapter named in the config and keep it running,
with config hot reload (file change or SIGHUP) and a clean shutdown (SIGINT/SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TextIO

from bot.adapters.console import ConsoleAdapter, console_world
from bot.app import BotApp, LoadedConfig, load_everything
from bot.config.diff import save_applied
from bot.core.clock import SystemClock
from bot.core.events import Member

log = logging.getLogger("qunbot.run")

# The console has no account to protect from bans, so it sends without pacing.
CONSOLE_OUTBOX = {
    "min_gap": 0.0,
    "jitter": 0.0,
    "per_group_per_minute": 100_000,
    "per_minute": 100_000,
    "moderation_gap": 0.0,
    "moderation_jitter": 0.0,
    "moderation_per_hour": 100_000,
    "per_hour": 1_000_000,
    # A failed send is retried after 1 s, then 2 s (not a minute, then two): a piped run
    # whose last lines failed to send ends seconds after its input, not minutes.
    "backoff_initial": 1.0,
    "backoff_max": 5.0,
}


async def run_bot(config_path: str | Path, *, source: TextIO | None = None, web: bool = False) -> int:
    """`web`: serve the web console even without a `web:` section (`qunbot web`)."""
    loaded = load_everything(config_path, web_default=web)
    for warning in loaded.warnings:
        log.warning("config: %s", warning)
    adapter = loaded.config.adapter
    if adapter == "console":
        return await _run_console(loaded, source or sys.stdin)
    if adapter == "wechaty":
        try:
            from bot.adapters.wechaty import run_wechaty  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SystemExit(f"the wechaty adapter is not available: {exc} (pip install 'qunbot[wechaty]')") from None
        return int(await run_wechaty(loaded))
    raise SystemExit(f"unknown adapter {adapter!r}")


async def _run_console(loaded: LoadedConfig, source: TextIO) -> int:
    config = loaded.config
    clock = SystemClock(config.tz)
    groups = [(g.id, g.name or g.id) for g in config.groups] + [(g, g) for g in config.console.groups]
    world = console_world(Member(config.bot.id, config.bot.name), groups)
    console = ConsoleAdapter(world, clock)
    app = BotApp(loaded, console.platform, clock, outbox_settings_override=CONSOLE_OUTBOX)
    await app.start()
    await app.refresh_members()
    assert app.services is not None and app.dispatcher is not None
    app.dispatcher.dedup_by_content = False  # console ids are unique; a repeated line is a new message
    services = app.services
    stop = asyncio.Event()
    signals = stop_on_signals(stop)
    background = start_background(app)
    ok = False
    try:
        lines = await console.run(app.handle, source, idle=lambda: services.outbox.pending == 0, stop=stop)
        if stop.is_set():
            log.info("console: stopping after %d lines read", lines)
    finally:
        await stop_background(background)
        ok = await app.stop()
        remove_signal_handlers(signals)
    return 0 if ok else 1


def stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM set `stop` (the adapter stops reading, the app drains and flushes).
    A second signal is not caught: it ends the process the usual way, for when the flush
    itself hangs."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []

    def first(sig: signal.Signals) -> None:
        log.info("%s: shutting down (send it again to stop at once)", sig.name)
        remove_signal_handlers(handled)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows / not the main thread
            loop.add_signal_handler(sig, first, sig)
            handled.append(sig)
    return handled


def remove_signal_handlers(handled: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for sig in handled:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
    handled.clear()


def start_background(app: BotApp) -> list[asyncio.Task[None]]:
    """The outbox worker, the scheduler, config hot reload, and the web console when configured."""
    assert app.services is not None
    tasks = [
        asyncio.create_task(app.services.outbox.run(), name="outbox"),
        asyncio.create_task(app.services.scheduler.run(), name="scheduler"),
    ]
    if app.config.web is not None:
        tasks.append(asyncio.create_task(_serve_web(app), name="web"))
    if app.loaded.path is not None:
        tasks.append(asyncio.create_task(watch_config(app, app.loaded.path), name="config-watch"))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / not main thread
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(app.reload()))
    return tasks


async def _serve_web(app: BotApp) -> None:
    try:
        from bot.web.server import serve
    except ImportError as exc:
        log.error("web console not started: %s (pip install 'qunbot[web]')", exc)
        return
    await serve(app, asyncio.Event())  # runs until cancelled with the other background tasks


async def stop_background(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def watch_config(app: BotApp, path: Path, *, debounce_ms: int = 500) -> None:
    """Reload when the config file changes. The folder is watched, not the file: editors save
    by writing a new file and renaming it over the old one, and a watch on the file itself
    follows the old one (now gone) and never fires again."""
    from watchfiles import awatch

    from bot.config.env import environment

    polling = environment().config_poll  # checked when the bot started: no error here
    name = path.name
    await asyncio.to_thread(save_applied, path)  # what `check-config --diff` compares against

    def ours(_change: object, changed: str) -> bool:
        return Path(changed).name == name

    try:
        async for _changes in awatch(
            path.parent,
            watch_filter=ours,
            debounce=debounce_ms,
            recursive=False,
            force_polling=polling or None,  # None: watchfiles decides (it polls on WSL)
            poll_delay_ms=500,
        ):
            if await asyncio.to_thread(path.exists):  # removed (mid-rename): wait for it to be back
                await app.reload(path)
    except FileNotFoundError:
        log.warning("config folder %s is not there to watch; reload with SIGHUP", path.parent)
