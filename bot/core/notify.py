"""One service that tells admins things: a private message to the group's admins and the
bot admins (through the outbox), and optionally webhooks to a WeCom / DingTalk / Feishu
group robot or any JSON endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.core.clock import Clock
from bot.core.groups import GroupDirectory
from bot.core.outbox import Outbox

if TYPE_CHECKING:
    from bot.config.models import NotifySettings, Webhook

log = logging.getLogger("qunbot.notify")


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        groups: GroupDirectory,
        outbox: Outbox,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self._groups = groups
        self._outbox = outbox
        self._clock = clock
        self._http = http
        self._tasks: set[asyncio.Task[None]] = set()

    async def notify(self, text: str, *, group_id: str | None = None, source: str = "") -> None:
        """Queue the notice; never blocks the caller on the network."""
        if group_id:
            await self._groups.info(group_id)  # fills the name cache (and the admin list below)
        label = self._groups.display_name(group_id) if group_id else ""
        body = f"【{label}】{text}" if label else text
        recipients: list[str] = []
        if group_id and self.settings.private_to_group_admins:
            recipients += await self._groups.admins_of(group_id)
        if self.settings.private_to_bot_admins:
            recipients += [a for a in self._groups.config.bot_admins if a not in recipients]
        for contact in recipients:
            self._outbox.send_private(contact, body)
        if not recipients and not self.settings.webhooks:
            log.warning("admin notice with nobody to tell (%s): %s", source or "core", body)
        for hook in self.settings.webhooks:
            task = asyncio.create_task(self._post(hook, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self._http is not None:
            await self._http.aclose()

    async def _post(self, hook: Webhook, text: str) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        url, payload = webhook_request(hook, text)
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=1, max=20),
                retry=retry_if_exception_type(httpx.HTTPError),
                reraise=True,
            ):
                with attempt:
                    resp = await self._http.post(url, json=payload)
                    resp.raise_for_status()
        except httpx.HTTPError as exc:
            # Never log the URL: it carries the robot's key.
            log.warning("%s webhook failed: %s", hook.kind, type(exc).__name__)


def webhook_request(hook: Webhook, text: str) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body each robot expects (signed where a secret is configured)."""
    url = hook.url.get_secret_value()
    secret = hook.secret.get_secret_value() if hook.secret else None
    if hook.kind == "wecom":
        return url, {"msgtype": "text", "text": {"content": text}}
    if hook.kind == "dingtalk":
        if secret:
            # Robot signatures are checked against the real wall time, not the bot's clock.
            ts = str(int(time.time() * 1000))
            sign = base64.b64encode(
                hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            ).decode()
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={urllib.parse.quote_plus(sign)}"
        return url, {"msgtype": "text", "text": {"content": text}}
    if hook.kind == "feishu":
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if secret:
            ts = str(int(time.time()))
            sign = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
            body.update(timestamp=ts, sign=sign)
        return url, body
    return url, {"text": text}
