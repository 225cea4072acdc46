"""Third-party plugins: found through the `qunbot.plugins` entry points, their tables made by
their own migration branch (`qunbot.migrations`). The example package examples/qunbot-thanks
is what CI installs; the discovery faults use stand-in entry points."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from bot.app import load_everything
from bot.config.errors import ConfigError
from bot.core import loader
from bot.storage import db as storage_db
from bot.storage.db import Database, PluginMigrationsError
from tests.harness import chat, write_config

THANKS_INSTALLED = any(ep.name == "thanks" for ep in entry_points(group=loader.ENTRY_POINT_GROUP))
needs_thanks = pytest.mark.skipif(
    not THANKS_INSTALLED,
    reason="the example plugin is not installed (pip install -e examples/qunbot-thanks; .ci/run does)",
)

CONFIG = """
groups:
  - {id: g1, name: 宝妈交流群}
plugins:
  thanks:
    top: 3
"""


@needs_thanks
async def test_the_example_plugin_loads_through_its_entry_point_and_keeps_its_table(tmp_path: Path) -> None:
    loaded = load_everything(write_config(tmp_path, CONFIG))
    thanks = next(s for s in loaded.plugins if s.name == "thanks")
    assert thanks.plugin.config.__module__ == "qunbot_thanks"  # the installed package, not plugins/
    assert thanks.default.top == 3  # type: ignore[attr-defined]  # PluginSettings holds the base PluginConfig
    async with chat(loaded) as bot:
        await bot.say("g1", "alice", "谢谢 @Bob 帮我找到了资料", mentions=["bob"])
        bot.assert_said("g1", contains="已记下：Alice 感谢 Bob（本群累计收到 1 次感谢）")
        await bot.say("g1", "carol", "感谢 @Bob", mentions=["bob"])
        await bot.say("g1", "bob", "多谢 @Alice", mentions=["alice"])
        await bot.say("g1", "alice", "@Bob 你好", mentions=["bob"])  # no thanks word: not counted
        await bot.say("g1", "alice", "感谢榜")
        board = bot.assert_said("g1", contains="感谢榜")
    assert board.text == "感谢榜\n1. Bob：2 次\n2. Alice：1 次"


@needs_thanks
def test_the_example_plugins_config_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG.replace("top: 3", "top: 3\n    colour: red"))
    with pytest.raises(ConfigError) as err:
        load_everything(path)
    assert f"{path}:7" in str(err.value) and "plugins.thanks.colour" in str(err.value)


@dataclass
class FakeDist:
    name: str
    version: str = "1.0"


@dataclass
class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint: what the loader reads of one."""

    name: str
    value: str
    dist: FakeDist
    error: Exception | None = None
    module: Any = None

    def load(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.module


def _installed(monkeypatch: pytest.MonkeyPatch, module: Any, *eps: FakeEntryPoint) -> None:
    monkeypatch.setattr(module, "entry_points", lambda group: list(eps))


def test_a_plugin_named_like_a_builtin_one_is_refused_naming_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(monkeypatch, loader, FakeEntryPoint("welcome", "shady_welcome:plugin", FakeDist("shady-welcome", "2.1")))
    with pytest.raises(ConfigError) as err:
        load_everything(write_config(tmp_path, "plugins:\n  welcome: {}\n"))
    message = str(err.value)
    assert "shady-welcome 2.1" in message and "'welcome' is a built-in plugin" in message
    assert "rename its entry point" in message


def test_two_distributions_declaring_one_plugin_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(
        monkeypatch,
        loader,
        FakeEntryPoint("quiz2", "a_quiz:plugin", FakeDist("a-quiz")),
        FakeEntryPoint("quiz2", "b_quiz:plugin", FakeDist("b-quiz")),
    )
    with pytest.raises(ConfigError) as err:
        load_everything(write_config(tmp_path, "plugins:\n  welcome: {}\n"))
    assert "a-quiz 1.0" in str(err.value) and "b-quiz 1.0" in str(err.value)


def test_a_broken_entry_point_is_a_config_error_naming_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = FakeEntryPoint(
        "fortune",
        "qunbot_fortune:plugin",
        FakeDist("qunbot-fortune", "0.3"),
        error=ModuleNotFoundError("No module named 'numpyy'"),
    )
    _installed(monkeypatch, loader, broken)
    path = write_config(tmp_path, "groups:\n  - {id: g1}\nplugins:\n  fortune: {}\n")
    with pytest.raises(ConfigError) as err:
        load_everything(path)
    message = str(err.value)
    assert f"{path}:4" in message and "plugins.fortune" in message
    assert "qunbot-fortune 0.3" in message and "ModuleNotFoundError: No module named 'numpyy'" in message


def test_an_installed_plugin_not_enabled_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = FakeEntryPoint("fortune", "qunbot_fortune:plugin", FakeDist("qunbot-fortune"), error=RuntimeError("boom"))
    _installed(monkeypatch, loader, broken)
    loaded = load_everything(write_config(tmp_path, "plugins:\n  welcome: {}\n"))
    assert [s.name for s in loaded.plugins if s.name != "core"] == ["welcome"]


def test_an_entry_point_without_a_declaration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, loader, FakeEntryPoint("empty", "qunbot_empty", FakeDist("qunbot-empty"), module=object()))
    with pytest.raises(ConfigError) as err:
        load_everything(write_config(tmp_path, "plugins:\n  empty: {}\n"))
    assert "qunbot-empty 1.0" in str(err.value) and "no `plugin = Plugin(...)` declaration" in str(err.value)


def test_a_broken_migrations_entry_point_names_its_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = FakeEntryPoint(
        "fortune", "qunbot_fortune.migrations", FakeDist("qunbot-fortune", "0.3"), error=ImportError("x")
    )
    _installed(monkeypatch, storage_db, broken)
    with pytest.raises(PluginMigrationsError, match=r"qunbot-fortune 0\.3.*failed to import: ImportError: x"):
        storage_db.installed_version_locations()
    _installed(
        monkeypatch,
        storage_db,
        FakeEntryPoint("fortune", "qunbot_fortune.db", FakeDist("qunbot-fortune"), module=object()),
    )
    with pytest.raises(PluginMigrationsError, match="must name a package"):
        storage_db.installed_version_locations()


@needs_thanks
async def test_the_example_plugins_branch_is_applied_beside_the_core(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    try:
        assert "thanks_0001" in await db.revisions()
    finally:
        await db.close()
