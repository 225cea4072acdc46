"""The `web:` section of bot.yaml. Plain pydantic: the config model imports it without the
web extra installed."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PASSWORD_ENV = "QUNBOT_WEB_PASSWORD_HASH"
SECRET_ENV = "QUNBOT_WEB_SECRET"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutgoingWebhook(_Strict):
    """An HTTP endpoint told of events as JSON, signed with HMAC-SHA256 of the body."""

    url: str
    secret: SecretStr
    # member_joined, member_left, ad_removed, broadcast_report; empty: all of them.
    events: list[str] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from bot.web.events import EVENT_NAMES

        unknown = [v for v in value if v not in EVENT_NAMES]
        if unknown:
            raise ValueError(f"unknown event {', '.join(unknown)} (known: {', '.join(EVENT_NAMES)})")
        return value


class WebSettings(_Strict):
    # Loopback by default: put a TLS reverse proxy in front to reach it from elsewhere.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # The address admins open (the `后台` links); default http://host:port.
    public_url: str | None = None
    # An argon2 hash (`qunbot web-password` prints one), for the first setup before any admin
    # is known to the bot; or set QUNBOT_WEB_PASSWORD_HASH.
    password_hash: SecretStr | None = None
    # Signs the session cookies; or QUNBOT_WEB_SECRET. Unset: a random key kept in the data folder.
    secret_key: SecretStr | None = None
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    link_minutes: float = Field(10.0, gt=0, le=60)
    # Failed logins (password or link) per client address per minute before refusing for a minute.
    login_attempts_per_minute: int = Field(5, ge=1)
    # Cookies only over HTTPS (set when a TLS proxy is in front).
    secure_cookies: bool = False
    webhooks: list[OutgoingWebhook] = Field(default_factory=list)

    @field_validator("public_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def password(self) -> str | None:
        env = os.environ.get(PASSWORD_ENV)
        if env:
            return env
        return self.password_hash.get_secret_value() if self.password_hash else None
