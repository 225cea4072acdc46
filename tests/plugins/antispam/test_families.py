"""Every ad family of issue 13 caught through the full pipeline (simulator, real plugins, the
shipped text model), in wording written for this test, not taken from the corpus; and the
hard normal messages of long-time members left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import chat, write_config

CONFIG = """
bot_admins: [boss]
groups:
  - {id: g1, name: 小区业主群}
plugins:
  antispam: {}
"""

WORLD = {
    "contacts": [{"id": "owner1", "name": "群主"}, {"id": "old", "name": "老邻居"}, {"id": "boss", "name": "老板"}],
    "groups": [{"id": "g1", "topic": "小区业主群", "owner": "owner1", "admins": [], "members": ["owner1", "old"]}],
}

# (family, message step without group/from): each from a member who joined a minute before.
ADS = [
    ("get_rich", {"text": "新出的矿机项目，投一千每天返三十，已经回本了，想了解的私我"}),
    ("get_rich", {"text": "跟着老师做黄金，今晚点位已经给出来了，群里兄弟都吃到肉了"}),
    ("weishang", {"text": "姐妹们，我最近在用的这款酵素，一个月掉了八斤，想要的私我～"}),
    ("weishang", {"text": "🔥全场五折🔥 ⏰仅限今天 👉 手慢无"}),
    ("contact_handle", {"text": "有需要的加我 ➕ 威：mm2026shop"}),
    ("contact_handle", {"text": "详情咨询 +86 139 8765 4321（同微）"}),
    ("local_service", {"text": "专业开锁换锁，配汽车钥匙，二十分钟上门，电话一三九八七六五四三二一"}),
    ("local_service", {"text": "王者荣耀代练，包上星耀，价格美丽，需要的滴滴"}),
    ("adult", {"text": "一个人在家好无聊，想找个哥哥聊聊天，看我头像懂的来"}),
    ("group_pull", {"text": "想进福利群的扣1，我拉你们"}),
    ("group_pull", {"text": "朋友圈每天都有惊喜哦，记得去看我朋友圈"}),
    ("qr_image", {"kind": "image", "text": ""}),
    ("qr_image", {"kind": "image", "text": "扫码进群领红包"}),
    ("part_time", {"text": "招手机打字员，在家就能做，日结两百，宝妈学生优先"}),
    ("loan", {"text": "急用钱的看过来，不看征信，身份证就能下款，当天到账"}),
    ("gambling", {"text": "彩票计划群，每天稳赢回血，带你上岸"}),
    ("fake_official", {"text": "【社保中心】您的医保卡已冻结，请点击链接 http://yb-gov.top 重新认证"}),
    ("account_trade", {"text": "高价收微信号，老号新号都要，当天结算"}),
    ("education", {"text": "本硕论文代写，查重包过，不过全额退款"}),
]

NORMAL = [
    "物业电话是 0571-8888 6666，停水的事可以打这个问问",
    "新闻说下周降温了，大家注意给孩子加衣服 https://news.qq.com/a/20261206A01",
    "上次团购的橙子挺甜的，我又买了两箱",
    "刚才有人说扣1拉进福利群，大家别信，是骗子",
    "谁知道小区门口那家修鞋的几点关门",
    # a number spelled in characters, as older members type it: evidence from a newcomer only
    # (the same spelling in the local_service ad above is caught)
    "开锁师傅电话 一三九 零零幺二 三四五六，晚上也能来",
]


@pytest.mark.parametrize(("family", "step"), ADS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(ADS)])
async def test_every_family_is_caught_from_a_new_member(tmp_path: Path, family: str, step: dict[str, str]) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g1", "newbie")
        await bot.wait("1m")
        bot.new_actions()
        await bot.step(group="g1", **{"from": "newbie"}, **step)
        await bot.wait("5s")
        acted = [
            a
            for a in bot.new_actions()
            if a.action == "kick" or (a.action == "say" and "请勿发布广告" in (a.text or ""))
        ]
        assert acted, f"{family}: {step} was not acted on"


async def test_long_time_members_hard_normal_messages_are_left_alone(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        for text in NORMAL:
            await bot.say("g1", "old", text)
        await bot.wait("5s")
        bot.assert_silent()


async def test_a_pitch_slipped_into_a_solitaire_by_a_long_time_member_is_caught(tmp_path: Path) -> None:
    # The whole 接龙 reads as ordinary chat to the text model (its honest lines dilute the
    # pitch); its last line alone does not.
    solitaire = (
        "#接龙 周日社区义诊报名\n1. 张阿姨\n2. 李叔叔\n3. 王奶奶\n"
        "4. 另外家里老人腿脚不好的可以试试我们的氨糖，喝一个月上楼不喘"
    )
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "old", solitaire)
        await bot.wait("5s")
        assert any(a.action == "say" and "请勿发布广告" in (a.text or "") for a in bot.new_actions())
