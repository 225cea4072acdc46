"""The games' configuration: the default config/bot.yaml enables them with Chinese texts;
mistakes are errors with file and line; games can be switched off per group."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.simulator import Simulation, load_scenario
from bot.app import load_everything
from bot.config.errors import ConfigError
from plugins.games.config import GamesConfig
from tests.harness import chat, write_config
from tests.plugins.games.common import WORLD, last

REPO = Path(__file__).resolve().parents[3]


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_the_default_config_enables_the_games_with_chinese_texts() -> None:
    loaded = load_everything(REPO / "config" / "bot.yaml")
    (games,) = [s for s in loaded.plugins if s.name == "games"]
    cfg = games.default
    assert isinstance(cfg, GamesConfig)
    sections = (cfg.lottery, cfg.poll, cfg.quiz, cfg.guess, cfg.dice)
    assert all(section.enabled for section in sections)
    for section in sections:
        for name, text in section.texts.model_dump().items():
            assert has_chinese(text), f"{type(section).__name__}.texts.{name} is not Chinese: {text!r}"
    assert len(cfg.quiz.questions) >= 3  # a bank to play with out of the box
    assert "games:" in (REPO / "config" / "bot.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("section", "problem", "line"),
    [
        ("    lottery:\n      join_replies: each\n", "plugins.games.lottery.join_replies: unknown key", 4),
        ('    lottery:\n      texts:\n        result: "{winner}"\n', "unknown placeholder {winner}", 5),
        ("    poll:\n      max_options: 1\n", "plugins.games.poll.max_options", 4),
        ("    guess:\n      low: 5\n      high: 6\n", "high must be at least low + 2", 3),
        ("    quiz:\n      bank:\n        - {question: q}\n", "plugins.games.quiz.bank[0]", 5),
    ],
)
def test_mistakes_are_reported_with_file_line_and_key(tmp_path: Path, section: str, problem: str, line: int) -> None:
    cfg = write_config(tmp_path, "plugins:\n  games:\n" + section)
    with pytest.raises(ConfigError) as err:
        load_everything(cfg)
    assert problem in str(err.value)
    assert f"bot.yaml:{line}:" in str(err.value)


async def test_a_game_can_be_switched_off_for_some_groups(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        """
        groups: [{id: g1}, {id: g2}]
        plugins:
          games:
            overrides:
              - groups: [g2]
                dice: {enabled: false}
                lottery: {enabled: false}
        """,
    )
    async with chat(cfg, WORLD) as bot:
        await bot.say("g2", "alice", "掷骰子")
        assert last(bot, "g2") == "本群没有开启这个游戏。"
        await bot.say("g2", "owner1", "发起抽奖 电影票")
        assert last(bot, "g2") == "本群没有开启这个游戏。"
        await bot.say("g1", "alice", "掷骰子")
        assert "掷出了" in last(bot, "g1")


async def test_help_lists_admin_commands_to_admins_only(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "plugins:\n  games: {}\n")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "alice", "帮助")
        member_help = last(bot)
        assert "【群活互动】" in member_help and "掷骰子" in member_help and "发起抽奖" not in member_help
        bot.new_actions()
        await bot.say("g1", "owner1", "帮助")
        # An admin's full menu goes privately; the group gets the member menu and a pointer.
        actions = bot.new_actions()
        private = "\n".join(a.text or "" for a in actions if a.action == "private" and a.to == "owner1")
        in_group = "\n".join(a.text or "" for a in actions if a.action == "say")
        assert "发起抽奖" in private and "开奖" in private
        assert "发起抽奖" not in in_group and "管理员命令已私聊发给你" in in_group


async def test_the_demo_scenario_runs_on_the_default_config() -> None:
    scenario, lines = load_scenario(REPO / "config" / "examples" / "games-demo.yaml")
    sim = Simulation(scenario, lines, load_everything(REPO / "config" / "bot.yaml"))
    texts = [a.text or "" for a in await sim.run()]
    assert any("投票（#1）" in t for t in texts)
    assert any("第 1/2 题" in t for t in texts)
    assert any("猜数字开始" in t for t in texts)
    assert any("掷出了" in t for t in texts)
    final = [t for t in texts if t.startswith("📊 投票结果")]
    assert len(final) == 1 and "2. 看电影：2 票" in final[0] and "3. 聚餐：1 票" in final[0]
