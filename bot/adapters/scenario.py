"""The scenario file of `qunbot simulate` (a stable interface, DESIGN §7): its pydantic models,
the step kinds and their keys, and the loader that reports problems as FILE:LINE."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from bot.config.errors import ConfigError, ConfigIssue, LineMap
from bot.config.yamlio import load_yaml
from bot.core.timeparse import TimeParseError
from bot.core.timeparse import parse_duration as core_parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioContact(_Strict):
    id: str
    name: str = ""


class ScenarioBot(_Strict):
    id: str = "wxid_bot"
    name: str = "小助手"
    # Whether the bot account may remove members (False: ad removal must fail closed).
    can_remove: bool = True


class ScenarioAccount(ScenarioBot):
    """One of several bot accounts (`bots:`), each run as its own bot process would be."""

    id: str
    name: str = ""
    # The groups this account is in (default: every group in the scenario).
    groups: list[str] | None = None


class ScenarioGroup(_Strict):
    id: str
    topic: str = ""
    owner: str | None = None
    admins: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)


class Scenario(_Strict):
    clock: datetime
    bot: ScenarioBot = Field(default_factory=ScenarioBot)
    contacts: list[ScenarioContact] = Field(default_factory=list)
    groups: list[ScenarioGroup] = Field(default_factory=list)
    # Several accounts on one database (cluster): replaces `bot`.
    bots: list[ScenarioAccount] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("clock")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("clock needs a UTC offset, e.g. 2026-12-01T08:00:00+08:00")
        return value

    @field_validator("bots")
    @classmethod
    def _known_groups(cls, bots: list[ScenarioAccount], info: ValidationInfo) -> list[ScenarioAccount]:
        groups = {g.id for g in info.data.get("groups") or ()}
        seen: set[str] = set()
        for account in bots:
            if account.id in seen:
                raise ValueError(f"bot {account.id} is listed twice")
            seen.add(account.id)
            unknown = [g for g in account.groups or () if g not in groups]
            if unknown:
                raise ValueError(f"bot {account.id}: unknown group {unknown[0]!r} (list it under groups)")
        return bots

    @model_validator(mode="after")
    def _one_way_to_name_the_bot(self) -> Scenario:
        if self.bots and "bot" in self.model_fields_set:
            raise ValueError("give either bot (one account) or bots (several), not both")
        return self

    @property
    def accounts(self) -> list[ScenarioAccount]:
        """The bot accounts: `bots`, or the one `bot` (in every group)."""
        if self.bots:
            return [a if a.name else a.model_copy(update={"name": a.id}) for a in self.bots]
        return [ScenarioAccount(id=self.bot.id, name=self.bot.name, can_remove=self.bot.can_remove)]


def parse_duration(value: object) -> timedelta:
    """A `wait:` step: 90 (seconds), 90s, 5m, 2h, 1d (the core's duration parser, which also
    reads 30分钟 and 1h30m); the error is in the CLI's language."""
    try:
        return core_parse_duration(value)
    except TimeParseError:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 2h, 1d)") from None


class ScenarioError(Exception):
    pass


# The keys each step kind accepts. `bot` on private and friend-request steps: which account
# receives it (several accounts; default the first).
STEP_KEYS: dict[str, set[str]] = {
    "message": {"group", "from", "text", "kind", "url", "mentions", "id", "qr", "photo", "quote"},
    "join": {"join", "members", "inviter"},
    "leave": {"leave", "members", "by"},
    "private": {"private", "text", "kind", "url", "id", "bot"},
    "wait": {"wait"},
    "rename": {"rename", "topic", "by"},
    "friend_request": {"friend_request", "hello", "bot"},
    "stop": {"stop", "after"},
    "resume": {"resume", "after"},
    "account": {"account", "state"},
}
# What an `account` step can make of an account's connection to the platform.
ACCOUNT_STATES = ("ok", "rate_limited", "banned", "disconnected")


def step_kind(step: dict[str, Any]) -> str | None:
    for kind in ("join", "leave", "private", "wait", "rename", "friend_request", "stop", "resume", "account"):
        if kind in step:
            return kind
    if "group" in step and "from" in step:
        return "message"
    return None


def load_scenario(path: str | Path) -> tuple[Scenario, LineMap]:
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(str(path), 1, "", "a scenario must be a mapping")])
    try:
        return Scenario.model_validate(data), lines
    except ValidationError as err:
        raise ConfigError(lines.from_validation(err)) from None
