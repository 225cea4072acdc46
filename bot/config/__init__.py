"""Loading and validating bot.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.env import environment
from bot.config.errors import ConfigError, ConfigIssue, LineMap, Loc
from bot.config.models import BotConfig
from bot.config.yamlio import load_yaml

__all__ = ["BotConfig", "ConfigError", "ConfigIssue", "LineMap", "load_config", "validate_core"]


def load_config(path: str | Path) -> tuple[BotConfig, LineMap]:
    """Parse and validate the core of a config file (plugin sections: see bot.core.loader),
    with the environment's settings applied (bot.config.env)."""
    data, lines = load_yaml(path)
    config, issues = validate_core(data, lines)
    if issues or config is None:
        raise ConfigError(issues)
    return config, lines


def validate_core(data: Any, lines: LineMap) -> tuple[BotConfig | None, list[ConfigIssue]]:
    """The core settings and every problem in them. With problems, the config returned (when
    one can be made) has the faulty settings left at their defaults: enough to go on checking
    the plugin sections, so that one bad setting does not hide the others."""
    if not isinstance(data, dict):
        return None, [lines.issue((), "the top level must be a mapping of settings")]
    if not data:
        # An editor caught mid-save, or a file emptied by mistake: running on nothing but
        # defaults would silently switch every plugin off.
        return None, [lines.issue((), "the file has no settings (it is empty or only comments)")]
    try:
        return _with_environment(BotConfig.model_validate(data), [])
    except ValidationError as err:
        issues = lines.from_validation(err)
        locs = [tuple(e["loc"]) for e in err.errors(include_url=False)]
    trimmed = data
    for _attempt in range(5):  # each pass drops what failed; a few passes settle any file
        trimmed = _without(trimmed, locs)
        if trimmed is None:
            return None, issues
        try:
            return _with_environment(BotConfig.model_validate(trimmed), issues)
        except ValidationError as err:
            locs = [tuple(e["loc"]) for e in err.errors(include_url=False)]
    return None, issues


def _with_environment(config: BotConfig, issues: list[ConfigIssue]) -> tuple[BotConfig, list[ConfigIssue]]:
    """The config with what the environment replaces (QUNBOT_DATABASE_URL → storage.url)."""
    try:
        env = environment()
    except ConfigError as err:
        return config, [*issues, *err.issues]
    if env.database_url:
        config.storage = config.storage.model_copy(update={"url": env.database_url})
    return config, issues


def _without(data: dict[str, Any], locs: list[Loc]) -> dict[str, Any] | None:
    """A copy of `data` without the values at `locs` (a missing key: without the entry that
    lacks it). None when a problem is about the whole file."""
    out = _copy(data)
    doomed: dict[tuple[int, str | int], tuple[Any, str | int]] = {}
    for loc in locs:
        parts = [p for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper()))]
        node: Any = out
        where: tuple[Any, str | int] | None = None
        for part in parts:
            present = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if not present:
                break
            where = (node, part)
            node = node[part]
        if where is None:
            return None
        doomed[(id(where[0]), where[1])] = where
    # List items go from the highest index down, so that the indexes still to delete stay right.
    for container, key in sorted(doomed.values(), key=lambda d: -d[1] if isinstance(d[1], int) else 0):
        del container[key]
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
