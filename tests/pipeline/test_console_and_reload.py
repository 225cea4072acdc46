"""The console adapter (`qunbot run` on piped input) and config hot reload."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.app import load_everything
from bot.runner import run_bot
from tests.harness import chat, write_config

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
bot: {id: wxid_bot, name: 小助手}
storage: {url: "sqlite+aiosqlite:///%(db)s"}
groups: [{id: g1, name: 宝妈交流群}]
plugins:
  welcome:
    text: "欢迎 {members} 加入{group}"
  keyword_reply:
    rules:
      - {keywords: [群规], replies: ["群规：不发广告"]}
"""


async def test_piped_console_lines_show_welcome_and_replies(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path, CONFIG % {"db": tmp_path / "c.db"})
    lines = "+g1 carol dave < alice\ng1 alice: 群规\n# a comment\nnot a valid line\npm bob: 你好\n"
    assert await run_bot(cfg, source=io.StringIO(lines)) == 0
    out, err = capsys.readouterr()
    assert "[g1 宝妈交流群] 小助手: 群规：不发广告" in out
    assert "欢迎 @carol\u2005@dave 加入宝妈交流群" in out
    assert "cannot read 'not a valid line'" in err


def test_make_run_style_pipe_through_the_cli(tmp_path: Path) -> None:
    """The README's example: lines piped into `qunbot run` with the default config."""
    # This tree's code, whatever `bot` the environment has installed (it runs in tmp_path).
    env = {**os.environ, "QUNBOT_LOG": "WARNING", "PYTHONPATH": str(REPO)}
    db = tmp_path / "run.db"
    cfg = (
        (REPO / "config" / "bot.yaml")
        .read_text(encoding="utf-8")
        .replace("sqlite+aiosqlite:///data/qunbot.db", f"sqlite+aiosqlite:///{db}")
    )
    path = tmp_path / "bot.yaml"
    path.write_text(cfg, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        input="+g1 carol dave < alice\ng1 alice: 群规\ng1 bob: 早上好\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "📌 群规" in out and "欢迎 @carol" in out
    assert any(greeting in out for greeting in ("早上好 ☀️", "今天也要加油", "记得吃早饭"))


async def test_reload_applies_a_valid_file_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, CONFIG % {"db": tmp_path / "r.db"})
    async with chat(load_everything(cfg)) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        await bot.say("g1", "alice", "群规")
        bot.assert_said("g1", contains="不发广告")
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("群规：不发广告", "新群规"), encoding="utf-8")
        assert await app.reload()
        await bot.say("g1", "bob", "群规")
        bot.assert_said("g1", contains="新群规")
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("replies:", "replys:"), encoding="utf-8")
        assert not await app.reload()  # rejected: the running rules stay
        await bot.say("g1", "alice", "群规")
        assert len(bot.said("g1", contains="新群规")) == 2


def test_a_piped_run_whose_sends_fail_still_ends_soon_after_its_input(tmp_path: Path) -> None:
    """Sends that cannot succeed (the bot has left g1; a relay target it was never in) are
    retried a bounded number of times, quickly on the console, and never hold the run: it
    exits seconds after the input ends, having said what it could, with the unreachable
    target named at start-up and in the 开始直播 answer."""
    import time

    env = {**os.environ, "QUNBOT_LOG": "WARNING", "PYTHONPATH": str(REPO)}
    cfg = (
        (REPO / "config" / "bot.yaml")
        .read_text(encoding="utf-8")
        .replace("sqlite+aiosqlite:///data/qunbot.db", f"sqlite+aiosqlite:///{tmp_path / 'run.db'}")
        .replace("targets: [set:learning]", "targets: [set:learning, g9]")
    )
    path = tmp_path / "bot.yaml"
    path.write_text(cfg, encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        input="-g3 wxid_qunbot\ng1 owner1: 开始直播\ng1 owner1: 大家好\ng3 alice: 签到\ng3 bob: 签到\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 40, elapsed  # the outbox's real-account back-off (60 s, 120 s) would take minutes
    out, err = proc.stdout, proc.stderr
    assert "转发「讲座」: g9" in err  # the start-up log
    assert (  # as the README shows it
        "小助手: 🎙️ 直播「讲座」开始：所有人的发言将同步到 1 个群（读书打卡群）。\n"
        "⚠️ 机器人不在这些群里，无法同步：英语学习群、g9\n结束时发送“结束直播”。\n"
    ) in out
    assert "[g2 读书打卡群] 小助手: 【owner1】大家好" in out
    # The merged check-in reply for g3 (which the bot left) is tried at shutdown, retried twice, given up.
    assert "say to g3 failed after 3 attempt(s), giving up" in err
    assert "say to g9" not in err  # never attempted
