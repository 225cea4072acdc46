"""The console in a real browser (Playwright driving Debian's chromium), against the real
pipeline served by uvicorn on a free local port. Screenshots go to tmp/artefacts/web/.

Set-up: `apt-get install chromium fonts-noto-cjk` (Playwright's own browser download cannot
be reached from here); the tests skip, saying why, when chromium is not there."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import LINK, WORLD, web_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install chromium fonts-noto-cjk)"
)
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install playwright)"
)

import uvicorn  # noqa: E402

from bot.web.server import create_app  # noqa: E402
from tests.harness import Chat, chat  # noqa: E402

ARTEFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artefacts" / "web"
HONEY = "周末去山里采的野生蜂蜜，纯天然没兑水，家里老人孩子都爱喝，要的找我"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def served(bot: Chat) -> AsyncIterator[str]:
    port = _free_port()
    app = create_app(bot.sim.app)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def shot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


async def test_the_operator_flow_in_a_browser(tmp_path: Path) -> None:
    path = web_config(tmp_path)
    async with chat(path, WORLD) as bot, served(bot) as base:
        for gid, who in (("g1", "alice"), ("g1", "bob"), ("g2", "bob"), ("g1", "owner1")):
            await bot.say(gid, who, "早上好")
        await bot.say("g1", "spammer", HONEY)
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": HONEY})  # removed: an audit entry
        assert any(a.action == "kick" and a.member == "spammer" for a in bot.actions)
        await bot.sim.app.recorder.flush()

        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
            try:
                # Log in with the one-time link from a private message, see the overview.
                await bot.private("boss", "后台")
                link = LINK.search(bot.assert_private("boss", contains="登录链接").text or "")
                assert link
                await page.goto(base + link.group(1))
                await page.click("#login")
                await page.wait_for_url(base + "/")
                await page.get_by_role("link", name="宝妈交流群").wait_for()
                await shot(page, "1-overview")

                # A group's charts.
                await page.set_viewport_size({"width": 1280, "height": 900})
                await page.get_by_role("link", name="宝妈交流群").click()
                await page.wait_for_selector("body[data-charts-ready='1']")
                assert await page.locator("#c-heat canvas").count() == 1
                assert await page.locator("#c-growth canvas").count() == 1
                await shot(page, "2-group")

                # A broadcast: the next 5 fire times previewed, created, then listed in chat.
                await page.goto(base + "/broadcasts")
                await page.fill("input[name=when]", "每天08:00")
                await page.fill("input[name=group]", "g1")
                await page.fill("textarea[name=content]", "早安！今天也要加油")
                await page.wait_for_selector("#fires li:nth-child(5)")
                fires = await page.locator("#fires li").all_inner_texts()
                assert fires[0].startswith("2026-12-01 08:00") or fires[0].startswith("2026-12-02 08:00"), fires
                await shot(page, "3-broadcast-preview")
                await page.click("button[type=submit]")
                await page.wait_for_selector(".note")
                assert "已创建定时群发" in await page.inner_text(".note")
                await shot(page, "4-broadcast-created")
                await bot.private("boss", "群发列表")
                assert "早安！今天也要加油" in (bot.assert_private("boss", contains="定时群发（").text or "")

                # Mark the audit entry 误判: the member is pardoned and invited back.
                await page.goto(base + "/antispam")
                await page.locator("tr", has_text="小美").get_by_role("button", name="误判").first.click()
                await page.wait_for_selector(".note")
                note = await page.inner_text(".note")
                assert "已解除拉黑" in note, note
                await shot(page, "5-antispam-pardoned")
                assert "spammer" not in bot.sim.app.dispatcher.runtime.hosts["antispam"].state.executor.bans

                # A config with an error: its line is shown; fixed, it is saved and reloaded.
                await page.goto(base + "/config")
                good = await page.input_value("textarea[name=text]")
                await page.fill(
                    "textarea[name=text]",
                    good.replace("bot_admins: [boss]", "bot_admins: [boss]\ntimezone: Mars/Olympus"),
                )
                await page.click("button[type=submit]")
                await page.wait_for_selector("#problems")
                problems = await page.inner_text("#problems")
                assert re.search(r"第 3 行：timezone：.*unknown timezone", problems), problems
                await page.click("a.goto[data-line='3']")  # the problem's line, selected in the editor
                selected = await page.evaluate(
                    "() => { const a = document.querySelector('textarea[name=text]');"
                    " return a.value.slice(a.selectionStart, a.selectionEnd); }"
                )
                assert selected == "timezone: Mars/Olympus"
                await shot(page, "6-config-error")
                await page.fill(
                    "textarea[name=text]",
                    good.replace("bot_admins: [boss]", "bot_admins: [boss]\ntimezone: Asia/Tokyo"),
                )
                await page.click("button[type=submit]")
                await page.wait_for_selector(".note")
                assert "已保存并重新加载" in await page.inner_text(".note")
                await shot(page, "7-config-applied")
                assert bot.sim.app.config.timezone == "Asia/Tokyo"
                assert (tmp_path / "bot.yaml.prev").read_text(encoding="utf-8") == good
            finally:
                await browser.close()
