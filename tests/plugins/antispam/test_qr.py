"""QR codes in new members' images: classifying payloads, decoding generated QR images
within the caps, the slow check with the world's platform, the full pipeline through the
simulator and the console, and the `qr` extra missing."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleLineError, parse_line
from bot.adapters.world import World, WorldPlatform, qr_image
from bot.core.clock import VirtualClock
from bot.core.events import GroupMessage, Member, MessageKind
from bot.core.platform import ActionRecord
from plugins.antispam.checks import PRESUMED_QR_DETAILS, Message
from plugins.antispam.config import Action, AntispamConfig
from plugins.antispam.qrcodes import QrError, QrReader, classify, decode
from plugins.antispam.slowchecks import GroupSlowChecks, SlowChecks
from plugins.antispam.verdict import CLEAN, CheckResult, Verdict
from tests.harness import Chat, chat, write_config

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
GROUP_INVITE = "https://weixin.qq.com/g/AQYAAFmZ3xyz"


@pytest.mark.parametrize(
    ("payload", "kind", "title"),
    [
        (GROUP_INVITE, "group_invite", "微信群邀请"),
        ("https://work.weixin.qq.com/gm/abc123", "group_invite", "企业微信群邀请"),
        ("HTTPS://U.WECHAT.COM/EAbcDef", "contact", "微信个人名片"),
        ("https://work.weixin.qq.com/u/vc123", "contact", "企业微信名片"),
        ("https://qm.qq.com/cgi-bin/qm/qr?k=abc", "contact", "QQ名片"),
        ("http://weixin.qq.com/r/abcDEF", "official_account", "公众号"),
        ("wxp://f2f0abcDEF", "payment", "微信收款码"),
        ("https://qr.alipay.com/fkx123", "payment", "支付宝收款码"),
        ("https://t.me/joinchat/abc", "telegram", "Telegram"),
        ("tg://resolve?domain=abc", "telegram", "Telegram"),
        ("https://shop.example.com/item/9", "link", "链接 shop.example.com"),
        ("www.example.cn/promo", "link", "链接 www.example.cn"),
        ("WIFI:S:home;T:WPA;P:123;;", "text", "文字"),
    ],
)
def test_payloads_are_classified_by_what_they_point_to(payload: str, kind: str, title: str) -> None:
    target = classify(payload)
    assert (target.kind, target.title) == (kind, title)
    assert target.shown == payload


def test_a_generated_qr_image_decodes_to_its_payload() -> None:
    assert decode(qr_image(GROUP_INVITE), 16_000_000) == [GROUP_INVITE]


def test_an_image_without_a_code_and_a_file_that_is_no_image() -> None:
    from io import BytesIO

    from PIL import Image

    blank = BytesIO()
    Image.new("L", (300, 200), 255).save(blank, format="PNG")
    assert decode(blank.getvalue(), 16_000_000) == []
    with pytest.raises(QrError, match="无法读取图片"):
        decode(b"GIF89a not really", 16_000_000)


def test_an_image_over_the_pixel_cap_is_refused_before_decoding() -> None:
    from io import BytesIO

    from PIL import Image

    big = BytesIO()
    Image.new("L", (4000, 3000), 255).save(big, format="PNG")
    with pytest.raises(QrError, match="图片太大（4000×3000"):
        decode(big.getvalue(), 10_000_000)


# --- the slow check with the world's platform ------------------------------------------------


def world_platform() -> tuple[World, WorldPlatform]:
    world = World(Member("wxid_bot", "小助手"))
    world.add_group("g1", "宝妈群", "owner", [], ["newbie"])
    return world, WorldPlatform(world, VirtualClock(NOW))


def image(member_age: timedelta | None = timedelta(hours=1)) -> Message:
    return Message("", kind=MessageKind.IMAGE, group_id="g1", member_id="newbie", at=NOW, member_age=member_age)


def slow_checks(config: AntispamConfig, reader: QrReader | None = None) -> GroupSlowChecks:
    return GroupSlowChecks(config, reader or QrReader(), None, None)


async def test_a_new_members_group_invite_becomes_a_removal_result() -> None:
    world, platform = world_platform()
    world.post_image("m1", qr_image(GROUP_INVITE))
    checks = slow_checks(AntispamConfig())
    plan = checks.plan(image(), "m1", CLEAN)
    assert plan is not None and plan.qr
    verdict = await checks.run(plan, platform, image(), "m1", CLEAN, NOW)
    (result,) = verdict.results
    assert (result.name, result.spam, result.action) == ("qr_code", True, Action.REMOVE)
    assert result.details == f"微信群邀请（{GROUP_INVITE}）"
    assert verdict.rules == "二维码"


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        ("wxp://f2f0abc", Action.WARN),
        ("hello world", Action.NONE),
        ("https://mp.weixin.qq.com/s/abc", Action.NONE),
    ],
)
async def test_payment_codes_warn_plain_text_and_allowed_links_pass(payload: str, action: Action) -> None:
    world, platform = world_platform()
    world.post_image("m1", qr_image(payload))
    checks = slow_checks(AntispamConfig())
    verdict = await checks.run(checks.plan(image(), "m1", CLEAN), platform, image(), "m1", CLEAN, NOW)  # type: ignore[arg-type]
    (result,) = verdict.results
    assert (result.spam, result.action) == (action > Action.NONE, action)


def read_as(p: float) -> Verdict:
    """A verdict in which the text model read the message at `p` and nothing fired."""
    return Verdict((CheckResult("classifier", False, "", Action.NONE, p),))


def test_which_images_are_read_before_the_verdict_after_it_or_not_at_all() -> None:
    checks = slow_checks(AntispamConfig(qr={"member_days": 2}))
    assert checks.plan(image(timedelta(days=1)), "m1", CLEAN) == (True, "", False)
    # Established, or joined before the bot knew them: read in the background, when nothing
    # is said beside the image (a hello at most); a caption says what it is.
    assert checks.plan(image(timedelta(days=3)), "m1", CLEAN) == (False, "", True)
    assert checks.plan(image(None), "m1", CLEAN) == (False, "", True)
    hello = Message("大家好", kind=MessageKind.IMAGE, group_id="g1", member_id="old", at=NOW)
    assert checks.plan(hello, "m1", CLEAN) == (False, "", True)
    captioned = Message("这是我们小区的垃圾分类时间表", kind=MessageKind.IMAGE, group_id="g1", member_id="old", at=NOW)
    assert checks.plan(captioned, "m1", CLEAN) is None
    # Unless the text model leans to reading the caption as an ad (`lure_from`, 0.6).
    assert checks.plan(captioned, "m1", read_as(0.65)) == (False, "", True)
    assert checks.plan(captioned, "m1", read_as(0.55)) is None
    ignored = {"contact": "ignore", "telegram": "ignore"}
    assert slow_checks(AntispamConfig(qr={"established": ignored})).plan(image(None), "m1", CLEAN) is None
    assert checks.plan(image(), None, CLEAN) is None  # no platform id to fetch it by
    assert checks.plan(Message("你好", group_id="g1", member_id="newbie", member_age=timedelta(0)), "m1", CLEAN) is None
    weak = slow_checks(AntispamConfig(qr={"actions": {"group_invite": "warn", "contact": "warn", "telegram": "warn"}}))
    warned = Verdict((CheckResult("new_member", True, "…", Action.WARN),))
    assert weak.plan(image(), "m1", warned) is None  # a warning already; no QR target asks for more


async def test_an_image_over_the_byte_cap_is_not_read() -> None:
    world, platform = world_platform()
    world.post_image("m1", b"\x89PNG" + bytes(30_000))
    checks = slow_checks(AntispamConfig(qr={"max_bytes": 20_000}))
    verdict = await checks.run(checks.plan(image(), "m1", CLEAN), platform, image(), "m1", CLEAN, NOW)  # type: ignore[arg-type]
    (result,) = verdict.results
    assert not result.spam and "larger than 20000 bytes" in result.details


async def test_a_slow_decode_is_not_waited_for_and_its_late_result_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, platform = world_platform()
    world.post_image("m1", qr_image(GROUP_INVITE))
    release = threading.Event()

    def stuck_decoder(data: bytes, max_pixels: int) -> list[str]:
        release.wait(10)
        return decode(data, max_pixels)

    reader = QrReader(stuck_decoder)
    checks = slow_checks(AntispamConfig(qr={"wait_ms": 100}), reader)
    caplog.set_level(logging.INFO, "qunbot.plugin.antispam")
    verdict = await checks.run(checks.plan(image(), "m1", CLEAN), platform, image(), "m1", CLEAN, NOW)  # type: ignore[arg-type]
    (result,) = verdict.results
    assert not verdict.spam and result.details == "100 毫秒内没读完图片，未等待"
    assert reader.pending == 1 and len(checks.late) == 1
    release.set()
    for _ in range(200):
        if not checks.late:
            break
        await asyncio.sleep(0.02)
    assert reader.pending == 0 and not checks.late
    assert "QR code read after the verdict (not acted on)" in caplog.text and "微信群邀请" in caplog.text
    reader.close()


async def test_a_busy_reader_takes_no_more_images() -> None:
    reader = QrReader()
    reader.pending = 8
    assert slow_checks(AntispamConfig(), reader).plan(image(), "m1", CLEAN) is None
    reader.close()


# --- the extra missing ---------------------------------------------------------------------


@pytest.fixture
def no_zxing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # `import zxingcpp` raises ImportError


@pytest.mark.usefixtures("no_zxing")
def test_without_the_extra_the_check_says_so_once_and_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "qunbot.plugin.antispam")
    slow = SlowChecks([AntispamConfig(), AntispamConfig(strictness="strict")], None)
    assert slow.reader is None and slow.by_config == {}
    assert caplog.text.count("QR codes in images are not read: zxing-cpp not installed") == 1


# --- the full pipeline ----------------------------------------------------------------------

CONFIG = """
groups:
  - {id: g1, name: 宝妈交流群}
plugins:
  antispam:
    strikes: {limit: 3, window_hours: 24}
  keyword_reply:
    rules:
      - {keywords: [扫码], match: contains, replies: ["扫什么码"]}
"""


async def test_a_new_member_posting_a_group_qr_is_removed_with_what_it_points_to(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "dave")
        bot.new_actions()
        await bot.step(group="g1", **{"from": "dave"}, kind="image", qr=GROUP_INVITE)
        kick = bot.assert_kicked("g1", "dave")
        assert "二维码" in (kick.reason or "")
        notice = [a for a in bot.actions if a.action in ("say", "private") and "weixin.qq.com/g/" in (a.text or "")]
        assert notice, f"no notice names the QR target: {[a.as_json() for a in bot.actions]}"


async def test_a_new_members_payment_code_is_warned_and_an_old_members_qr_passes(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "dave")
        bot.new_actions()
        await bot.step(group="g1", **{"from": "dave"}, qr="wxp://f2f0AbCdEf", text="扫码")
        warning = bot.assert_said("g1", contains="请勿发布广告")
        assert "二维码" in (warning.text or "") and warning.mentions == ["dave"]
        assert bot.said("g1", contains="扫什么码") == []
        bot.new_actions()
        # alice was a member before the bot saw anyone join: an established member.
        await bot.step(group="g1", **{"from": "alice"}, qr=GROUP_INVITE)
        bot.assert_silent()


async def warned_after_reading(bot: Chat, group: str, since: int) -> list[ActionRecord]:
    """The warnings said after the first `since` actions, once the background reads are done
    (they run on a real thread)."""
    for _ in range(100):
        await asyncio.sleep(0.02)
        await bot.wait("1s")
        found = [a for a in bot.actions[since:] if a.group == group and "请勿发布广告" in (a.text or "")]
        if found:
            return found
    return []


PERSONAL_CARD = "https://u.wechat.com/EAbcDef123"


async def test_an_established_members_personal_card_code_with_nothing_said_is_warned_once_read(
    tmp_path: Path,
) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        # alice was a member before the bot saw anyone join: an established member.
        await bot.step(group="g1", **{"from": "alice"}, qr=PERSONAL_CARD)
        warned = await warned_after_reading(bot, "g1", since=0)
        assert len(warned) == 1 and warned[0].mentions == ["alice"]
        assert "二维码" in (warned[0].text or "")
        since = len(bot.actions)
        # A caption says what the code is for: not read, as for the class's group code.
        await bot.step(group="g1", **{"from": "bob"}, qr=PERSONAL_CARD, text="这是小区维修王师傅的微信，上次修得不错")
        await bot.step(group="g1", **{"from": "bob"}, qr=GROUP_INVITE)
        assert await warned_after_reading(bot, "g1", since) == []


async def test_a_stop_cancels_what_is_still_being_read_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck_decoder(data: bytes, max_pixels: int) -> list[str]:
        release.wait(10)
        return decode(data, max_pixels)

    monkeypatch.setattr(QrReader, "create", classmethod(lambda cls: cls(stuck_decoder)))
    try:
        async with chat(write_config(tmp_path, CONFIG)) as bot:
            await bot.step(group="g1", **{"from": "alice"}, qr=PERSONAL_CARD)
            state = bot.sim.accounts[0].app.dispatcher.runtime.hosts["antispam"].state  # type: ignore[union-attr]
            assert len(state.reading) == 1
        assert not state.reading  # cancelled and awaited by the plugin's shutdown
        assert bot.said("g1", contains="请勿发布广告") == []
    finally:
        release.set()


async def test_an_established_members_images_are_read_in_the_background() -> None:
    world, platform = world_platform()
    world.post_image("m1", qr_image(PERSONAL_CARD))
    world.post_image("m2", qr_image(GROUP_INVITE))
    from bot.adapters.world import plain_photo

    world.post_image("m3", plain_photo())
    checks = slow_checks(AntispamConfig())
    old = image(None)
    card = await checks.read_later(platform, old, "m1", CLEAN)
    assert card is not None and (card.spam, card.action) == (True, Action.WARN)
    group = await checks.read_later(platform, old, "m2", CLEAN)
    assert group is not None and not group.spam
    assert await checks.read_later(platform, old, "m3", CLEAN) is None  # no code: a photo
    assert await checks.read_later(platform, old, "m4", CLEAN) is None  # no such image: logged, not raised
    lure = Message("跑友福利", kind=MessageKind.IMAGE, group_id="g1", member_id="newbie", at=NOW)
    group = await checks.read_later(platform, lure, "m2", read_as(0.7))
    assert group is not None and (group.spam, group.action) == (True, Action.WARN)


def test_spam_check_judges_a_known_code_as_the_reader_would() -> None:
    checks = slow_checks(AntispamConfig())

    def judged(text: str, payload: str, age: timedelta | None, p: float = 0.5) -> CheckResult | None:
        message = Message(text, kind=MessageKind.IMAGE, url=payload, qr=True, member_age=age)
        added = checks.with_known_code(message, read_as(p)).results[1:]
        return added[0] if added else None

    newcomer = timedelta(hours=1)
    assert judged("", GROUP_INVITE, newcomer).action is Action.REMOVE  # type: ignore[union-attr]
    assert judged("扫码进群", GROUP_INVITE, newcomer).action is Action.REMOVE  # type: ignore[union-attr]
    # A caption the text model reads as plainly ordinary: not acted on, as in the chat.
    school = judged("学校发的校服征订二维码，老师让转到家长群", GROUP_INVITE, newcomer, p=0.05)
    assert school is not None and not school.spam and "文本模型读作正常消息" in school.details
    assert judged("", PERSONAL_CARD, None).action is Action.WARN  # type: ignore[union-attr]
    assert not judged("", GROUP_INVITE, None).spam  # type: ignore[union-attr]
    assert judged("王师傅的微信，修得不错", PERSONAL_CARD, None) is None  # a caption: not read
    # A caption the text model leans to reading as an ad: a person's or a group's code warned.
    assert judged("在日华人二手群 扫码进", GROUP_INVITE, None, p=0.7).action is Action.WARN  # type: ignore[union-attr]
    assert judged("在日华人二手群 扫码进", "wxp://f2f0abc", None, p=0.7) is not None
    assert not judged("在日华人二手群 扫码进", "wxp://f2f0abc", None, p=0.7).spam  # type: ignore[union-attr]
    no_veto = GroupSlowChecks(AntispamConfig(classifier={"veto_below": 0}), None, None, None)
    school = Message("学校发的校服征订二维码", kind=MessageKind.IMAGE, url=GROUP_INVITE, qr=True, member_age=newcomer)
    assert no_veto.with_known_code(school, read_as(0.05)).action is Action.REMOVE  # the veto is off
    off = GroupSlowChecks(AntispamConfig(qr={"enabled": False}), None, None, None)
    message = Message("", kind=MessageKind.IMAGE, url=PERSONAL_CARD, qr=True)
    assert off.with_known_code(message, CLEAN) is CLEAN


@pytest.mark.usefixtures("no_zxing")
async def test_without_the_extra_the_pipeline_runs_and_skips_images(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "dave")
        await bot.say("g1", "dave", "大家好，我是新来的")  # so the image is not a bare first post
        bot.new_actions()
        await bot.step(group="g1", **{"from": "dave"}, qr=GROUP_INVITE)
        bot.assert_silent()


async def test_a_scenario_qr_step_must_be_an_image_with_text_content(tmp_path: Path) -> None:
    from bot.adapters.simulator import ScenarioError

    async with chat(write_config(tmp_path, CONFIG)) as bot:
        with pytest.raises(ScenarioError, match="qr: the QR code's content"):
            await bot.step(group="g1", **{"from": "alice"}, kind="text", qr=GROUP_INVITE)


def test_the_console_line_for_an_image_with_a_qr_code() -> None:
    world = World(Member("wxid_bot", "小助手"))
    event = parse_line(f"g1 bob[qr:{GROUP_INVITE}]: 扫码进群", world, VirtualClock(NOW), 7)
    assert isinstance(event, GroupMessage)
    assert (event.kind, event.text, event.message_id) == (MessageKind.IMAGE, "扫码进群", "console-7")
    assert decode(world.images["console-7"], 16_000_000) == [GROUP_INVITE]
    plain = parse_line("g1 bob[image]: 看图", world, VirtualClock(NOW), 8)  # the old forms are unchanged
    assert isinstance(plain, GroupMessage) and plain.kind is MessageKind.IMAGE and "console-8" not in world.images
    with pytest.raises(ConsoleLineError, match=r"\[qr:CONTENT\]"):
        parse_line("g1 bob[image:abc]: x", world, VirtualClock(NOW), 9)


async def test_an_image_still_queued_when_the_reader_closes_gives_a_result_not_an_error() -> None:
    world, platform = world_platform()
    world.post_image("m1", qr_image(GROUP_INVITE))
    world.post_image("m2", qr_image(GROUP_INVITE))
    release = threading.Event()

    def stuck_decoder(data: bytes, max_pixels: int) -> list[str]:
        release.wait(10)
        return []

    reader = QrReader(stuck_decoder)
    checks = slow_checks(AntispamConfig(qr={"wait_ms": 5000}), reader)
    plan = checks.plan(image(), "m1", CLEAN)
    assert plan is not None
    first = asyncio.ensure_future(checks.run(plan, platform, image(), "m1", CLEAN, NOW))
    second = asyncio.ensure_future(checks.run(plan, platform, image(), "m2", CLEAN, NOW))
    for _ in range(500):
        if reader.pending == 2:
            break
        await asyncio.sleep(0.01)
    reader.close()  # a stop or a reload: the queued decode is cancelled
    (result,) = (await second).results
    assert not result.spam and result.details == "没有读取图片：正在停止"
    release.set()
    assert (await first).results[0].details == "图片里没有二维码"


@pytest.mark.parametrize("found", sorted(PRESUMED_QR_DETAILS))
async def test_a_newcomers_bare_first_photo_read_with_no_code_is_not_warned_about(found: str) -> None:
    from bot.adapters.world import plain_photo

    world, platform = world_platform()
    world.post_image("m1", plain_photo())
    world.post_image("m2", qr_image(GROUP_INVITE))
    checks = slow_checks(AntispamConfig())
    warned = Verdict((CheckResult("new_member", True, found, Action.WARN),))
    plan = checks.plan(image(), "m1", warned)
    assert plan is not None and plan.qr
    verdict = await checks.run(plan, platform, image(), "m1", warned, NOW)
    assert not verdict.spam
    assert [(r.name, r.details) for r in verdict.results] == [
        ("new_member", f"{found}（图片里没有二维码，不处理）"),
        ("qr_code", "图片里没有二维码"),
    ]
    # A code in it: removed; an image that could not be read keeps the warning.
    assert (await checks.run(plan, platform, image(), "m2", warned, NOW)).action is Action.REMOVE
    unread = await checks.run(plan, platform, image(), "m3", warned, NOW)
    assert unread.spam and unread.action is Action.WARN


async def test_in_the_pipeline_a_newcomers_first_photo_passes_and_an_unreadable_image_is_warned(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "dave")
        await bot.join("g1", "erin")
        bot.new_actions()
        await bot.step(group="g1", **{"from": "dave"}, kind="image", photo=True)
        bot.assert_silent()
        await bot.step(group="g1", **{"from": "erin"}, kind="image")  # nothing the bot can read
        bot.assert_said("g1", contains="请勿发布广告")


async def test_a_scenario_photo_step_must_be_an_image(tmp_path: Path) -> None:
    from bot.adapters.simulator import ScenarioError

    async with chat(write_config(tmp_path, CONFIG)) as bot:
        with pytest.raises(ScenarioError, match="photo: only on an image step"):
            await bot.step(group="g1", **{"from": "alice"}, kind="text", photo=True)
