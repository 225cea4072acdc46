"""What a config reload would change: the checks a new file must pass to replace the running
one, and the differences between the two, as readable lines.

A file saved half-way parses as YAML more often than not: it just ends early. Its top-level
sections that come after the cut are missing, and with them (plugins come last) every plugin
would be switched off. So a reload refuses a file that lacks a top-level section the running
file has; removing a section on purpose means writing it empty (`group_sets: {}`).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config.errors import ConfigError, ConfigIssue, LineMap
from bot.config.models import BotConfig

log = logging.getLogger("qunbot.config")

# Changes that only a restart applies (a reload keeps the running values).
RESTART_ONLY = ("storage", "adapter", "bot", "timezone")

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Change:
    path: tuple[str, ...]
    old: Any = _MISSING
    new: Any = _MISSING

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def added(self) -> bool:
        return self.old is _MISSING

    @property
    def removed(self) -> bool:
        return self.new is _MISSING

    @property
    def plugin_off(self) -> bool:
        """A whole plugin section gone: the plugin is switched off."""
        return self.removed and len(self.path) == 2 and self.path[0] == "plugins"

    @property
    def broadcast_removed(self) -> bool:
        return self.removed and self.path[:3] == ("plugins", "broadcast", "broadcasts") and len(self.path) == 4

    @property
    def needs_restart(self) -> bool:
        return self.path[0] in RESTART_ONLY

    def __str__(self) -> str:
        if self.plugin_off:
            text = f"{self.key}: removed — the {self.path[1]} plugin is switched off"
        elif self.broadcast_removed:
            text = f"{self.key}: removed — broadcast {self.path[3]!r} will not be sent any more"
        elif self.removed:
            text = f"{self.key}: removed (was {_show(self.old)})"
        elif self.added:
            text = f"{self.key}: added ({_show(self.new)})"
        else:
            text = f"{self.key}: {_show(self.old)} → {_show(self.new)}"
        return text + (" [needs a restart]" if self.needs_restart else "")

    def for_chat(self, titles: dict[str, str]) -> str:
        """A loss (plugin off, broadcast removed) as the bot admins read it in chat; `titles`:
        plugin id → its Chinese title. The key path stays, in brackets, to find it in the file."""
        if self.plugin_off:
            return f"「{titles.get(self.path[1]) or self.path[1]}」功能已关闭（{self.key}）"
        if self.broadcast_removed:
            return f"定时群发「{self.path[3]}」已删除，不会再发送（{self.key}）"
        return str(self)


def _show(value: Any, limit: int = 80) -> str:
    text = "null" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_tree(config: BotConfig) -> dict[str, Any]:
    """The settings as plain data (secrets masked), plugin sections as written."""
    tree = config.model_dump(mode="json", exclude={"plugins"})
    tree["plugins"] = {name: section if section is not None else {} for name, section in config.plugins.items()}
    return tree


def diff(old: BotConfig, new: BotConfig) -> list[Change]:
    """Every setting that differs, deepest key first level: mappings are compared key by key,
    anything else (lists included) as a whole."""
    changes: list[Change] = []
    _walk((), config_tree(old), config_tree(new), changes)
    return changes


def _walk(path: tuple[str, ...], old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = (*path, str(key))
            if key not in new:
                out.append(Change(sub, old=old[key]))
            elif key not in old:
                out.append(Change(sub, new=new[key]))
            else:
                _walk(sub, old[key], new[key], out)
    elif old != new:
        out.append(Change(path, old, new))


def check_replacement(running: LineMap, new: LineMap) -> None:
    """ConfigError when the new file lacks top-level sections the running one has: it looks cut
    off (an editor or a copy caught half-way), and applying it would silently drop them."""
    present = set(new.top_level_keys())
    missing = [key for key in running.top_level_keys() if key not in present]
    if not missing:
        return
    last = max((new.line_of((key,)) or 1 for key in present), default=1)
    raise ConfigError(
        [
            ConfigIssue(
                new.file,
                last,
                key,
                "missing, but the running config has it: the file looks cut off (saved half-way?); "
                f"to remove the section on purpose, write it empty (`{key}: {{}}` or `{key}: []`)",
            )
            for key in missing
        ]
    )


def applied_snapshot(config_path: Path) -> Path:
    """Where the running bot keeps a copy of the file it last applied (at start and after each
    reload): `qunbot check-config --diff` compares against it."""
    return config_path.with_name(f".{config_path.name}.applied")


def save_applied(config_path: Path) -> None:
    """Copy the file just applied to its snapshot (blocking: call it in a thread). A config
    folder the bot may not write to costs only `check-config --diff`'s default."""
    try:
        snapshot = applied_snapshot(config_path)
        temporary = snapshot.with_name(snapshot.name + ".tmp")
        shutil.copyfile(config_path, temporary)
        os.replace(temporary, snapshot)
    except OSError as exc:
        log.warning("cannot keep a copy of the applied config (%s); check-config --diff needs --against", exc)
