"""多群同步直播 through the full pipeline: routing, loop-freedom, sessions, questions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import load_everything
from bot.config.errors import ConfigError
from bot.core.events import GroupMessage, Member, MessageKind
from plugins.relay.models import RelayLedger, RelaySession, RelayTranscript
from tests.harness import Chat, chat, write_config

CONTACTS = [
    {"id": "owner1", "name": "群主"},
    {"id": "teacher", "name": "张老师"},
    {"id": "alice", "name": "Alice"},
    {"id": "bob", "name": "Bob"},
    {"id": "carol", "name": "Carol"},
    {"id": "boss", "name": "Boss"},
]
WORLD: dict[str, Any] = {
    "clock": "2026-12-01T19:00:00+08:00",
    "contacts": CONTACTS,
    "groups": [
        {"id": "main", "topic": "讲座主群", "owner": "owner1", "members": ["teacher", "alice"]},
        {"id": "a1", "topic": "听众一群", "owner": "bob", "members": ["carol"]},
        {"id": "a2", "topic": "听众二群", "owner": "owner1", "members": ["alice"]},
        {"id": "a3", "topic": "听众三群", "owner": "owner1", "members": ["carol"]},
        {"id": "m1", "topic": "宝妈一群", "owner": "owner1", "members": ["alice"]},
        {"id": "m2", "topic": "宝妈二群", "owner": "owner1", "members": ["bob"]},
        {"id": "m3", "topic": "宝妈三群", "owner": "owner1", "members": ["carol"]},
    ],
}
ALL_GROUPS = [g["id"] for g in WORLD["groups"]]

LECTURE = """
bot_admins: [boss]
other_bots: [otherbot]
plugins:
  keyword_reply:
    rules:
      - {keywords: [群规], replies: ["群规：友善交流"]}
  relay:
    relays:
      - name: lecture
        source: main
        targets: [a1, a2, a3]
        speakers: [teacher]
        always_on: %(always_on)s
"""

MESH = """
plugins:
  relay:
    relays:
      - name: moms
        mesh: [m1, m2, m3]
"""

RING = """
plugins:
  relay:
    relays:
      - {name: ab, source: m1, targets: [m2]}
      - {name: bc, source: m2, targets: [m3]}
      - {name: ca, source: m3, targets: [m1]}
"""


def lecture(tmp_path: Path, always_on: bool = True) -> Path:
    return write_config(tmp_path, LECTURE % {"always_on": str(always_on).lower()})


def hits(bot: Chat, group: str, text: str) -> int:
    return sum(1 for a in bot.said(group) if text in (a.text or ""))


def assert_reached_once(bot: Chat, text: str, origin: str, others: list[str]) -> None:
    """The message reached every other group exactly once, and never came back."""
    for group in ALL_GROUPS:
        expected = 1 if group in others else 0
        assert hits(bot, group, text) == expected, (
            f"{text!r} from {origin}: {hits(bot, group, text)} time(s) in {group}, expected {expected}"
        )


async def rows(bot: Chat, model: type) -> list[Any]:
    db = bot.sim.app.db
    assert db is not None
    async with db.session() as s:
        return list((await s.exec(select(model))).all())


# --- one-to-many ---------------------------------------------------------------------


async def test_one_to_many_relays_only_the_listed_speakers(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path), WORLD) as bot:
        await bot.say("main", "teacher", "第一讲：睡眠")
        await bot.say("main", "alice", "老师讲得好")  # not a speaker: stays in the main group
        await bot.say("main", "teacher", "第二讲：饮食")
        await bot.say("a1", "carol", "听众一群闲聊")  # audience chatter stays local
    for text in ("第一讲：睡眠", "第二讲：饮食"):
        assert_reached_once(bot, text, "main", ["a1", "a2", "a3"])
    assert_reached_once(bot, "老师讲得好", "main", [])
    assert_reached_once(bot, "听众一群闲聊", "a1", [])
    line = bot.said("a1", "第一讲")[0]
    assert line.text == "【张老师】第一讲：睡眠"  # the speaker's name, no group in one-to-many


async def test_commands_and_other_plugins_answers_are_not_relayed(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path), WORLD) as bot:
        await bot.say("main", "teacher", "帮助")  # a command: answered, not relayed
        await bot.say("main", "teacher", "群规")  # a keyword reply; the message itself is relayed
    assert hits(bot, "main", "我能做这些") == 1
    assert all("帮助" not in (a.text or "") for g in ("a1", "a2", "a3") for a in bot.said(g))
    # The bot's answer in the main group is its own message: never relayed.
    assert hits(bot, "main", "群规：友善交流") == 1
    for group in ("a1", "a2", "a3"):
        assert [a.text for a in bot.said(group)] == ["【张老师】群规"]


async def test_links_images_and_files_travel_as_readable_lines(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path), WORLD) as bot:
        await bot.say("main", "teacher", "参考文章", kind="url", url="http://example.com/a")
        await bot.say("main", "teacher", "", kind="image")
        await bot.say("main", "teacher", "课件.pdf", kind="file")
        await bot.say("main", "teacher", "", kind="voice")
        await bot.say("main", "teacher", "系统消息", kind="system")
    assert [a.text for a in bot.said("a2")] == [
        "【张老师】参考文章 http://example.com/a",
        "【张老师】[图片]",
        "【张老师】[文件] 课件.pdf",
        "【张老师】[语音]",
    ]


# --- mesh and cycles -------------------------------------------------------------------


async def test_three_group_mesh_each_message_reaches_each_other_group_once(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, MESH), WORLD) as bot:
        await bot.say("m1", "alice", "一群你好")
        await bot.say("m2", "bob", "二群你好")
        await bot.say("m3", "carol", "三群你好")
        await bot.say("m1", "alice", "一群再见")
        await bot.wait("1m")
    assert_reached_once(bot, "一群你好", "m1", ["m2", "m3"])
    assert_reached_once(bot, "二群你好", "m2", ["m1", "m3"])
    assert_reached_once(bot, "三群你好", "m3", ["m1", "m2"])
    assert_reached_once(bot, "一群再见", "m1", ["m2", "m3"])
    # Mesh lines name the group the message came from.
    assert bot.said("m3", "二群你好")[0].text == "【宝妈二群·Bob】二群你好"
    assert len(bot.said()) == 8


async def test_a_ring_of_links_carries_a_message_around_once_and_stops(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, RING), WORLD) as bot:
        await bot.say("m1", "alice", "绕一圈")
        await bot.say("m3", "carol", "反方向")
    assert_reached_once(bot, "绕一圈", "m1", ["m2", "m3"])
    assert_reached_once(bot, "反方向", "m3", ["m1", "m2"])


# --- loop-freedom ----------------------------------------------------------------------


async def test_the_bots_own_echoes_and_other_bots_are_never_relayed(tmp_path: Path) -> None:
    config = write_config(tmp_path, MESH + "other_bots: [otherbot]\n")
    async with chat(config, WORLD) as bot:
        await bot.say("m1", "alice", "原话")
        relayed = bot.said("m2", "原话")[0].text
        assert relayed is not None
        # The puppet delivers the bot's own message back, once with its id and once again
        # under another id (as new puppets do), a second later.
        await bot.say("m2", "wxid_bot", relayed, id="echo-1")
        await bot.wait("1s")
        await bot.say("m2", "wxid_bot", relayed, id="echo-2")
        # Another relay bot not listed anywhere copies the bot's line: an echo, not news.
        await bot.step(join="m2", members=["copycat"])
        await bot.say("m2", "copycat", relayed)
        # A listed other bot says something new: ignored like the bot itself.
        await bot.step(join="m2", members=["otherbot"])
        await bot.say("m2", "otherbot", "我是另一个机器人")
        # The same human message delivered twice (same id) is relayed once.
        await bot.say("m3", "carol", "只说一次", id="dup-1")
        await bot.wait("1s")
        await bot.say("m3", "carol", "只说一次", id="dup-1")
        await bot.wait("1m")
    assert_reached_once(bot, "原话", "m1", ["m2", "m3"])
    assert_reached_once(bot, "只说一次", "m3", ["m1", "m2"])
    assert hits(bot, "m1", "另一个机器人") == hits(bot, "m3", "另一个机器人") == 0


async def test_the_ledger_stops_a_replayed_message_after_a_restart(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    config = write_config(tmp_path, MESH)
    async with chat(config, WORLD, db_url=db_url) as bot:
        await bot.say("m1", "alice", "重连前", id="wx-42")
    assert hits(bot, "m2", "重连前") == 1
    # A new process (its dispatcher remembers nothing) gets the same message again.
    async with chat(config, WORLD, db_url=db_url) as again:
        await again.say("m1", "alice", "重连前", id="wx-42")
        ledger = await rows(again, RelayLedger)
    assert again.said() == []
    assert [(r.origin_key, sorted(r.targets or [])) for r in ledger] == [("m:m1:wx-42", ["m2", "m3"])]


async def test_a_backlog_is_merged_into_fewer_sends_in_order(tmp_path: Path) -> None:
    """Messages arriving faster than the outbox sends: one send per group carries them."""
    async with chat(lecture(tmp_path), WORLD) as bot:
        app, now = bot.sim.app, bot.sim.clock.now()
        teacher = Member("teacher", "张老师")
        for i in range(6):
            await app.handle(
                GroupMessage(
                    at=now,
                    group_id="main",
                    sender=teacher,
                    text=f"第{i}句",
                    kind=MessageKind.TEXT,
                    message_id=f"fast-{i}",
                )
            )
        await bot.finish()
    for group in ("a1", "a2", "a3"):
        texts = [a.text or "" for a in bot.said(group)]
        assert len(texts) == 2  # the first line at once, then the five that waited, together
        joined = "\n".join(texts)
        assert [joined.count(f"第{i}句") for i in range(6)] == [1] * 6
        assert [joined.index(f"第{i}句") for i in range(6)] == sorted(joined.index(f"第{i}句") for i in range(6))


# --- live sessions and questions ------------------------------------------------------


async def test_a_live_session_relays_takes_questions_and_ends_with_a_summary(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path, always_on=False), WORLD) as bot:
        await bot.say("main", "teacher", "还没开始")
        await bot.say("a1", "carol", "提问 现在能问吗")  # no session: not forwarded
        await bot.say("main", "alice", "开始直播")  # a member: refused by the core
        await bot.say("a1", "bob", "开始直播 lecture")  # admin of a target, not of the source
        assert bot.said("a2") == []
        await bot.say("main", "owner1", "开始直播")
        await bot.say("main", "teacher", "欢迎大家")
        await bot.say("a1", "carol", "提问：孩子几点睡合适？")
        await bot.say("a2", "alice", "提问 要不要午睡")
        await bot.say("a3", "carol", "听不清")  # chatter, not a question
        await bot.say("main", "teacher", "晚上九点")
        await bot.wait("30m")
        await bot.say("main", "owner1", "结束直播")
        await bot.say("main", "teacher", "结束以后")
        sessions = await rows(bot, RelaySession)
        transcript = await rows(bot, RelayTranscript)
    assert_reached_once(bot, "还没开始", "main", [])
    assert_reached_once(bot, "现在能问吗", "a1", [])
    assert_reached_once(bot, "欢迎大家", "main", ["a1", "a2", "a3"])
    assert_reached_once(bot, "晚上九点", "main", ["a1", "a2", "a3"])
    assert_reached_once(bot, "结束以后", "main", [])
    bot.assert_said("main", contains="需要群管理员权限")
    bot.assert_said("a1", contains="只有源群「讲座主群」的管理员")
    for group in ("a1", "a2", "a3"):
        bot.assert_said(group, contains="直播开始", count=1)
        bot.assert_said(group, contains="直播结束", count=1)
    # Questions go to the source group only, tagged with the asker and the group.
    assert bot.said("main", "提问")[0].text == "❓「听众一群」Carol 提问：孩子几点睡合适？"
    bot.assert_said("main", contains="❓「听众二群」Alice 提问：要不要午睡")
    assert hits(bot, "a3", "孩子几点睡") == hits(bot, "a2", "孩子几点睡") == 0
    summary = bot.assert_said("main", contains="已结束").text or ""
    assert "时长 30 分钟" in summary and "转发 2 条消息到 3 个群" in summary and "收到 2 个提问" in summary
    assert "1. Carol（听众一群）：孩子几点睡合适？" in summary
    (session,) = sessions
    assert session.started_by == "owner1" and session.ended_by == "owner1" and session.ended_at is not None
    assert [(t.member_id, t.text, t.question) for t in transcript] == [
        ("teacher", "欢迎大家", False),
        ("carol", "孩子几点睡合适？", True),
        ("alice", "要不要午睡", True),
        ("teacher", "晚上九点", False),
    ]


async def test_session_speakers_by_mention_and_a_session_survives_a_restart(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    config = write_config(
        tmp_path,
        """
bot_admins: [boss]
plugins:
  relay:
    relays:
      - {name: lecture, source: main, targets: [a1, a2], always_on: false}
""",
    )
    async with chat(config, WORLD, db_url=db_url) as bot:
        await bot.say("main", "boss", "开始直播 @Alice", mentions=["alice"])
        await bot.say("main", "alice", "我是今天的讲师")
        await bot.say("main", "teacher", "我今天只听")
    assert_reached_once(bot, "我是今天的讲师", "main", ["a1", "a2"])
    assert_reached_once(bot, "我今天只听", "main", [])
    bot.assert_said("main", contains="Alice的发言将同步到 2 个群")
    async with chat(config, WORLD, db_url=db_url) as again:
        await again.say("main", "alice", "重启后继续")
        await again.private("boss", "直播状态")
        await again.private("boss", "结束直播")
    assert_reached_once(again, "重启后继续", "main", ["a1", "a2"])
    again.assert_private("boss", contains="lecture：main → 2 个群，直播中")
    summary = again.assert_private("boss", contains="已结束").text or ""
    assert "转发 2 条消息" in summary and "1 位发言人" in summary
    assert again.assert_said("main", contains="已结束").text == summary  # the home group hears it too


async def test_bot_admin_controls_a_relay_from_a_private_chat(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path, always_on=False), WORLD) as bot:
        await bot.private("boss", "开始直播")
        await bot.say("main", "teacher", "私聊开启的直播")
        await bot.private("alice", "开始直播")  # not a bot admin
        await bot.private("boss", "结束直播 nosuch")
    assert_reached_once(bot, "私聊开启的直播", "main", ["a1", "a2", "a3"])
    bot.assert_said("main", contains="直播「lecture」开始")
    bot.assert_private("alice", contains="需要群管理员权限")
    bot.assert_private("boss", contains="没有名为「nosuch」的转发")


async def test_switching_the_plugin_off_in_a_target_group_stops_relaying_there(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path), WORLD) as bot:
        await bot.say("a2", "owner1", "关闭 relay")
        await bot.say("main", "teacher", "二群听不到")
    assert_reached_once(bot, "二群听不到", "main", ["a1", "a3"])


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relay", "problem"),
    [
        ("{name: x, mesh: [m1]}", "a mesh needs at least two groups"),
        ("{name: x, source: m1, targets: [m1, m2]}", "is also a target"),
        ("{name: x, source: m1}", "needs source + targets"),
        ("{name: x, source: m1, targets: [m2], mesh: [m1, m2]}", "not both"),
        ("{name: x, source: m1, targets: [m2], format: '{name} {oops}'}", "oops"),
    ],
)
def test_bad_relays_are_config_errors_with_a_line(tmp_path: Path, relay: str, problem: str) -> None:
    path = write_config(tmp_path, f"plugins:\n  relay:\n    relays:\n      - {relay}\n")
    with pytest.raises(ConfigError) as err:
        load_everything(path)
    text = str(err.value)
    assert problem in text and "bot.yaml:" in text


def test_duplicate_relay_names_are_rejected(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
plugins:
  relay:
    relays:
      - {name: x, mesh: [m1, m2]}
      - {name: x, mesh: [m2, m3]}
""",
    )
    with pytest.raises(ConfigError, match="two relays are named 'x'"):
        load_everything(path)


def test_ledger_purge_keeps_recent_rows() -> None:
    # The purge window is configurable and sane by default.
    from plugins.relay.config import RelayConfig

    assert RelayConfig().ledger_days == 7
    assert timedelta(days=RelayConfig(ledger_days=1).ledger_days) == timedelta(days=1)


# --- both storage backends ---------------------------------------------------------------


async def test_ledger_sessions_and_transcripts_on_each_backend(tmp_path: Path, db_url: str) -> None:
    """The same flow on SQLite and PostgreSQL (skipped with a reason when none is reachable)."""
    async with chat(lecture(tmp_path, always_on=False), WORLD, db_url=db_url) as bot:
        await bot.say("main", "owner1", "开始直播")
        await bot.say("main", "owner1", "开始直播")  # already live: refused by the open-session index
        await bot.say("main", "teacher", "第一句", id="pg-1")
        await bot.wait("2s")
        await bot.say("main", "teacher", "第一句", id="pg-1")  # a duplicate: the ledger says no
        await bot.say("a3", "carol", "提问 听得到吗")
        await bot.say("main", "owner1", "结束直播")
        ledger = await rows(bot, RelayLedger)
        transcript = await rows(bot, RelayTranscript)
    bot.assert_said("main", contains="已经在进行中")
    assert_reached_once(bot, "第一句", "main", ["a1", "a2", "a3"])
    assert sorted(r.origin_key.split(":")[0] for r in ledger) == ["m", "m"]
    assert [(t.text, t.question) for t in transcript] == [("第一句", False), ("听得到吗", True)]
    assert "转发 1 条消息到 3 个群" in (bot.assert_said("main", contains="已结束").text or "")


async def test_a_huge_relayed_message_is_one_cut_send_per_target(tmp_path: Path) -> None:
    async with chat(lecture(tmp_path), WORLD) as bot:
        await bot.say("main", "teacher", "很长的讲稿。" * 170_000)  # about 1 MB of text
        await bot.wait("10m")
    for group in ("a1", "a2", "a3"):
        [line] = bot.said(group)
        assert line.text is not None and line.text.startswith("【张老师】很长的讲稿。")
        assert line.text.endswith("…（已截断）") and len(line.text) <= len("【张老师】") + 500
