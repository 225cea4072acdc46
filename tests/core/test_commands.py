"""The one command tokenizer, table-driven over every command the shipped plugins declare:
each command bare, with a space, glued (when it declares a glued argument), with punctuation
around it (half- and full-width), and the chat forms that must not trigger it."""

from __future__ import annotations

import pytest

from bot.core import manage
from bot.core.commands import CommandTable, Match, trim_punctuation
from bot.core.dispatcher import plugin_names
from bot.core.loader import PluginSettings, available_plugins, import_plugin
from bot.core.plugin import CommandSpec, Plugin
from bot.core.text import normalize_for_command

PLUGINS: list[Plugin] = [manage.plugin, *(import_plugin(n) for n in available_plugins())]
SETTINGS = [PluginSettings(p, p.priority, p.config()) for p in sorted(PLUGINS, key=lambda p: p.priority)]
VOCAB = {"plugin": plugin_names(SETTINGS)}
PREFIXES = ["/", "#", "!"]


def table(scope: str) -> CommandTable:
    return CommandTable(
        [
            (w, spec)
            for s in SETTINGS
            for spec in s.plugin.commands
            if spec.scope in (scope, "both")
            for w in spec.words(s.default)
        ],
        VOCAB,
    )


GROUP, PRIVATE = table("group"), table("private")
# Every (word, spec) a member or admin can type in a group, first registration winning as in the table.
WORDS: dict[str, CommandSpec] = {}
for _s in SETTINGS:
    for _spec in _s.plugin.commands:
        if _spec.scope != "private":
            for _w in _spec.words(_s.default):
                WORDS.setdefault(_w, _spec)
CASES = sorted(WORDS.items())
IDS = [w for w, _ in CASES]


def parse(text: str, which: CommandTable = GROUP) -> Match | None:
    return which.parse(text, PREFIXES, "小助手")


def assert_command(text: str, spec: CommandSpec, args: tuple[str, ...] = ()) -> None:
    found = parse(text)
    assert found is not None, f"{text!r} should be {spec.word}"
    assert found.spec is spec and found.command.args == args, (text, found.spec.word, found.command.args)
    # The dispatcher's cheap pre-check (on the text it normalises once per message) lets it through.
    assert GROUP.may_start(normalize_for_command(text, "小助手"), PREFIXES), text


@pytest.mark.parametrize(("word", "spec"), CASES, ids=IDS)
def test_bare_and_prefixed(word: str, spec: CommandSpec) -> None:
    assert_command(word, spec)
    assert_command(f"/{word}", spec)
    assert_command(f"@小助手\u2005{word}", spec)


@pytest.mark.parametrize(("word", "spec"), CASES, ids=IDS)
@pytest.mark.parametrize(
    "form",
    [
        "{}！",
        "{}!",
        "{}~",
        "{}～",
        "{}。",
        "{}!!!",
        "【{}】",
        "「{}」",
        "“{}”",
        "《{}》",
        "({})",
        "（{}）",
        "　{}　",
        "{} ！",
    ],
)
def test_punctuation_around_the_word_is_ignored(word: str, spec: CommandSpec, form: str) -> None:
    assert_command(form.format(word), spec)


@pytest.mark.parametrize(("word", "spec"), CASES, ids=IDS)
def test_an_argument_after_a_space_half_or_full_width(word: str, spec: CommandSpec) -> None:
    assert_command(f"{word} 2", spec, ("2",))
    assert_command(f"{word}\u30002", spec, ("2",))  # U+3000, the full-width space
    if spec.glued is not None:
        assert_command(f"{word} 2！", spec, ("2",))
        assert_command(f"【{word} 2】", spec, ("2",))


GLUED_NUMBER = [(w, s) for w, s in CASES if s.glued == "number"]
GLUED_PLUGIN = [(w, s) for w, s in CASES if s.glued == "plugin"]


def test_the_glued_commands_are_the_ones_that_take_a_number_or_a_plugin_name() -> None:
    assert {w for w, _ in GLUED_NUMBER} >= {"投", "投票", "猜", "掷骰子", "开奖", "取消抽奖", "开始答题"}
    assert {w for w, _ in GLUED_PLUGIN} == {"开启", "打开", "关闭"}


@pytest.mark.parametrize(("word", "spec"), GLUED_NUMBER, ids=[w for w, _ in GLUED_NUMBER])
def test_a_number_glued_on(word: str, spec: CommandSpec) -> None:
    assert_command(f"{word}2", spec, ("2",))
    assert_command(f"{word}50！", spec, ("50",))
    assert_command(f"{word}２", spec, ("2",))  # full-width digit
    assert_command(f"{word}:2", spec, ("2",))
    assert_command(f"{word}第2", spec, ("第2",))
    # Anything but a number glued on is chat.
    for chat in (f"{word}资", f"{word}2个", f"{word}了吗", f"{word}1000万", f"{word}a"):
        assert parse(chat) is None, chat


@pytest.mark.parametrize(("word", "spec"), GLUED_PLUGIN, ids=[w for w, _ in GLUED_PLUGIN])
def test_a_plugin_name_glued_on(word: str, spec: CommandSpec) -> None:
    assert_command(f"{word}入群欢迎", spec, ("入群欢迎",))
    assert_command(f"{word}欢迎", spec, ("欢迎",))
    assert_command(f"{word}欢迎！", spec, ("欢迎",))
    assert_command(f"{word}打卡 g2", spec, ("打卡", "g2"))
    assert_command(f"{word}welcome", spec, ("welcome",))
    for chat in (f"{word}了吗", f"{word}一下", f"{word}吧"):
        assert parse(chat) is None, chat


@pytest.mark.parametrize(("word", "spec"), CASES, ids=IDS)
def test_ordinary_chat_starting_with_the_word_triggers_nothing(word: str, spec: CommandSpec) -> None:
    for chat in (f"{word}了吗", f"{word}好累", f"{word}啦啦啦", f"我{word}", f"{word}!今天"):
        found = parse(chat)
        assert found is None, (chat, found.spec.word if found else None)


@pytest.mark.parametrize(
    "text", ["签到了吗", "签到好累", "今天签到", "投资理财", "猜猜我是谁", "关闭了吗", "开启新生活", "2", "哈哈", ""]
)
def test_chat(text: str) -> None:
    assert parse(text) is None


def test_private_commands_have_their_own_table() -> None:
    found = parse("签到！", PRIVATE)
    assert found is not None and found.spec.scope == "private" and found.spec.plugin == "checkin"
    assert parse("投2", PRIVATE) is None  # a vote is a group command


def test_trim_punctuation() -> None:
    assert trim_punctuation(" 【进群】 ") == "进群"
    assert trim_punctuation("进群！！") == "进群"
    assert trim_punctuation("加群 读书~") == "加群 读书"
    assert trim_punctuation("@alice") == "@alice"  # a mention is not punctuation


def test_an_unknown_glued_vocabulary_is_an_error_at_load() -> None:
    plugin = Plugin("odd")

    @plugin.command("点歌", glued="songs")
    async def sing() -> None: ...

    with pytest.raises(ValueError, match="songs"):
        CommandTable([("点歌", plugin.commands[0])], VOCAB)


def test_two_plugins_cannot_share_a_name() -> None:
    one, two = Plugin("one", aliases=("游戏",)), Plugin("two", title="游戏")
    with pytest.raises(ValueError, match="游戏"):
        plugin_names([PluginSettings(p, 50, p.config()) for p in (one, two)])


def test_every_plugin_declares_chinese_aliases() -> None:
    for p in PLUGINS:
        if p.name != "core":
            assert p.aliases, p.name
    names = set(VOCAB["plugin"])
    for alias in (
        "欢迎",
        "签到",
        "打卡",
        "广告",
        "踢广告",
        "直播",
        "转播",
        "自动回复",
        "关键词",
        "游戏",
        "群发",
        "邀请",
        "加群",
        "统计",
        "群数据",
    ):
        assert alias in names, alias
