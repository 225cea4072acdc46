"""Who is asking: session users (signed cookie), API tokens, CSRF and login rate limits."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request

PASSWORD_USER = "password"
_hasher = PasswordHasher()


class LoginRequired(Exception):
    """A page asked for without a session: the handler sends the browser to /login."""


@dataclass(frozen=True)
class WebUser:
    id: str
    name: str
    groups: frozenset[str] | None  # None: every group (a bot admin)

    @property
    def is_bot_admin(self) -> bool:
        return self.groups is None

    def sees(self, group_id: str) -> bool:
        return self.groups is None or group_id in self.groups

    def visible(self, group_ids: list[str]) -> list[str]:
        return group_ids if self.groups is None else [g for g in group_ids if g in self.groups]

    def check(self, group_id: str) -> None:
        if not self.sees(group_id):
            raise HTTPException(403, "你不是这个群的管理员")

    def check_bot_admin(self) -> None:
        if not self.is_bot_admin:
            raise HTTPException(403, "只有机器人管理员可以这样做")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- sessions ---------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    session = request.session
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return str(token)


def start_session(request: Request, user_id: str, name: str, groups: list[str] | None) -> None:
    """A fresh session (and a fresh CSRF token): nothing from before the login carries over."""
    request.session.clear()
    request.session.update(
        {"uid": user_id, "name": name, "groups": groups, "at": int(time.time()), "csrf": secrets.token_urlsafe(24)}
    )


def session_user(request: Request) -> WebUser | None:
    session: dict[str, Any] = request.session
    uid = session.get("uid")
    if not uid:
        return None
    groups = session.get("groups")
    return WebUser(str(uid), str(session.get("name") or uid), None if groups is None else frozenset(groups))


RECHECK_SECONDS = 60


async def require_user(request: Request) -> WebUser:
    """The session's user. Who may see what is checked again every minute against the bot's
    admins and the groups' roles (the directory's cached ones, not a platform round trip per
    group): an admin who lost the role loses the console with it."""
    user = session_user(request)
    if user is None:
        raise LoginRequired()
    if user.id == PASSWORD_USER:
        return user
    console = request.app.state.console
    now = console.now().timestamp()
    if now - float(request.session.get("checked", 0)) < RECHECK_SECONDS:
        return user
    from bot.core.plugin import Permission
    from bot.web.chat import admin_groups

    directory = console.services.groups
    groups: list[str] | None
    if user.groups is not None:  # the session's groups where the role is still held (cached roles)
        groups = [g for g in sorted(user.groups) if await directory.permission(user.id, g) >= Permission.GROUP_ADMIN]
    elif directory.is_bot_admin(user.id):
        groups = None
    else:  # no longer a bot admin: maybe still a group admin somewhere
        groups = await admin_groups(console.services, user.id)
    if groups is not None and not groups:
        request.session.clear()
        raise LoginRequired()
    request.session["groups"] = groups
    request.session["checked"] = now
    return WebUser(user.id, user.name, None if groups is None else frozenset(groups))


async def check_csrf(request: Request) -> None:
    """Every state-changing form and htmx call carries the session's CSRF token (a form
    field, or the X-CSRF-Token header htmx sends)."""
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise HTTPException(403, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


# --- rate limits --------------------------------------------------------------------------
class LoginLimiter:
    """Failed logins per client address in a sliding minute; past the limit, refused
    until the minute has passed. Bounded: the oldest addresses are forgotten first."""

    def __init__(self, per_minute: int, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        times = self._failures.get(client)
        if not times:
            return False
        while times and now - times[0] > self.window:
            times.popleft()
        return len(times) >= self.per_minute

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        times = self._failures.pop(client, None) or deque()
        times.append(now)
        self._failures[client] = times
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"
