"""Outgoing webhooks: events (member_joined, member_left, ad_removed, broadcast_report) POSTed
as JSON to the URLs in `web.webhooks`, signed, and retried with back-off.

Signature (as Stripe does it): header `X-Qunbot-Signature: t=<unix time>,v1=<hex>` where hex is
HMAC-SHA256 with the webhook's secret of `<t>.<body>`; a receiver recomputes it and rejects
old timestamps, so a captured request cannot be replayed later. `X-Qunbot-Event` names the
event and `X-Qunbot-Delivery` is unique per event (the same on every retry of it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.web.settings import OutgoingWebhook

log = logging.getLogger("qunbot.web.webhooks")
QUEUE_SIZE = 10_000


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class _Job:
    hook: OutgoingWebhook
    event: str
    delivery: str
    body: bytes


class WebhookSender:
    """A bounded queue and one worker: publishing never waits for a receiver. A delivery is
    tried `attempts` times with exponential back-off from `base_delay` (tenacity); then it is
    dropped with one warning."""

    def __init__(
        self,
        hooks: list[OutgoingWebhook],
        *,
        attempts: int = 6,
        base_delay: float = 2.0,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.hooks = hooks
        self.attempts = attempts
        self.base_delay = base_delay
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(QUEUE_SIZE)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def publish(self, event: str, data: dict[str, Any]) -> None:
        wanted = [h for h in self.hooks if not h.events or event in h.events]
        if not wanted:
            return
        delivery = uuid.uuid4().hex
        body = json.dumps({"event": event, "id": delivery, "data": data}, ensure_ascii=False).encode()
        for hook in wanted:
            try:
                self._queue.put_nowait(_Job(hook, event, delivery, body))
            except asyncio.QueueFull:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("webhooks: queue full, %d event(s) dropped so far", self.dropped)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def idle(self) -> None:
        """Until everything queued was delivered or given up (for tests)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._deliver(job)
            finally:
                self._queue.task_done()

    async def _deliver(self, job: _Job) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.base_delay, max=600),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(job)
        except (_Transient, _Refused) as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            log.warning(
                "webhook %s (%s): not delivered after %d attempt(s): %s", _host(job.hook.url), job.event, tries, exc
            )

    async def _post(self, job: _Job) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "qunbot-webhooks",
            "X-Qunbot-Event": job.event,
            "X-Qunbot-Delivery": job.delivery,
            "X-Qunbot-Signature": sign(job.hook.secret.get_secret_value(), job.body, int(time.time())),
        }
        try:
            response = await self._client.post(job.hook.url, content=job.body, headers=headers)
        except httpx.HTTPError as exc:
            raise _Transient(type(exc).__name__) from None  # the message may quote the URL
        if response.status_code >= 300:
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                raise _Refused(f"HTTP {response.status_code}")  # the same request would be refused again
            raise _Transient(f"HTTP {response.status_code}")


class _Transient(Exception):
    """Worth trying again: no answer, a timeout, a 5xx, 408 or 429."""


class _Refused(Exception):
    """The receiver refuses the request itself (4xx)."""


def _host(url: str) -> str:
    """The host only: webhook URLs often carry a key in the path or query."""
    return httpx.URL(url).host or "?"
