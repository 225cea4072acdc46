"""The core's own commands, as units: finding a plugin by any of its names, and packing a
menu into messages between sections."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bot.core.manage import find_plugin, pack_sections
from bot.core.plugin import Plugin


def host(plugin: Plugin) -> Any:
    return SimpleNamespace(name=plugin.name, settings=SimpleNamespace(plugin=plugin))


HOSTS = [
    host(Plugin("core", title="基础")),
    host(Plugin("welcome", title="入群欢迎", aliases=("欢迎", "迎新"))),
    host(Plugin("checkin", title="签到打卡", aliases=("签到", "打卡"))),
    host(Plugin("games", title="群活互动", aliases=("游戏", "抽奖"))),
]


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("欢迎", "welcome"),
        ("入群欢迎", "welcome"),
        ("welcome", "welcome"),
        ("WELCOME", "welcome"),
        ("迎新！", "welcome"),
        ("【打卡】", "checkin"),
        ("游戏", "games"),
    ],
)
def test_a_plugin_is_found_by_title_alias_or_id(name: str, found: str) -> None:
    plugin, suggestions = find_plugin(HOSTS, name)
    assert plugin is not None and plugin.name == found and suggestions == []


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("欢乐", ["入群欢迎"]),
        ("签到功能", ["签到打卡"]),
        ("欢迎语", ["入群欢迎"]),
        ("抽奖游戏", ["群活互动"]),
        ("wellcome", ["入群欢迎"]),
    ],
)
def test_an_unknown_name_gets_the_closest(name: str, suggested: list[str]) -> None:
    plugin, suggestions = find_plugin(HOSTS, name)
    assert plugin is None and suggestions == suggested


def test_nothing_close_and_the_core_is_never_found() -> None:
    assert find_plugin(HOSTS, "天气预报") == (None, [])
    assert find_plugin(HOSTS, "基础") == (None, [])


def test_menus_are_split_between_sections_never_inside() -> None:
    sections = [(f"【第{i}节】", [f"  命令{i}-{j}：说明" for j in range(6)]) for i in range(5)]
    messages = pack_sections("菜单：", sections, limit=150)
    assert len(messages) > 1 and messages[0].startswith("菜单：")
    for message in messages:
        lines = message.splitlines()
        titles = [line for line in lines if line.startswith("【")]
        # Each message holds whole sections: six entries per title.
        assert len([line for line in lines if line.startswith("  ")]) == 6 * len(titles)
        assert len(message) <= 150 or len(titles) == 1
    assert "\n".join(messages).count("【") == 5


def test_a_short_menu_is_one_message() -> None:
    assert pack_sections("菜单：", [("【甲】", ["  a：b"]), ("", ["管理员命令已私聊发给你。"])], 1500) == [
        "菜单：\n【甲】\n  a：b\n管理员命令已私聊发给你。"
    ]
