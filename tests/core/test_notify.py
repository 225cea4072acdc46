"""Admin notices: private messages to group and bot admins, and robot webhooks."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from bot.adapters.world import World, WorldPlatform
from bot.config.models import BotConfig, NotifySettings
from bot.core.clock import VirtualClock
from bot.core.events import Member
from bot.core.groups import GroupDirectory
from bot.core.notify import Notifier, webhook_request
from bot.core.outbox import Outbox, OutboxSettings

T0 = datetime(2026, 12, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))


def setup(notify: dict[str, object], handler=None):  # type: ignore[no-untyped-def]
    clock = VirtualClock(T0)
    world = World(Member("wxid_bot", "小助手"))
    world.add_group("g1", "宝妈群", owner="owner1", admins=["alice"], members=["owner1", "alice", "bob"])
    platform = WorldPlatform(world, clock)
    config = BotConfig.model_validate({"bot_admins": ["boss"], "notify": notify})
    groups = GroupDirectory(config, platform, clock)
    outbox = Outbox(platform, clock, OutboxSettings(min_gap=0, jitter=0), random.Random(0))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler)) if handler else None
    return Notifier(config.notify, groups, outbox, clock, http=http), outbox


async def test_private_notice_reaches_owner_admins_and_bot_admins() -> None:
    notifier, outbox = setup({})
    await notifier.notify("有人发广告", group_id="g1")
    targets = [item.target for item in outbox.pending_items()]
    assert targets == ["owner1", "alice", "boss"]
    assert all(item.payload["text"] == "【宝妈群】有人发广告" for item in outbox.pending_items())


async def test_webhooks_are_posted_in_each_robots_format() -> None:
    seen: list[tuple[str, dict[str, object]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json={"errcode": 0})

    notifier, _ = setup(
        {
            "private_to_group_admins": False,
            "private_to_bot_admins": False,
            "webhooks": [
                {"kind": "wecom", "url": "https://qyapi.example/send?key=k"},
                {"kind": "dingtalk", "url": "https://oapi.example/robot/send?access_token=t", "secret": "SEC"},
                {"kind": "feishu", "url": "https://open.example/hook/x"},
                {"kind": "json", "url": "https://ops.example/qunbot"},
            ],
        },
        handler,
    )
    await notifier.notify("移出了 bob", group_id="g1")
    await notifier.aclose()
    by_host = {httpx.URL(url).host: body for url, body in seen}
    assert by_host["qyapi.example"] == {"msgtype": "text", "text": {"content": "【宝妈群】移出了 bob"}}
    assert by_host["oapi.example"]["msgtype"] == "text"
    assert any("sign=" in url and "timestamp=" in url for url, _ in seen if "oapi" in url)
    assert by_host["open.example"] == {"msg_type": "text", "content": {"text": "【宝妈群】移出了 bob"}}
    assert by_host["ops.example"] == {"text": "【宝妈群】移出了 bob"}


async def test_a_failing_webhook_is_retried_then_logged_without_its_url(caplog) -> None:  # type: ignore[no-untyped-def]
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500)

    notifier, _ = setup({"webhooks": [{"kind": "wecom", "url": "https://qyapi.example/send?key=SECRETKEY"}]}, handler)
    import bot.core.notify as notify_module

    original = notify_module.wait_exponential
    notify_module.wait_exponential = lambda **_: lambda state: 0  # type: ignore[assignment]
    try:
        await notifier.notify("x")
        await asyncio.wait_for(notifier.aclose(), 10)
    finally:
        notify_module.wait_exponential = original
    assert calls == 3
    assert "SECRETKEY" not in caplog.text
    assert "wecom webhook failed" in caplog.text


def test_webhook_request_without_secret_has_no_signature() -> None:
    settings = NotifySettings.model_validate({"webhooks": [{"kind": "dingtalk", "url": "https://x/robot?t=1"}]})
    url, body = webhook_request(settings.webhooks[0], "hi")
    assert url == "https://x/robot?t=1" and body == {"msgtype": "text", "text": {"content": "hi"}}
