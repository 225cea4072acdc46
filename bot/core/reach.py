"""Targets the bot cannot reach: groups that relays and broadcasts name in the config but
that the bot is not in. A send there only fails (after retries), so they are reported up
front: by `qunbot check-config` (against the groups the database knows the bot is in), in
the start-up log (against the platform's list), and by 开始直播 (see the relay plugin)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config.models import BotConfig
    from bot.core.loader import PluginSettings


@dataclass(frozen=True, slots=True)
class Unreachable:
    plugin: str
    what: str  # e.g. 转发「讲座」
    group_id: str

    def __str__(self) -> str:
        return f"{self.what}: {self.group_id}"


def configured_targets(plugins: Iterable[PluginSettings], config: BotConfig) -> list[tuple[str, str, str]]:
    """(plugin, what, group id) for every group a plugin's config sends to; sets resolved."""
    out: list[tuple[str, str, str]] = []
    for settings in plugins:
        targets_of = settings.plugin.targets_of
        if targets_of is None:
            continue
        for what, selectors in targets_of(settings.default):
            out.extend((settings.name, what, gid) for gid in sorted(config.groups_in(selectors)))
    return out


def unreachable(plugins: Iterable[PluginSettings], config: BotConfig, present: Iterable[str]) -> list[Unreachable]:
    """The configured targets not among `present` (the groups the bot is in)."""
    inside = set(present)
    return [Unreachable(p, what, gid) for p, what, gid in configured_targets(plugins, config) if gid not in inside]


def describe(missing: Iterable[Unreachable]) -> list[str]:
    """One line per plugin feature: "转发「讲座」: g9, g10"."""
    by_what: dict[str, list[str]] = {}
    for m in missing:
        by_what.setdefault(m.what, []).append(m.group_id)
    return [f"{what}: {', '.join(gids)}" for what, gids in by_what.items()]
