"""Outgoing webhooks: the events the bot publishes reach the configured URL signed with
HMAC-SHA256, and a receiver that fails is retried."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx

from bot.web.settings import OutgoingWebhook
from bot.web.webhooks import WebhookSender, sign
from tests.harness import chat
from tests.web.conftest import WORLD, web_config

HONEY = "周末去山里采的野生蜂蜜，纯天然没兑水，家里老人孩子都爱喝，要的找我"


def _verify(secret: str, request: httpx.Request) -> bool:
    parts = dict(p.split("=", 1) for p in request.headers["X-Qunbot-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request.content, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def test_events_are_signed_delivered_and_retried(tmp_path: Path) -> None:
    received: list[httpx.Request] = []
    failures = {"left": 2}

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503)
        return httpx.Response(204)

    hook = OutgoingWebhook(url="https://hooks.example.com/in?key=k", secret="s3cret")
    sender = WebhookSender([hook], base_delay=0.01, transport=httpx.MockTransport(receiver))
    sender.start()
    async with chat(web_config(tmp_path), WORLD) as bot:
        services = bot.sim.app.services
        services.listeners.append(sender.publish)
        await bot.join("g1", "boss", inviter="alice")
        await bot.leave("g2", "bob")
        await bot.say("g1", "spammer", HONEY)
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": HONEY})
        await bot.private("boss", "定时群发 10分钟后 群=g1 通知")
        await bot.wait("11m")
        await sender.idle()
    await sender.aclose()
    delivered = [json.loads(r.content) for r in received]
    assert len(received) == len({d["id"] for d in delivered}) + 2  # the first event was tried three times
    assert [r.headers["X-Qunbot-Delivery"] for r in received[:3]] == [delivered[0]["id"]] * 3
    events: dict[str, dict] = {}
    for d in delivered:
        events.setdefault(d["event"], d["data"])  # the first of each kind
    removed = [d["data"] for d in delivered if d["event"] == "member_left" and d["data"]["removed_by"]]
    assert removed and removed[0]["members"][0]["id"] == "spammer"  # the ad's removal, as a leave too
    assert events["member_joined"]["members"] == [{"id": "boss", "name": "老板"}]
    assert events["member_joined"]["inviter"] == "alice"
    assert events["member_left"]["group_id"] == "g2"
    assert events["ad_removed"] == {
        "group_id": "g1",
        "member_id": "spammer",
        "member_name": "小美",
        "rules": ["taught"],
    }
    assert events["broadcast_report"]["state"] == "sent" and events["broadcast_report"]["group_id"] == "g1"
    assert all(_verify("s3cret", r) for r in received)
    assert not _verify("wrong", received[0])


async def test_a_refusing_receiver_is_not_retried_and_the_log_names_only_the_host(caplog) -> None:  # type: ignore[no-untyped-def]
    calls: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400)

    hook = OutgoingWebhook(url="https://hooks.example.com/in/SECRET-PATH", secret="x", events=["ad_removed"])
    sender = WebhookSender([hook], base_delay=0.01, transport=httpx.MockTransport(receiver))
    sender.start()
    sender.publish("member_joined", {})  # not subscribed
    sender.publish("ad_removed", {"group_id": "g1"})
    await sender.idle()
    await sender.aclose()
    assert len(calls) == 1
    assert "hooks.example.com" in caplog.text and "SECRET-PATH" not in caplog.text


def test_signature_format() -> None:
    assert sign("k", b"{}", 1700000000).startswith("t=1700000000,v1=")
