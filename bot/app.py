"""The composition root: config → storage → platform → outbox → dispatcher → plugins, torn
down in reverse order. The one place where the pieces meet."""

from __future__ import annotations

import gc
import logging
import random
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.config import BotConfig, ConfigError, LineMap, load_config
from bot.core import manage
from bot.core.clock import Clock
from bot.core.context import Services
from bot.core.dispatcher import Dispatcher, Runtime
from bot.core.events import Event
from bot.core.groups import GroupDirectory
from bot.core.loader import PluginSettings, load_plugins
from bot.core.notify import Notifier
from bot.core.outbox import OutboundItem, Outbox
from bot.core.platform import Platform, SendResult
from bot.core.scheduler import Scheduler
from bot.storage.db import Database
from bot.storage.recorder import DROPPED, Recorder, data_path, default_dead_letter_path
from bot.storage.repo import PluginStateRepo
from bot.storage.settings import StorageSettings

log = logging.getLogger("qunbot.app")


@dataclass
class LoadedConfig:
    config: BotConfig
    lines: LineMap
    plugins: list[PluginSettings]
    path: Path | None = None


def load_everything(path: str | Path) -> LoadedConfig:
    """Validate the core config and every plugin section; ConfigError lists all problems."""
    config, lines = load_config(path)
    plugins = load_plugins(config, lines, builtin=[manage.plugin])
    return LoadedConfig(config, lines, plugins, Path(path))


class BotApp:
    def __init__(
        self,
        loaded: LoadedConfig,
        platform: Platform,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        db_url: str | None = None,
        outbox_settings_override: dict[str, float] | None = None,
    ) -> None:
        self.loaded = loaded
        self.platform = platform
        self.clock = clock
        self.rng = rng or random.Random()
        self.db_url = db_url
        self._outbox_override = outbox_settings_override or {}
        self.services: Services | None = None
        self.dispatcher: Dispatcher | None = None
        self.db: Database | None = None
        self.recorder: Recorder | None = None

    @property
    def config(self) -> BotConfig:
        return self.loaded.config

    async def start(self) -> None:
        sys.setswitchinterval(_SWITCH_INTERVAL)
        config = self.config
        storage = config.storage
        if self.db_url:
            # Validated, not copied: a plain sqlite:// or postgresql:// URL gets its async driver.
            storage = StorageSettings.model_validate({**storage.model_dump(), "url": self.db_url})
        self.db = await Database.open(storage)
        self.recorder = Recorder(self.db, config.tz, storage,
                                 dead_letter_path=default_dead_letter_path(storage, self.loaded.path))
        await self.recorder.start()
        outbox_settings = config.outbox.model_copy(update=self._outbox_override)
        outbox = Outbox(self.platform, self.clock, outbox_settings, self.rng, on_result=self._on_sent)
        groups = GroupDirectory(config, self.platform, self.clock)
        toggles = PluginStateRepo(self.db)
        groups.load_toggles(await toggles.load_all(), toggles.set)
        notifier = Notifier(config.notify, groups, outbox, self.clock)
        scheduler = Scheduler(self.clock)
        self.services = Services(
            config=config, clock=self.clock, platform=self.platform, outbox=outbox, groups=groups,
            notifier=notifier, scheduler=scheduler, rng=self.rng, db=self.db, recorder=self.recorder,
            data_file=lambda kind: data_path(storage, self.loaded.path, kind),
        )
        runtime = await Runtime.build(self.loaded.plugins, self.services)
        self.dispatcher = Dispatcher(self.services, runtime)
        self.services.dispatcher = self.dispatcher
        self._report_outages_to_admins(notifier)
        await self._replay_set_aside()
        _settle_heap()
        log.info(
            "qunbot started: %d plugins (%s), timezone %s, storage %s",
            len(runtime.hosts), ", ".join(runtime.hosts), config.timezone, self.db.dialect,
        )

    async def _replay_set_aside(self) -> None:
        """Events the database refused in an earlier run get another chance (the reason may
        be fixed by now, e.g. NUL that is cleaned out since); refused again, they go back."""
        assert self.recorder is not None
        try:
            replayed = await self.recorder.replay_dead_letter()
        except ValueError as err:
            log.error("set-aside events not replayed: %s (see `qunbot deadletter list`)", err)
            return
        if replayed:
            log.warning("replayed %d set-aside events from %s", replayed, self.recorder.dead_letter_path)

    def _report_outages_to_admins(self, notifier: Notifier) -> None:
        """Dropped chat messages are the one loss an outage can cause: the bot admins hear of
        it privately, when dropping starts and with the count when the database is back."""
        assert self.recorder is not None and self.db is not None
        health = self.db.health

        def dropping(_n: int) -> object:
            return notifier.notify(
                f"⚠️ 数据库 {health.name} 连不上（{health.reason}），内存缓冲已满：开始丢弃最早的聊天消息记录"
                "（签到、积分、入群退群记录不丢）。", source="storage")

        def back(seconds: float, counts: Counter[str]) -> object:
            dropped = counts[DROPPED]
            if not dropped:
                return None
            return notifier.notify(
                f"✅ 数据库已恢复（中断 {seconds:.0f} 秒）。期间缓冲区满，丢弃了 {dropped} 条最早的聊天消息记录。",
                source="storage")

        self.recorder.on_drop = dropping
        health.on_up.append(back)

    async def handle(self, event: Event) -> None:
        assert self.dispatcher is not None, "start() first"
        await self.dispatcher.dispatch(event)

    async def _on_sent(self, item: OutboundItem, result: SendResult | None, error: Exception | None) -> None:
        if self.recorder is None or error is not None or result is None or not result.ok:
            return
        if item.kind == "say":
            self.recorder.record_outbound(item.target, str(item.payload.get("text", "")), self.clock.now(),
                                          message_id=result.message_id)

    async def reload(self, path: str | Path | None = None) -> bool:
        """Apply a changed config file without restart; keep the last good one on error."""
        assert self.services is not None and self.dispatcher is not None
        path = Path(path or self.loaded.path or "")
        try:
            loaded = load_everything(path)
        except ConfigError as err:
            log.error("config reload rejected, keeping the last good config:\n%s", err)
            return False
        if _restart_only(self.config, loaded.config):
            log.warning("storage/adapter/bot identity changes need a restart; other changes applied")
        try:
            runtime = await Runtime.build(loaded.plugins, self._services_for(loaded.config))
        except Exception:
            log.exception("config reload failed while building plugins; keeping the last good config")
            return False
        old = self.dispatcher.swap(runtime)
        self.loaded = loaded
        await old.shutdown()
        _settle_heap()
        log.info("config reloaded from %s", path)
        return True

    def _services_for(self, config: BotConfig) -> Services:
        assert self.services is not None
        services = self.services
        services.config = config
        services.groups.apply_config(config)
        services.notifier.settings = config.notify
        return services

    async def stop(self, *, drain_seconds: float = 10.0) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.runtime.shutdown()
        if self.services is not None:
            await self.services.scheduler.flush_deferred()
            await self.services.outbox.drain(self.clock.now() + timedelta(seconds=drain_seconds))
            await self.services.notifier.aclose()
        if self.recorder is not None:
            # An unreachable database gets the drain time to come back; then what is still
            # unwritten is set aside on disk (replayed at the next start), not lost.
            await self.recorder.stop(patience=drain_seconds)
        if self.db is not None:
            await self.db.close()


# How long a thread waiting for the GIL waits before it asks for it. A waiting thread only
# asks when its wait times out, and a busy event loop releases the GIL at every turn (its
# poll, about every millisecond during a burst) and takes it straight back, which wakes the
# waiter and restarts its wait. With CPython's default 5 ms the database threads (aiosqlite's)
# kept missing it: round trips of up to several seconds. At 1 ms a hand-over still took 5-20 ms
# and the recorder ended a 100,000-message burst 40,000-66,000 events behind; at 0.5 ms the
# wait ends before the next turn, and it ends 4,000-14,000 behind (same throughput).
_SWITCH_INTERVAL = 0.0005


def _settle_heap() -> None:
    """Move what loading built (compiled rules, config models: long-lived by nature) out of
    the cyclic GC's sight, so collections on the message path stay short."""
    gc.collect()
    gc.freeze()


def _restart_only(old: BotConfig, new: BotConfig) -> bool:
    return (old.storage, old.adapter, old.bot, old.timezone) != (new.storage, new.adapter, new.bot, new.timezone)
