"""The composition root: config → storage → platform → outbox → dispatcher → plugins, torn
down in reverse order. The one place where the pieces meet."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging
import random
import sys
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from bot.cluster import ClusterDuty
from bot.cluster.balance import Standing
from bot.cluster.bus import PgBus
from bot.cluster.catchup import CatchUp
from bot.cluster.handoff import ClusterHandoff
from bot.config import BotConfig, ConfigError, ConfigIssue, LineMap, validate_core
from bot.config.diff import check_replacement, diff, save_applied
from bot.config.yamlio import load_yaml
from bot.core import manage, reach
from bot.core.bus import Topic
from bot.core.clock import Clock
from bot.core.context import Services
from bot.core.dispatcher import Dispatcher, Runtime
from bot.core.events import Event
from bot.core.groups import GroupDirectory
from bot.core.health import AccountHealth, HealthReport
from bot.core.heap import return_freed_memory, share_one_arena
from bot.core.loader import PluginSettings, load_plugins
from bot.core.members import JOB_ID as MEMBER_LISTS_JOB
from bot.core.members import REFRESH_EVERY, MemberLists
from bot.core.notify import Notifier
from bot.core.outbox import OutboundItem, Outbox
from bot.core.platform import Platform, SendResult
from bot.core.scheduler import Scheduler, interval_trigger
from bot.storage.db import Database
from bot.storage.recorder import DROPPED, Recorder, data_path, default_dead_letter_path
from bot.storage.repo import PluginStateRepo
from bot.storage.settings import StorageSettings

log = logging.getLogger("qunbot.app")

T = TypeVar("T")


class ConfigReloaded(BaseModel):
    """Another process applied a changed config file (several accounts, `bot.cluster.bus`)."""

    account: str
    digest: str  # sha256 of the file it applied


CONFIG_RELOADED = Topic("config_reloaded", ConfigReloaded)


class SwitchesChanged(BaseModel):
    """An admin switched a plugin on or off in a group (开启/关闭) in another process."""

    group_id: str
    plugin: str


SWITCHES_CHANGED = Topic("plugin_switches_changed", SwitchesChanged)


@dataclass
class LoadedConfig:
    config: BotConfig
    lines: LineMap
    plugins: list[PluginSettings]
    path: Path | None = None
    web_default: bool = False
    # Doubts that do not stop the bot (a group id the config does not list): shown by
    # check-config and logged at start and at each reload.
    warnings: list[ConfigIssue] = field(default_factory=list)


def load_everything(path: str | Path, *, web_default: bool = False) -> LoadedConfig:
    """Validate the core config and every plugin section; ConfigError lists every problem in
    the file, in line order (a bad core setting does not hide the plugin sections' problems).
    `web_default`: serve the web console with default settings when the file has no `web:`
    section (`qunbot web`)."""
    data, lines = load_yaml(path)
    config, issues = validate_core(data, lines)
    if config is None:
        raise ConfigError(issues)
    if web_default and config.web is None:
        from bot.web.settings import WebSettings

        config.web = WebSettings()
    builtin = [manage.plugin]
    if config.web is not None:
        from bot.web import chat as web_chat  # the `后台` command: no web framework needed

        builtin.append(web_chat.plugin)
    warnings: list[ConfigIssue] = []
    try:
        plugins = load_plugins(config, lines, builtin=builtin, warnings=warnings)
    except ConfigError as err:
        issues.extend(err.issues)
    if issues:
        raise ConfigError(sorted([*issues, *warnings], key=lambda issue: issue.line or 0))
    return LoadedConfig(config, lines, plugins, Path(path), web_default, warnings)


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
        virtual_leases: bool = False,
    ) -> None:
        self.loaded = loaded
        self.platform = platform
        self.clock = clock
        self.rng = rng or random.Random()
        self.db_url = db_url
        self._outbox_override = outbox_settings_override or {}
        # The simulator's several accounts: the cluster leases run on the (virtual) clock and
        # the simulator drives the rounds; otherwise they run on real time in the background.
        self._virtual_leases = virtual_leases and clock.virtual
        self.services: Services | None = None
        self.dispatcher: Dispatcher | None = None
        self.db: Database | None = None
        self.recorder: Recorder | None = None
        self.cluster: ClusterDuty | None = None
        self.bus: PgBus | None = None
        self.handoff: ClusterHandoff | None = None
        self.catch_up: CatchUp | None = None
        # sha256 of the config file last applied: a notice that another process reloaded
        # makes this one re-read its file, and reload only if it differs.
        self._applied_digest: str | None = None
        self._toggles: PluginStateRepo | None = None
        # Events being dispatched right now: shutdown waits for them before it flushes.
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def config(self) -> BotConfig:
        return self.loaded.config

    async def start(self) -> None:
        sys.setswitchinterval(_SWITCH_INTERVAL)
        share_one_arena()  # before the database's and the model's threads start
        config = self.config
        storage = config.storage
        if self.db_url:
            # Validated, not copied: a plain sqlite:// or postgresql:// URL gets its async driver.
            storage = StorageSettings.model_validate({**storage.model_dump(), "url": self.db_url})
        self.db = await Database.open(storage)
        self.recorder = Recorder(
            self.db, config.tz, storage, dead_letter_path=default_dead_letter_path(storage, self.loaded.path)
        )
        await self.recorder.start()
        outbox_settings = config.outbox.model_copy(update=self._outbox_override)
        outbox = Outbox(self.platform, self.clock, outbox_settings, self.rng, on_result=self._on_sent)
        groups = GroupDirectory(config, self.platform, self.clock)
        toggles = self._toggles = PluginStateRepo(self.db)
        groups.load_toggles(await toggles.load_all(), self._save_switch)
        notifier = Notifier(config.notify, groups, outbox, self.clock)
        outbox.on_budget = functools.partial(_budget_alert, notifier)
        scheduler = Scheduler(self.clock)
        health = self.db.health
        member_lists = MemberLists(self.platform, self.clock, self.recorder.record, storage_up=lambda: health.up)
        # Hourly from start-up; the first read is the runner's (`refresh_members`), once the
        # platform can answer (the Wechaty account logs in after the app starts).
        scheduler.add(
            MEMBER_LISTS_JOB,
            interval_trigger(config.tz, self.clock.now() + REFRESH_EVERY, seconds=REFRESH_EVERY.total_seconds()),
            member_lists.scheduled,
            grace=REFRESH_EVERY,
        )
        self.services = Services(
            config=config,
            clock=self.clock,
            platform=self.platform,
            outbox=outbox,
            groups=groups,
            notifier=notifier,
            scheduler=scheduler,
            rng=self.rng,
            db=self.db,
            recorder=self.recorder,
            member_lists=member_lists,
            data_file=lambda kind: data_path(storage, self.loaded.path, kind),
        )
        self._watch_health(outbox, notifier)
        if config.cluster.enabled:
            await self._join_cluster(outbox)
            self._applied_digest = await asyncio.to_thread(_digest, self.loaded.path)
        runtime = await Runtime.build(self.loaded.plugins, self.services)
        self.dispatcher = Dispatcher(self.services, runtime)
        self.services.dispatcher = self.dispatcher
        if self.catch_up is not None:
            self.catch_up.bind(self.dispatcher.redo)
        self._report_outages_to_admins(notifier)
        await self._replay_set_aside()
        await self._report_unreachable(groups)
        _settle_heap()
        log.info(
            "qunbot started: %d plugins (%s), timezone %s, storage %s",
            len(runtime.hosts),
            ", ".join(runtime.hosts),
            config.timezone,
            self.db.dialect,
        )

    def _watch_health(self, outbox: Outbox, notifier: Notifier) -> None:
        """Rate limits, bans and disconnects of this account: the outbox reports every call;
        trouble is logged and told to the bot admins (and, with several accounts, published
        so that the duties move to healthy accounts)."""
        assert self.services is not None
        platform = self.platform
        health = AccountHealth(
            platform.bot.id,
            self.config.cluster.health,
            self.clock,
            connected=lambda: getattr(platform, "connected", None),
        )
        outbox.on_attempt = health.observe
        per_hour = outbox.settings.per_hour

        def figures() -> dict[str, Any]:
            cluster = self.cluster
            return {
                "on_duty": len(cluster.duties) if cluster is not None else None,
                "budget_left": outbox.budget_left(),
                "budget": per_hour,
            }

        def told(trouble: str | None, report: HealthReport) -> None:
            text = (
                f"⚠️ 账号 {report.account} 异常：{trouble}。" + ("其值班的群将交给其他账号。" if self.cluster else "")
                if trouble
                else f"✅ 账号 {report.account} 已恢复正常。"
            )
            task = asyncio.create_task(notifier.notify(text, source="health"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        health.extra = figures
        health.on_change.append(told)
        self.services.health = health

    async def _join_cluster(self, outbox: Outbox) -> None:
        """Several accounts on one PostgreSQL: lease this account, take the duty where it is free,
        and let the dispatcher and the outbox consult it (bot.cluster). With virtual leases (the
        simulator's several accounts) the leases run on it too, and the simulator drives the
        rounds (`tick`)."""
        assert self.db is not None and self.services is not None
        clock = self.clock if self._virtual_leases else None
        cluster = ClusterDuty(self.db.engine, self.platform.bot.id, self.config.cluster, clock=clock)
        health = self.services.health
        per_hour = outbox.settings.per_hour
        cluster.standing = lambda: Standing(
            outbox.budget_left(), per_hour, health.trouble() if health is not None else None
        )
        # The gate the core sees: the duty, plus answering what a dead account left unanswered.
        gate = self.catch_up = CatchUp(self.db.engine, cluster, self.config.cluster)
        try:
            groups = [g.id for g in await self.platform.groups()]
        except Exception as exc:  # learnt from the groups' events instead
            log.warning("cluster: could not list this account's groups (%s); learning them from events", exc)
            groups = []
        await cluster.start(groups, renew_in_background=clock is None)
        gate.start()
        self.cluster = cluster
        outbox.duty = gate
        self.services.duty = gate
        # Before the plugins load: a change another process makes while they read the database
        # is then heard, not missed.
        bus = self.bus = PgBus(self.db.engine, origin=cluster.instance)
        await bus.start()
        bus.subscribe(CONFIG_RELOADED, self._on_config_reloaded, on_resync=self._reload_if_changed)
        bus.subscribe(SWITCHES_CHANGED, lambda _notice: self._reload_switches(), on_resync=self._reload_switches)
        handoff = self.handoff = ClusterHandoff(self.db.engine, cluster, outbox, bus)
        await handoff.start()
        self.services.bus = bus
        self.services.handoff = handoff

    async def _save_switch(self, group_id: str, plugin: str, enabled: bool, by: str, at: datetime) -> None:
        assert self._toggles is not None
        await self._toggles.set(group_id, plugin, enabled, by, at)
        if self.bus is not None:
            await self.bus.publish(SWITCHES_CHANGED, SwitchesChanged(group_id=group_id, plugin=plugin))

    async def _reload_switches(self) -> None:
        """Another process switched a plugin on or off somewhere: read the switches again."""
        assert self._toggles is not None and self.services is not None
        self.services.groups.load_toggles(await self._toggles.load_all(), self._save_switch)

    async def _on_config_reloaded(self, notice: ConfigReloaded) -> None:
        log.info("config: account %s reloaded its config; checking ours", notice.account)
        await self._reload_if_changed()

    async def _reload_if_changed(self) -> None:
        """Re-read our own config file and apply it if it changed since we last applied it
        (processes that share one file, or get it copied to each machine, pick a change up at
        once, whether or not this machine's file watcher saw it)."""
        path = self.loaded.path
        if path is None or await asyncio.to_thread(_digest, path) == self._applied_digest:
            return
        await self.reload(path, announce=False)

    async def refresh_members(self) -> None:
        """Read every group's member list now (start-up, log-in): members who were there
        before the bot are recorded, and departures nobody announced are noticed."""
        assert self.services is not None and self.services.member_lists is not None, "start() first"
        await self.services.member_lists.refresh()

    async def _report_unreachable(self, groups: GroupDirectory) -> None:
        """Relay and broadcast targets the bot is not in, when the platform can say which
        groups it is in: logged once here (sends there are skipped, not retried)."""
        present = await groups.present()
        if present is None:
            return
        missing = reach.unreachable(self.loaded.plugins, self.config, present)
        if missing:
            log.warning(
                "the bot is not in %d configured target group(s); nothing is sent there:\n  %s",
                len({m.group_id for m in missing}),
                "\n  ".join(reach.describe(missing)),
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
                "（签到、积分、入群退群记录不丢）。",
                source="storage",
            )

        def back(seconds: float, counts: Counter[str]) -> object:
            dropped = counts[DROPPED]
            if not dropped:
                return None
            return notifier.notify(
                f"✅ 数据库已恢复（中断 {seconds:.0f} 秒）。期间缓冲区满，丢弃了 {dropped} 条最早的聊天消息记录。",
                source="storage",
            )

        self.recorder.on_drop = dropping
        health.on_up.append(back)

    async def handle(self, event: Event) -> None:
        assert self.dispatcher is not None, "start() first"
        self._in_flight += 1
        self._idle.clear()
        try:
            await self.dispatcher.dispatch(event)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _on_sent(self, item: OutboundItem, result: SendResult | None, error: Exception | None) -> None:
        if self.recorder is None or error is not None or result is None or not result.ok:
            return
        if item.kind == "say":
            self.recorder.record_outbound(
                item.target, str(item.payload.get("text", "")), self.clock.now(), message_id=result.message_id
            )

    async def reload(self, path: str | Path | None = None, *, announce: bool = True) -> bool:
        """Apply a changed config file without restart; keep the last good one on error.
        A refused reload, and one that switches plugins off or removes broadcasts, is told
        to the bot admins (privately, through the notifier), not only logged. With several
        accounts, a reload applied here is `announce`d to the other processes (not when it was
        itself caused by such a notice)."""
        assert self.services is not None and self.dispatcher is not None
        path = Path(path or self.loaded.path or "")
        digest = await asyncio.to_thread(_digest, path)
        try:
            loaded = load_everything(path, web_default=self.loaded.web_default)
            check_replacement(self.loaded.lines, loaded.lines)
        except ConfigError as err:
            log.error("config reload rejected, keeping the last good config:\n%s", err)
            await self._tell_admins(f"⚠️ 配置文件没有重新加载，仍在使用上一个正确的配置。原因：\n{err}")
            return False
        for warning in loaded.warnings:
            log.warning("config: %s", warning)
        changes = diff(self.config, loaded.config)
        if any(change.needs_restart for change in changes):
            log.warning("storage/adapter/bot identity changes need a restart; other changes applied")
        try:
            runtime = await Runtime.build(loaded.plugins, self._services_for(loaded.config))
        except Exception as exc:
            log.exception("config reload failed while building plugins; keeping the last good config")
            self._services_for(self.config)  # what the failed build was handed goes back
            await self._tell_admins(
                f"⚠️ 配置文件没有重新加载（启动插件时出错：{type(exc).__name__}: {exc}），仍在使用上一个正确的配置。"
            )
            return False
        old = self.dispatcher.swap(runtime)
        titles = {settings.name: settings.plugin.title for settings in self.loaded.plugins}  # the switched-off too
        self.loaded = loaded
        await old.shutdown()
        _settle_heap()
        await asyncio.to_thread(save_applied, path)
        log.info("config reloaded from %s%s", path, "".join(f"\n  {change}" for change in changes))
        self._applied_digest = digest
        if announce and self.bus is not None and digest is not None:
            await self.bus.publish(CONFIG_RELOADED, ConfigReloaded(account=self.platform.bot.id, digest=digest))
        losses = [change for change in changes if change.plugin_off or change.broadcast_removed]
        if losses:
            await self._tell_admins(
                "ℹ️ 配置已重新加载，以下功能已关闭或删除：\n" + "\n".join(f"- {c.for_chat(titles)}" for c in losses)
            )
        return True

    async def _tell_admins(self, text: str) -> None:
        assert self.services is not None
        try:
            await self.services.notifier.notify(text, source="config reload")
        except Exception:
            log.exception("could not tell the bot admins about the config reload")

    def _services_for(self, config: BotConfig) -> Services:
        assert self.services is not None
        services = self.services
        services.config = config
        services.groups.apply_config(config)
        services.notifier.settings = config.notify
        return services

    async def stop(self, *, drain_seconds: float = 10.0) -> bool:
        """Tear down in reverse order: let the events being dispatched finish, run the plugins'
        shutdown hooks (activity points, the anti-spam audit), send what is queued (up to
        `drain_seconds`), flush the recorder, close the database. Every step runs whatever
        the one before did; returns False (after logging what) when something held in memory
        could not be written, so that `qunbot run` exits non-zero."""
        failed: list[str] = []
        if self._in_flight:
            try:
                async with asyncio.timeout(drain_seconds):
                    await self._idle.wait()
            except TimeoutError:
                log.error("shutdown: %d event(s) still being handled after %g s", self._in_flight, drain_seconds)
        if self.catch_up is not None:
            await _step("catch-up", failed, self.catch_up.settle())
        if self.dispatcher is not None:
            failed += [f"plugin {name}" for name in await self.dispatcher.runtime.shutdown()]
        if self.services is not None:
            services = self.services
            await _step("deferred jobs", failed, services.scheduler.flush_deferred())
            await _step("outbox", failed, services.outbox.drain(self.clock.now() + timedelta(seconds=drain_seconds)))
            await _step("notifier", failed, services.notifier.aclose())
        if self.handoff is not None:
            await _step("cluster hand-overs", failed, self.handoff.stop())
        if self.bus is not None:
            await _step("cluster notices", failed, self.bus.stop())
        if self.catch_up is not None:
            # After the drain, before handing over: the next account must not answer what we did.
            await _step("handled marks", failed, self.catch_up.stop())
        if self.cluster is not None:
            # After the drain: what was queued went out under our duty; then hand over.
            await self.cluster.stop()
        # An unreachable database gets the drain time to come back; then what is still
        # unwritten is set aside on disk (replayed at the next start), not lost.
        if (
            self.recorder is not None
            and await _step("recorder", failed, self.recorder.stop(patience=drain_seconds)) is False
        ):
            failed.append("recorder")
        if self.db is not None:
            await _step("database", failed, self.db.close())
        if failed:
            log.error("shutdown: could not write everything: %s failed (see above)", ", ".join(failed))
        return not failed


def _digest(path: Path | None) -> str | None:
    """sha256 of a file's bytes (blocking: call it in a thread); None when it cannot be read."""
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


async def _budget_alert(notifier: Notifier, used: int, budget: int) -> None:
    await notifier.notify(
        f"⚠️ 发送量提醒：本账号最近一小时已发送 {used} 条消息，每小时上限 {budget} 条（outbox.per_hour）。"
        "到达上限后消息会排队等待，请检查是否有群发、直播同步或刷屏回复。",
        source="outbox",
    )


async def _step(what: str, failed: list[str], work: Awaitable[T]) -> T | None:
    """Await one shutdown step; a failure is logged and noted, and the next steps still run."""
    try:
        return await work
    except Exception:
        log.exception("shutdown: %s failed", what)
        failed.append(what)
        return None


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
    the cyclic GC's sight, so collections on the message path stay short, and give what the
    loading freed back to the OS."""
    gc.collect()
    gc.freeze()
    return_freed_memory()
