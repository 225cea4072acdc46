"""The core configuration model (everything in bot.yaml except plugin sections' contents)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from bot.cluster.settings import ClusterSettings
from bot.core.outbox import OutboxSettings
from bot.core.templates import placeholders
from bot.storage.settings import StorageSettings
from bot.web.settings import WebSettings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotIdentity(Strict):
    """The bot account as the console adapter and simulator present it."""

    id: str = "wxid_qunbot"
    name: str = "小助手"


class GroupEntry(Strict):
    id: str
    name: str = ""
    sets: list[str] = Field(default_factory=list)
    # Extra group admins on top of what the platform reports (owner and platform admins).
    admins: list[str] = Field(default_factory=list)


class DispatchSettings(Strict):
    # Messages older than this on arrival (a reconnect replaying history) are recorded
    # but trigger no action.
    stale_after_seconds: float = Field(120.0, gt=0)
    dedup_size: int = Field(20_000, ge=100)
    # Also drop a message whose group, sender, kind, text and exact timestamp repeat an earlier
    # one under another id (puppets sometimes deliver one message twice). Adapters whose ids
    # are unique by construction (console, simulator) switch this off.
    dedup_by_content: bool = True


class CommandSettings(Strict):
    # A command word works bare (签到) or behind one of these prefixes (/签到, #签到).
    prefixes: list[str] = Field(default_factory=lambda: ["/", "#", "!"])
    refuse_text: str = "这个命令需要{level}权限。"
    help_words: list[str] = Field(default_factory=lambda: ["帮助", "help", "菜单"])


class Webhook(Strict):
    kind: Literal["wecom", "dingtalk", "feishu", "json"]
    url: SecretStr
    # DingTalk / Feishu signing secret, when the robot uses "加签".
    secret: SecretStr | None = None


class NotifySettings(Strict):
    private_to_group_admins: bool = True
    private_to_bot_admins: bool = True
    webhooks: list[Webhook] = Field(default_factory=list)


class JoinGroupSettings(Strict):
    """What happens when the bot itself is added to a group."""

    introduce: bool = True
    text: Annotated[str, placeholders("group", "bot")] = "大家好，我是{bot}，本群的助手。发送“帮助”查看我能做什么。"


class ConsoleSettings(Strict):
    # Where `qunbot run` reads chat lines from; "-" is stdin.
    input: str = "-"
    groups: list[str] = Field(default_factory=list)  # extra group ids the console world starts with


class WechatyReconnect(Strict):
    """Back-off between connection attempts: initial_delay, times multiplier per failed
    attempt, capped at max_delay; each delay is drawn at random from [(1 - jitter) * d, d]
    so that many bots do not reconnect in lockstep after a service restart."""

    initial_delay: float = Field(1.0, gt=0)
    max_delay: float = Field(60.0, gt=0)
    multiplier: float = Field(2.0, ge=1)
    jitter: float = Field(0.5, ge=0, le=1)
    # A connection that stayed up this long starts the next back-off from initial_delay again.
    reset_after: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _order(self) -> WechatyReconnect:
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must be at least initial_delay")
        return self


class WechatySettings(Strict):
    endpoint: str | None = None  # host:port of the puppet service; env WECHATY_PUPPET_SERVICE_ENDPOINT
    token: SecretStr | None = None  # env WECHATY_PUPPET_SERVICE_TOKEN; never logged
    connect_timeout: float = Field(10.0, gt=0)  # TCP connect plus the Stop/Start handshake
    rpc_timeout: float = Field(20.0, gt=0)  # any single call to the service
    # Liveness: after heartbeat_interval seconds without any event, the bot pings the service
    # (ding → dong); no event at all for liveness_timeout seconds means the connection is dead.
    heartbeat_interval: float = Field(15.0, gt=0)
    liveness_timeout: float = Field(45.0, gt=0)
    reconnect: WechatyReconnect = Field(default_factory=WechatyReconnect)
    # While the connection is down, a send waits this long for it before failing (the outbox retries).
    send_wait: float = Field(30.0, ge=0)
    # Removal rights. The owner can always remove members; with some puppets group admins can
    # too. When true, an account that is a group admin counts as able to remove.
    admins_can_remove: bool = False
    probe_groups: bool = True  # at log-in, list the groups and log where the account may remove members
    library_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"  # python-wechaty's own loggers

    @field_validator("token", mode="before")
    @classmethod
    def _numeric_token(cls, value: object) -> object:
        # YAML reads an unquoted all-digit token as a number; it is still the token.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("endpoint must be host:port, e.g. 127.0.0.1:8788 or puppet-service:8788")
        return value

    @model_validator(mode="after")
    def _liveness_after_heartbeat(self) -> WechatySettings:
        if self.liveness_timeout <= self.heartbeat_interval:
            raise ValueError("liveness_timeout must be longer than heartbeat_interval")
        return self


class BotConfig(Strict):
    timezone: str = "Asia/Shanghai"
    adapter: Literal["console", "wechaty"] = "console"
    bot: BotIdentity = Field(default_factory=BotIdentity)
    bot_admins: list[str] = Field(default_factory=list)
    other_bots: list[str] = Field(default_factory=list)  # their messages never reach plugins
    groups: list[GroupEntry] = Field(default_factory=list)
    group_sets: dict[str, list[str]] = Field(default_factory=dict)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    commands: CommandSettings = Field(default_factory=CommandSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    on_bot_joined: JoinGroupSettings = Field(default_factory=JoinGroupSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    wechaty: WechatySettings = Field(default_factory=WechatySettings)
    # Several accounts sharing one PostgreSQL: leases and per-group duty (bot.cluster).
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    # The web console and HTTP API (`qunbot run` serves it when this section is present).
    web: WebSettings | None = None
    # Plugin sections: validated by each plugin's own model at load (see bot.core.loader).
    plugins: dict[str, dict[str, Any] | None] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name like Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _sets_name_known_groups(self) -> BotConfig:
        for entry in self.groups:
            for name in entry.sets:
                self.group_sets.setdefault(name, [])
                if entry.id not in self.group_sets[name]:
                    self.group_sets[name].append(entry.id)
        return self

    @field_validator("cluster")
    @classmethod
    def _cluster_needs_postgres(cls, value: ClusterSettings, info: ValidationInfo) -> ClusterSettings:
        storage = info.data.get("storage")  # declared above `cluster`, so already validated
        if value.enabled and storage is not None and storage.dialect != "postgresql":
            raise ValueError(
                "enabled needs PostgreSQL: several accounts coordinate through one shared "
                "database (set storage.url to postgresql://...)"
            )
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def groups_in(self, selectors: list[str]) -> set[str]:
        """Group ids named directly or through a set (`set:name` or a bare set name)."""
        out: set[str] = set()
        for sel in selectors:
            name = sel.removeprefix("set:")
            if name in self.group_sets:
                out.update(self.group_sets[name])
            else:
                out.add(sel)
        return out
