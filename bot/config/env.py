"""The environment settings: one `QUNBOT_` name each, read here and nowhere else.

Names: QUNBOT_DATABASE_URL, QUNBOT_LOG, QUNBOT_CONFIG_POLL (README: "Environment settings").
Every command reads them through `load_config` (run, check-config, stats, spam-*, deadletter)
or `environment()` (logging, Alembic), so `qunbot stats` inside the container reads the same
database as the bot it sits beside. `qunbot simulate` takes no database from here: it replays
into a fresh database unless `--db` names one, never into the bot's own.

The Wechaty connection keeps the puppet library's own names (WECHATY_PUPPET_SERVICE_ENDPOINT,
WECHATY_PUPPET_SERVICE_TOKEN): the library and the gateway container read them too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config.errors import ConfigError, ConfigIssue
from bot.storage.settings import normalize_url

PREFIX = "QUNBOT_"
# The --db option of every command that reads the database.
DATABASE_URL_HELP = "Database URL (default: $QUNBOT_DATABASE_URL, else the config's storage.url)."
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Environment(BaseSettings):
    """QUNBOT_DATABASE_URL, QUNBOT_LOG, QUNBOT_CONFIG_POLL."""

    # An empty variable (`QUNBOT_LOG=` in a compose file) counts as not set.
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", case_sensitive=False, env_ignore_empty=True)

    # Replaces the config's storage.url (docker-compose keeps the database password here, next
    # to the puppet token, not in the mounted YAML).
    database_url: str | None = None
    # Log level of the bot's own loggers (default: INFO for `qunbot run`, WARNING otherwise).
    log: LogLevel | None = None
    # Look for config changes by reading the folder twice a second instead of waiting for the
    # file system's change events, which some mounts never deliver (Docker Desktop's shared
    # folders, network file systems). docker-compose.yml sets it.
    config_poll: bool = False

    @field_validator("database_url", mode="before")
    @classmethod
    def _usable_url(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            return normalize_url(value)
        except ValueError:
            # Never repeat the value: it holds the database password.
            raise ValueError(
                "not a usable database URL (expected postgresql://user:password@host:5432/db or sqlite:///path)"
            ) from None

    @field_validator("log", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip().upper()


def environment() -> Environment:
    """The environment settings now; ConfigError naming the variable when one is unusable."""
    try:
        return Environment()
    except ValidationError as err:
        issues = [
            ConfigIssue(
                "environment",
                None,
                PREFIX + str(e["loc"][0]).upper() if e["loc"] else PREFIX,
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in err.errors(include_url=False)
        ]
        raise ConfigError(issues) from None
