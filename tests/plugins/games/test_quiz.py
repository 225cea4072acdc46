"""答题: a question bank from YAML, the first correct answer wins ledger points, timeouts
reveal the answer, and a bad bank file is a config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import load_everything
from bot.config.errors import ConfigError
from bot.storage.points import PointsLedger
from tests.harness import chat, write_config
from tests.plugins.games.common import WORLD, config, last, said_texts

ONE = """
plugins:
  games:
    quiz:
      points: 7
      timeout_seconds: 30
      bank:
        - {question: "中国的首都是哪座城市？", answers: [北京, 北京市], hint: 两个字}
"""


async def test_first_correct_answer_wins_points_in_the_ledger(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, ONE), WORLD) as bot:
        await bot.say("g1", "owner1", "出题")
        assert "中国的首都是哪座城市？" in last(bot) and "30 秒" in last(bot)
        await bot.say("g1", "alice", "提示")
        assert "两个字" in last(bot)
        await bot.say("g1", "alice", "上海")  # wrong: nothing happens
        assert "两个字" in last(bot)
        await bot.say("g1", "bob", "北京市！")  # normalised: punctuation ignored, any listed answer
        win = bot.said("g1")[-1]
        assert win.mentions == ["bob"] and "答对了" in (win.text or "") and "7 积分（共 7 分）" in (win.text or "")
        await bot.say("g1", "alice", "北京")  # too late: ordinary chat
        assert "答对了" in last(bot) and bot.said("g1")[-1].mentions == ["bob"]
        ledger = PointsLedger(bot.sim.app.db)  # type: ignore[arg-type]
        assert await ledger.total("g1", "bob") == 7
        (entry,) = await ledger.history("g1", "bob")
        assert entry.reason == "game:quiz" and entry.ref == "game:quiz:1"
        assert await ledger.total("g1", "alice") == 0
        await bot.wait("5m")
        assert not bot.said("g1", contains="时间到")  # answered: no timeout afterwards


async def test_timeout_reveals_the_answer_and_a_session_goes_through_the_bank(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "开始答题 4")
        assert "第 1/4 题" in last(bot)
        await bot.wait("61s")
        texts = said_texts(bot)
        assert "时间到" in texts[-2] and "第 2/4 题" in texts[-1]
        await bot.wait("3m")
        assert "答题结束" in last(bot)
        questions = [t.split("：\n", 1)[1] for t in said_texts(bot) if "题（60 秒内作答）" in t]
        # Three questions in the bank: all three come before any repeats.
        assert len(questions) == 4 and len(set(questions[:3])) == 3 and questions[3] in questions[:3]
        await bot.say("g1", "alice", "北京")
        assert "答对了" not in last(bot)


async def test_admin_stops_a_round_and_starting_twice_is_refused(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "开始答题 3")
        await bot.say("g1", "carol", "开始答题")
        assert "正在答题中" in last(bot)
        await bot.say("g1", "owner1", "结束答题")
        assert "答题已结束" in last(bot) and "答案是" in last(bot)
        await bot.wait("5m")
        assert not bot.said("g1", contains="第 2/3 题")
        await bot.say("g1", "owner1", "结束答题")
        assert "现在没有在答题" in last(bot)
        await bot.say("g1", "owner1", "开始答题 99")
        assert "1~20 之间" in last(bot)
        await bot.say("g1", "owner1", "开始答题 abc")
        assert "用法：开始答题" in last(bot)


async def test_an_open_question_survives_a_restart(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'quiz.db'}"
    cfg = write_config(tmp_path, ONE)
    async with chat(cfg, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "owner1", "出题")
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T08:00:10+08:00"}, db_url=db_url) as bot:
        await bot.say("g1", "alice", "北京")
        assert "答对了" in last(bot)
        await bot.say("g1", "owner1", "出题")
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T09:00:00+08:00"}, db_url=db_url) as bot:
        await bot.finish()
        assert "时间到" in last(bot) and "北京" in last(bot)  # overdue at start: revealed


async def test_bank_files_and_an_empty_bank(tmp_path: Path) -> None:
    bank = tmp_path / "bank.yaml"
    bank.write_text("questions:\n  - {question: 天空是什么颜色？, answer: 蓝色}\n", encoding="utf-8")
    cfg = write_config(tmp_path, f"plugins:\n  games:\n    quiz:\n      bank_files: [{bank}]\n")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "owner1", "出题")
        assert "天空是什么颜色" in last(bot)
        await bot.say("g1", "alice", "蓝色")
        assert "答对了" in last(bot) and "10 积分" in last(bot)
    empty = write_config(tmp_path, "plugins:\n  games: {}\n", "empty.yaml")
    async with chat(empty, WORLD) as bot:
        await bot.say("g1", "owner1", "出题")
        assert "题库是空的" in last(bot)


@pytest.mark.parametrize(
    ("bank", "problem"),
    [
        (None, "cannot read question bank"),
        ("- {question: 没有答案}\n", "answers"),
        ("- {question: q, answers: ['  ']}\n", "non-empty answer"),
        ("[unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_bank_file_is_a_config_error_with_file_and_line(tmp_path: Path, bank: str | None, problem: str) -> None:
    path = tmp_path / "bank.yaml"
    if bank is not None:
        path.write_text(bank, encoding="utf-8")
    cfg = write_config(tmp_path, f"plugins:\n  games:\n    quiz:\n      bank_files: [{path}]\n")
    with pytest.raises(ConfigError) as err:
        load_everything(cfg)
    assert "bot.yaml:" in str(err.value) and "plugins.games.quiz" in str(err.value) and problem in str(err.value)
