"""Multi-group management (多群管理): which groups the bot manages, their roles, and
which plugins are switched on in each (config plus admin toggles kept in the database)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.core.clock import Clock
from bot.core.platform import GroupInfo, Platform
from bot.core.plugin import Permission

if TYPE_CHECKING:
    from bot.config.models import BotConfig
    from bot.core.loader import PluginSettings

log = logging.getLogger("qunbot.groups")

# Roles change rarely; re-reading them per message would hammer the platform.
INFO_TTL = timedelta(minutes=5)
# The list of groups the bot is in: read again at most this often (a relay asks per message).
PRESENT_TTL = timedelta(minutes=1)

ToggleSaver = Callable[[str, str, bool, str, datetime], Awaitable[None]]


@dataclass(slots=True)
class _Cached:
    info: GroupInfo | None
    fetched_at: datetime


class GroupDirectory:
    def __init__(self, config: BotConfig, platform: Platform, clock: Clock) -> None:
        self._platform = platform
        self._clock = clock
        self._info: dict[str, _Cached] = {}
        self._toggles: dict[tuple[str, str], bool] = {}
        self._save_toggle: ToggleSaver | None = None
        self._present: tuple[frozenset[str] | None, datetime] | None = None
        # Bumped whenever which plugin runs where may have changed (dispatch caches key on it).
        self.version = 0
        self.apply_config(config)

    def apply_config(self, config: BotConfig) -> None:
        self.config = config
        self._bot_admins = frozenset(config.bot_admins)
        self._extra_admins = {g.id: frozenset(g.admins) for g in config.groups}
        self._names = {g.id: g.name for g in config.groups if g.name}
        self.version += 1

    def load_toggles(self, toggles: dict[tuple[str, str], bool], saver: ToggleSaver | None) -> None:
        self._toggles = dict(toggles)
        self._save_toggle = saver
        self.version += 1

    # --- roles ----------------------------------------------------------------------
    async def info(self, group_id: str, *, fresh: bool = False) -> GroupInfo | None:
        now = self._clock.now()
        cached = self._info.get(group_id)
        if cached is None or fresh or now - cached.fetched_at > INFO_TTL:
            try:
                info = await self._platform.group_info(group_id)
            except Exception:
                log.exception("could not read group %s; using last known roles", group_id)
                info = cached.info if cached else None
            cached = _Cached(info, now)
            self._info[group_id] = cached
        return cached.info

    def forget(self, group_id: str) -> None:
        self._info.pop(group_id, None)
        self._present = None

    async def present(self, *, fresh: bool = False) -> frozenset[str] | None:
        """The groups the bot is in, or None when the platform cannot say: the call failed,
        or it lists none (more likely "not loaded yet", just logged in, than "in none")."""
        now = self._clock.now()
        if self._present is not None and not fresh and now - self._present[1] <= PRESENT_TTL:
            return self._present[0]
        try:
            groups: frozenset[str] | None = frozenset(info.id for info in await self._platform.groups()) or None
        except Exception:
            log.warning("could not list the bot's groups", exc_info=True)
            groups = None
        self._present = (groups, now)
        return groups

    def is_bot_admin(self, member_id: str) -> bool:
        return member_id in self._bot_admins

    async def permission(self, member_id: str, group_id: str | None) -> Permission:
        if member_id in self._bot_admins:
            return Permission.BOT_ADMIN
        if group_id is None:
            return Permission.MEMBER
        if member_id in self._extra_admins.get(group_id, ()):
            return Permission.GROUP_ADMIN
        info = await self.info(group_id)
        if info is not None and info.is_admin(member_id):
            return Permission.GROUP_ADMIN
        return Permission.MEMBER

    async def admins_of(self, group_id: str) -> list[str]:
        """Owner, platform admins and configured admins of a group (not the bot admins)."""
        info = await self.info(group_id)
        out: list[str] = []
        if info is not None:
            if info.owner_id:
                out.append(info.owner_id)
            out.extend(sorted(info.admin_ids - {info.owner_id}))
        out.extend(a for a in sorted(self._extra_admins.get(group_id, ())) if a not in out)
        bot_id = self._platform.bot.id
        return [a for a in out if a != bot_id]

    def display_name(self, group_id: str, topic: str = "") -> str:
        if topic:
            return topic
        if group_id in self._names:
            return self._names[group_id]
        cached = self._info.get(group_id)
        if cached is not None and cached.info is not None and cached.info.topic:
            return cached.info.topic
        return group_id

    # --- plugin switches ------------------------------------------------------------
    def plugin_enabled(self, settings: PluginSettings, group_id: str | None) -> bool:
        if group_id is None:
            return True
        toggled = self._toggles.get((group_id, settings.name))
        if toggled is not None:
            return toggled
        return settings.enabled_in(group_id)

    async def set_plugin_enabled(self, group_id: str, plugin: str, enabled: bool, by: str) -> None:
        self._toggles[(group_id, plugin)] = enabled
        self.version += 1
        if self._save_toggle is not None:
            await self._save_toggle(group_id, plugin, enabled, by, self._clock.now())
