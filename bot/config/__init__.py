"""Loading and validating bot.yaml."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bot.config.errors import ConfigError, ConfigIssue, LineMap
from bot.config.models import BotConfig
from bot.config.yamlio import load_yaml

__all__ = ["BotConfig", "ConfigError", "ConfigIssue", "LineMap", "load_config"]


def load_config(path: str | Path) -> tuple[BotConfig, LineMap]:
    """Parse and validate the core of a config file (plugin sections: see bot.core.loader)."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([lines.issue((), "the top level must be a mapping of settings")])
    if not data:
        # An editor caught mid-save, or a file emptied by mistake: running on nothing but
        # defaults would silently switch every plugin off.
        raise ConfigError([lines.issue((), "the file has no settings (it is empty or only comments)")])
    try:
        return BotConfig.model_validate(data), lines
    except ValidationError as err:
        raise ConfigError(lines.from_validation(err)) from None
