"""Admin commands (each refused to a non-admin, command by command), naming members,
activity points with their daily cap, and invite points taken back on an early leave."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.app import load_everything
from tests.harness import Chat, chat, write_config
from tests.plugins.checkin.helpers import BASE_CONFIG, WORLD, field, last_reply, ledger_sum

REFUSED = "这个命令需要群管理员权限"

# Every state-changing admin command of the plugin, with arguments that would succeed.
ADMIN_COMMANDS = [
    ("加分 @Bob 10 活动奖励", ["bob"]),
    ("扣分 @Bob 3 刷屏", ["bob"]),
    ("代补签 @Bob", ["bob"]),
]


async def records(bot: Chat, group: str, member: str) -> int:
    db = bot.sim.app.db
    assert db is not None
    async with db.engine.connect() as conn:
        value = await conn.execute(
            sa.text("SELECT COUNT(*) FROM checkin_records WHERE group_id = :g AND member_id = :m"),
            {"g": group, "m": member},
        )
        return int(value.scalar_one())


async def ledger_rows(bot: Chat) -> int:
    db = bot.sim.app.db
    assert db is not None
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT COUNT(*) FROM points_ledger"))).scalar_one())


@pytest.mark.parametrize(("text", "mentions"), ADMIN_COMMANDS, ids=[c[0].split()[0] for c in ADMIN_COMMANDS])
async def test_admin_command_refuses_a_member_and_changes_nothing(
    tmp_path: Path, text: str, mentions: list[str]
) -> None:
    async with chat(write_config(tmp_path, BASE_CONFIG), WORLD) as bot:
        await bot.say("g1", "bob", "签到")
        bot.new_actions()
        before = (await ledger_rows(bot), await records(bot, "g1", "bob"), await ledger_sum(bot, "g1", "bob"))
        # carol is a plain member of g1; alice is an admin of g2 only, which gives her nothing in g1.
        for who in ("carol", "alice"):
            await bot.say("g1", who, text, mentions=mentions)
            assert REFUSED in last_reply(bot), who
        assert (await ledger_rows(bot), await records(bot, "g1", "bob"), await ledger_sum(bot, "g1", "bob")) == before


@pytest.mark.parametrize(("text", "mentions"), ADMIN_COMMANDS, ids=[c[0].split()[0] for c in ADMIN_COMMANDS])
async def test_admin_command_works_for_owner_and_platform_admins(
    tmp_path: Path, text: str, mentions: list[str]
) -> None:
    async with chat(write_config(tmp_path, BASE_CONFIG), WORLD) as bot:
        await bot.say("g1", "owner1", text, mentions=mentions)  # the owner of g1
        await bot.say("g2", "alice", text, mentions=mentions)  # an admin of g2
        for group in ("g1", "g2"):
            reply = [a.text or "" for a in bot.said(group)][-1]
            assert REFUSED not in reply and "Bob" in reply, reply
        assert await ledger_rows(bot) + await records(bot, "g1", "bob") > 0


async def test_adding_and_deducting_points(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, BASE_CONFIG), WORLD) as bot:
        await bot.say("g1", "owner1", "加分 @Bob @Carol 10 活动奖励", mentions=["bob", "carol"])
        reply = last_reply(bot)
        assert "Bob 加 10 分（活动奖励），现有 10 分" in reply and "Carol 加 10 分（活动奖励），现有 10 分" in reply
        await bot.say("g1", "owner1", "扣分 bob 4")  # by member id, no reason
        assert "Bob 扣 4 分（管理员调整），现有 6 分" in last_reply(bot)
        await bot.say("g1", "owner1", "扣分 Carol 15分 违规")  # by nickname; may go below zero
        assert "现有 -5 分" in last_reply(bot)
        for text, problem in [
            ("加分", "请 @ 要操作的成员"),
            ("加分 Zed 5", "群里找不到“Zed”"),
            ("加分 Bob", "用法：加分 @成员 分数"),
            ("加分 Bob 十", "用法"),
            ("加分 Bob 0", "用法"),
            ("加分 Bob 20000", "一次最多加 10000 分"),
        ]:
            await bot.say("g1", "owner1", text)
            assert problem in last_reply(bot), text
        assert await ledger_sum(bot, "g1", "bob") == 6
        assert await ledger_sum(bot, "g1", "carol") == -5
        db = bot.sim.app.db
        assert db is not None
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT member_id, delta, reason, by, note FROM points_ledger ORDER BY id"))
            ).all()
        # Who changed what and why is in the ledger.
        assert [tuple(r) for r in rows] == [
            ("bob", 10, "admin", "owner1", "活动奖励"),
            ("carol", 10, "admin", "owner1", "活动奖励"),
            ("bob", -4, "admin", "owner1", "管理员调整"),
            ("carol", -15, "admin", "owner1", "违规"),
        ]


async def test_mentioned_names_with_spaces_and_the_same_nickname(tmp_path: Path) -> None:
    world = {
        **WORLD,
        "contacts": [
            *WORLD["contacts"],
            {"id": "x1", "name": "Mary Ann"},
            {"id": "x2", "name": "小王"},
            {"id": "x3", "name": "小王"},
        ],
        "groups": [
            {**WORLD["groups"][0], "members": [*WORLD["groups"][0]["members"], "x1", "x2", "x3"]},
            WORLD["groups"][1],
        ],
    }
    async with chat(write_config(tmp_path, BASE_CONFIG), world) as bot:
        await bot.say("g1", "owner1", "加分 @Mary Ann\u2005 8 分享好文", mentions=["x1"])
        assert "Mary Ann 加 8 分（分享好文）" in last_reply(bot)
        await bot.say("g1", "owner1", "加分 小王 5")
        assert "群里有 2 位“小王”，请 @ 对方" in last_reply(bot)
        await bot.say("g1", "owner1", "加分 @小王\u2005 5", mentions=["x3"])
        assert "小王 加 5 分" in last_reply(bot)
        assert await ledger_sum(bot, "g1", "x3") == 5 and await ledger_sum(bot, "g1", "x2") == 0


async def test_replayed_admin_command_applies_once(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, BASE_CONFIG), WORLD) as bot:
        await bot.say("g1", "owner1", "加分 Bob 10", id="m-1")
        await bot.wait("10m")
        await bot.say("g1", "owner1", "加分 Bob 10", id="m-1")  # the platform delivers it again
        assert await ledger_sum(bot, "g1", "bob") == 10


ACTIVITY = (
    BASE_CONFIG
    + """    activity:
      {enabled: true, points: 2, daily_cap: 5, min_chars: 2, min_interval_seconds: 30, flush_seconds: 5}
"""
)


async def test_activity_points_capped_per_day_and_never_for_commands(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, ACTIVITY), WORLD) as bot:
        await bot.say("g1", "alice", "大家早上好")  # +2
        await bot.say("g1", "alice", "今天天气不错")  # within 30 s: not counted
        await bot.say("g1", "alice", "嗯")  # too short
        await bot.wait("1m")
        await bot.say("g1", "alice", "我的积分")  # a command: not counted, and flushes first
        assert field(last_reply(bot, "ME"), "total") == 2
        for _ in range(5):
            await bot.wait("1m")
            await bot.say("g1", "alice", "聊聊天吧")
        await bot.say("g1", "alice", "签到")
        reply = last_reply(bot, "OK")
        assert field(reply, "total") == 5 + 5 == await ledger_sum(bot, "g1", "alice")  # capped at 5
        await bot.say("g1", "bob", "图片", kind="image")
        await bot.wait("2m")  # the scheduled flush writes bob's points without any query
        assert await ledger_sum(bot, "g1", "bob") == 2
        await bot.wait("1d")
        await bot.say("g1", "alice", "新的一天")
        await bot.wait("2m")
        assert await ledger_sum(bot, "g1", "alice") == 12
        # One growing row per member and day, not one per message.
        db = bot.sim.app.db
        assert db is not None
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT member_id, ref, delta FROM points_ledger WHERE reason = 'activity' ORDER BY id")
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("alice", "activity:2026-12-01", 5),
            ("bob", "activity:2026-12-01", 2),
            ("alice", "activity:2026-12-02", 2),
        ]


async def test_activity_cap_holds_across_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    cfg = write_config(tmp_path, ACTIVITY)
    async with chat(cfg, WORLD, db_url=url) as bot:
        for _ in range(2):
            await bot.say("g1", "alice", "聊聊天吧")
            await bot.wait("1m")
    # Shutdown wrote the pending points; the new process does not know the day's tally.
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T09:00:00+08:00"}, db_url=url) as bot:
        assert await ledger_sum(bot, "g1", "alice") == 4
        for _ in range(3):
            await bot.say("g1", "alice", "继续聊天")
            await bot.wait("1m")
        await bot.wait("5m")
        assert await ledger_sum(bot, "g1", "alice") == 5
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T10:00:00+08:00"}, db_url=url) as bot:
        db = bot.sim.app.db
        assert db is not None
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT ref, delta FROM points_ledger"))).all()
        assert [tuple(r) for r in rows] == [("activity:2026-12-01", 5)]


INVITE = (
    BASE_CONFIG
    + """    invite:
      enabled: true
      points: 10
      revoke_within_days: 3
      announce: "感谢 {inviter} 邀请 {members}，+{points}（共 {total}）"
"""
)


async def test_invite_points_and_their_revocation(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, INVITE), WORLD) as bot:
        await bot.join("g1", "erin", "frank", inviter="alice")
        assert "感谢 Alice 邀请 Erin、frank，+20（共 20）" in last_reply(bot, "感谢")
        await bot.join("g1", "gina")  # nobody invited her: nothing
        await bot.join("g1", "hank", inviter="wxid_bot")  # the bot's own invites pay nobody
        bot.assert_silent()
        await bot.wait("1d")
        await bot.leave("g1", "erin")  # within 3 days: taken back
        assert await ledger_sum(bot, "g1", "alice") == 10
        await bot.join("g1", "erin", inviter="alice")  # a rejoin pays nothing again
        assert await ledger_sum(bot, "g1", "alice") == 10
        await bot.wait("3d")
        await bot.leave("g1", "frank")  # after 3 days: kept
        assert await ledger_sum(bot, "g1", "alice") == 10
        await bot.say("g1", "alice", "积分明细")
        reply = last_reply(bot, "积分明细")
        assert "-10 邀请撤回" in reply and "+10 邀请（邀请Erin）" in reply


async def test_a_config_reload_loses_no_activity_points(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ACTIVITY)
    async with chat(load_everything(cfg), WORLD) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        await bot.say("g1", "alice", "大家早上好")
        assert await ledger_sum(bot, "g1", "alice") == 0  # still in memory
        assert await app.reload()
        assert await ledger_sum(bot, "g1", "alice") == 2  # the old state wrote it on shutdown
        await bot.wait("1m")
        await bot.say("g1", "alice", "继续聊天")
        await bot.wait("2m")  # the new state's own flush
        assert await ledger_sum(bot, "g1", "alice") == 4
