"""Account health from the outbox's calls (bot.core.health): unit tests on a virtual clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import VirtualClock
from bot.core.duty import AccountRow, OffDuty
from bot.core.health import AccountHealth, AccountsStatus, HealthSettings
from bot.core.platform import PlatformError, SendResult

OK = SendResult(ok=True, message_id="m")
LIMIT = PlatformError("say to g1 failed: 操作过于频繁", rate_limited=True)


def make(connected: list[bool | None] | None = None) -> tuple[AccountHealth, VirtualClock, list[str | None]]:
    clock = VirtualClock(datetime(2026, 12, 1, tzinfo=UTC))
    flag = connected if connected is not None else [None]
    health = AccountHealth("wxid_a", HealthSettings(), clock, connected=lambda: flag[0])
    changes: list[str | None] = []
    health.on_change.append(lambda trouble, _report: changes.append(trouble))
    return health, clock, changes


def test_three_rate_limits_within_the_window_are_trouble_and_calm_ends_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="qunbot.health")
    health, clock, changes = make()
    for _ in range(2):
        health.observe(None, None, LIMIT)
        clock.advance(timedelta(seconds=60))
    assert health.trouble() is None
    health.observe(None, None, LIMIT)
    assert "限流 3 次" in (health.trouble() or "")
    clock.advance(timedelta(minutes=16))
    health.observe(None, OK, None)
    assert health.trouble() is None
    assert changes == [changes[0], None] and changes[0] is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "healthy again" in warnings[1] and "meanwhile: sent 1" in warnings[1]


def test_rate_limits_spread_over_more_than_the_window_are_not_trouble() -> None:
    health, clock, _ = make()
    for _ in range(4):
        health.observe(None, None, LIMIT)
        clock.advance(timedelta(minutes=6))
    assert health.trouble() is None
    assert health.report().counts["rate_limited"] == 4


def test_a_ban_message_is_trouble_at_once_an_ordinary_failure_is_not() -> None:
    health, _, _ = make()
    health.observe(None, None, PlatformError("remove bob from g1: bob is not in the group", permanent=True))
    health.observe(None, None, OffDuty("another account is on duty in g1"))  # not a platform call
    assert health.trouble() is None and health.report().counts == {"failed": 1}
    health.observe(None, SendResult(ok=False, error="该账号已被封号"), None)
    assert "封禁" in (health.trouble() or "")


def test_disconnected_longer_than_the_limit_by_the_adapter_s_flag() -> None:
    flag: list[bool | None] = [False]
    health, clock, _ = make(flag)
    assert health.trouble() is None  # just disconnected
    clock.advance(timedelta(minutes=3))
    assert "断线" in (health.trouble() or "")
    assert health.report().connected is False
    flag[0] = True
    clock.advance(timedelta(minutes=16))
    assert health.trouble() is None


def test_the_status_text_lists_every_account() -> None:
    health, _, _ = make()
    status = AccountsStatus(
        health.report(),
        [AccountRow("wxid_a", True, 500, 600, None, 3), AccountRow("wxid_b", False, None, None, "banned", 0)],
    )
    text = status.text()
    assert "账号 wxid_a：正常" in text
    assert "wxid_a：运行中，值班 3 个群，本小时还可发 500/600" in text
    assert "wxid_b：未运行，异常：banned，值班 0 个群" in text
