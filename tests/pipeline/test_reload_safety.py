"""Config hot reload that cannot hurt: an empty or cut-off file is refused and the bot admins
are told why (FILE:LINE); a reload that switches plugins off or removes broadcasts tells them
what; the watch survives editors' atomic saves; `check-config --diff` shows what a reload
would change."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app as cli
from bot.config.diff import applied_snapshot
from bot.runner import watch_config
from tests.harness import Chat, chat, write_config

CONFIG = """\
bot_admins: [owner1]
groups: [{id: g1, name: 宝妈交流群}]
outbox: {min_gap: 0, jitter: 0}
plugins:
  welcome:
    text: "欢迎 {members}"
  keyword_reply:
    rules:
      - {keywords: [群规], replies: ["群规：不发广告"]}
  broadcast:
    broadcasts:
      morning: {cron: "0 8 * * *", to: g1, text: 早上好}
      evening: {cron: "0 20 * * *", to: g1, text: 晚上好}
"""


def admin_notes(bot: Chat) -> list[str]:
    return [a.text or "" for a in bot.sim.actions if a.action == "private" and a.to == "owner1"]


async def test_an_empty_file_is_refused_and_the_admins_are_told_where(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, CONFIG)
    async with chat(load_everything(cfg)) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        cfg.write_text("", encoding="utf-8")
        assert not await app.reload()
        await bot.wait("1s")
        [note] = admin_notes(bot)
        assert "没有重新加载" in note and f"{cfg}:1: <root>: the file has no settings" in note
        await bot.say("g1", "alice", "群规")  # the running rules stay
        bot.assert_said("g1", contains="不发广告")
        assert sorted(app.dispatcher.runtime.hosts) == ["broadcast", "core", "keyword_reply", "welcome"]


async def test_a_file_cut_off_half_way_is_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, CONFIG)
    async with chat(load_everything(cfg)) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        cfg.write_text(CONFIG[: CONFIG.index("plugins:")], encoding="utf-8")  # valid YAML, no plugins
        assert not await app.reload()
        await bot.wait("1s")
        [note] = admin_notes(bot)
        assert f"{cfg}:3: plugins: missing, but the running config has it: the file looks cut off" in note
        assert "welcome" in app.dispatcher.runtime.hosts  # nothing was switched off


async def test_switching_plugins_off_and_removing_broadcasts_is_applied_and_told(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, CONFIG)
    async with chat(load_everything(cfg)) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        changed = CONFIG.replace('  welcome:\n    text: "欢迎 {members}"\n', "").replace(
            '      evening: {cron: "0 20 * * *", to: g1, text: 晚上好}\n', ""
        )
        cfg.write_text(changed.replace("min_gap: 0", "min_gap: 0.5"), encoding="utf-8")
        assert await app.reload()
        await bot.wait("1s")
        [note] = admin_notes(bot)
        assert "以下功能已关闭或删除" in note
        assert "- 「入群欢迎」功能已关闭（plugins.welcome）" in note
        assert "- 定时群发「evening」已删除，不会再发送（plugins.broadcast.broadcasts.evening）" in note
        assert "min_gap" not in note  # only what was switched off or removed is worth a message
        assert "welcome" not in app.dispatcher.runtime.hosts
        # A reload that only changes a value tells nobody.
        cfg.write_text(changed.replace("min_gap: 0", "min_gap: 1"), encoding="utf-8")
        assert await app.reload()
        await bot.wait("1s")
        assert len(admin_notes(bot)) == 1


def _atomic_save(path: Path, text: str) -> None:
    """What editors do: write a temporary file beside it, then rename it over the original."""
    temporary = path.with_name(f".{path.name}.swp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


async def _until(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the config was not reloaded"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("polling", ["", "true"])
async def test_the_watch_survives_atomic_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, polling: str) -> None:
    # QUNBOT_CONFIG_POLL (docker-compose sets it): mounts that deliver no change events still reload.
    monkeypatch.setenv("QUNBOT_CONFIG_POLL", polling)
    cfg = write_config(tmp_path, CONFIG)
    async with chat(load_everything(cfg)) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        watcher = asyncio.create_task(watch_config(app, cfg, debounce_ms=50))
        try:
            await _until(lambda: applied_snapshot(cfg).exists())  # watching, and the snapshot is kept
            await asyncio.sleep(1.5 if polling else 0.3)  # the watcher's first look at the folder
            for n in (1, 2, 3):  # a watch on the file itself would fire once, then follow the deleted inode
                if polling:  # polling compares modification times to the second: saves a second apart, as by hand
                    await asyncio.sleep(1.1)
                _atomic_save(cfg, CONFIG.replace("群规：不发广告", f"第{n}版群规"))
                await _until(lambda n=n: f"第{n}版群规" in str(app.config.plugins["keyword_reply"]))
            await bot.say("g1", "alice", "群规")
            bot.assert_said("g1", contains="第3版群规")
            assert "第3版群规" in applied_snapshot(cfg).read_text(encoding="utf-8")
        finally:
            watcher.cancel()


def test_check_config_diff_shows_what_a_reload_would_change(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, CONFIG)
    runner = CliRunner()
    missing = runner.invoke(cli, ["check-config", str(cfg), "--diff"])
    assert missing.exit_code == 2 and ".bot.yaml.applied: not found" in missing.output
    applied_snapshot(cfg).write_text(CONFIG, encoding="utf-8")  # as the running bot leaves it
    same = runner.invoke(cli, ["check-config", str(cfg), "--diff"])
    assert same.exit_code == 0 and "a reload changes nothing (against the running bot's config)" in same.output
    cfg.write_text(
        CONFIG.replace('  welcome:\n    text: "欢迎 {members}"\n', "").replace("min_gap: 0,", "min_gap: 2,"),
        encoding="utf-8",
    )
    changed = runner.invoke(cli, ["check-config", str(cfg), "--diff"])
    assert changed.exit_code == 0, changed.output
    assert "a reload would change (2, against the running bot's config):" in changed.output
    assert "outbox.min_gap: 0.0 → 2.0" in changed.output
    assert "plugins.welcome: removed — the welcome plugin is switched off" in changed.output
    cfg.write_text("bot_admins: [owner1]\n", encoding="utf-8")  # cut off: refused, as a reload would be
    cut = runner.invoke(cli, ["check-config", str(cfg), "--diff"])
    assert cut.exit_code == 2 and f"{cfg}:1: plugins: missing, but the running config has it" in cut.output
    # --against compares with any file; plain check-config is as it was.
    other = tmp_path / "old.yaml"
    other.write_text(CONFIG, encoding="utf-8")
    cfg.write_text(CONFIG.replace("早上好", "早安"), encoding="utf-8")
    against = runner.invoke(cli, ["check-config", str(cfg), "--against", str(other)])
    assert "plugins.broadcast.broadcasts.morning.text: '早上好' → '早安'" in against.output
    plain = runner.invoke(cli, ["check-config", str(cfg)])
    assert plain.exit_code == 0 and "reload" not in plain.output
