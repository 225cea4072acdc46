"""The relay graph and message rendering as pure functions (no pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot.core.events import GroupMessage, Member, MessageKind
from plugins.relay.config import DEFAULT_LABELS, RelayConfig
from plugins.relay.graph import Link, RelayGraph, message_body, strip_question

EVERYONE: frozenset[str] = frozenset()


def graph(*relays: dict[str, object], sets: dict[str, set[str]] | None = None) -> RelayGraph:
    config = RelayConfig.model_validate({"relays": list(relays)})

    def resolve(selectors: list[str]) -> set[str]:
        out: set[str] = set()
        for s in selectors:
            out |= (sets or {}).get(s.removeprefix("set:"), {s})
        return out

    return RelayGraph.build(config, resolve)


def always(_link: Link) -> frozenset[str] | None:
    return EVERYONE


def targets(
    g: RelayGraph,
    origin: str,
    speaker: str = "x",
    activity: Callable[[Link], frozenset[str] | None] = always,
    allow: Callable[[str], bool] = lambda _: True,
) -> list[str]:
    return [d.target for d in g.reach(origin, speaker, activity, allow)]


@pytest.mark.parametrize(
    ("relays", "origin", "expected"),
    [
        ([{"name": "l", "source": "s", "targets": ["a", "b"]}], "s", ["a", "b"]),
        ([{"name": "l", "source": "s", "targets": ["a", "b"]}], "a", []),  # one-way
        ([{"name": "m", "mesh": ["a", "b", "c"]}], "b", ["a", "c"]),
        # a directed ring: around once, never back to the origin
        (
            [
                {"name": "1", "source": "a", "targets": ["b"]},
                {"name": "2", "source": "b", "targets": ["c"]},
                {"name": "3", "source": "c", "targets": ["a"]},
            ],
            "a",
            ["b", "c"],
        ),
        # two meshes sharing a group, plus a lecture into both: each group once
        (
            [
                {"name": "m1", "mesh": ["a", "b"]},
                {"name": "m2", "mesh": ["b", "c"]},
                {"name": "l", "source": "s", "targets": ["a", "c"]},
            ],
            "s",
            ["a", "c", "b"],
        ),
        ([{"name": "m1", "mesh": ["a", "b"]}, {"name": "m2", "mesh": ["b", "c"]}], "a", ["b", "c"]),
    ],
)
def test_reach_visits_each_reachable_group_once(
    relays: list[dict[str, object]], origin: str, expected: list[str]
) -> None:
    assert targets(graph(*relays), origin) == expected


def test_speakers_inactive_links_and_switched_off_groups() -> None:
    g = graph({"name": "l", "source": "s", "targets": ["a"], "speakers": ["t"]}, {"name": "m", "mesh": ["a", "b"]})

    def activity(link: Link) -> frozenset[str] | None:
        return frozenset(link.spec.speakers)

    assert targets(g, "s", "t", activity=activity) == ["a", "b"]  # chained through the mesh
    assert targets(g, "s", "someone", activity=activity) == []
    assert targets(g, "s", "t", activity=lambda link: None if link.name == "m" else EVERYONE) == ["a"]
    assert targets(g, "s", "t", activity=activity, allow=lambda gid: gid != "a") == []  # not crossed either


def test_sets_expand_and_the_source_is_never_its_own_target() -> None:
    g = graph({"name": "l", "source": "s", "targets": ["set:aud"]}, sets={"aud": {"s", "b", "a"}})
    assert g.links[0].targets == ("a", "b")
    assert g.involves("s") and g.involves("a") and not g.involves("zzz")
    assert [link.name for link in g.question_links("a")] == ["l"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("提问：几点睡？", "几点睡？"),
        ("提问 几点睡？", "几点睡？"),
        ("提问:几点睡", "几点睡"),
        ("  提问，午睡多久", "午睡多久"),
        ("提问", None),
        ("我想提问", None),
        ("问题 多久", None),
    ],
)
def test_strip_question(text: str, expected: str | None) -> None:
    assert strip_question(text, ["提问"]) == expected


def msg(kind: MessageKind, text: str = "", url: str | None = None) -> GroupMessage:
    return GroupMessage(
        at=datetime(2026, 12, 1, tzinfo=UTC), group_id="g", sender=Member("m", "M"), text=text, kind=kind, url=url
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (msg(MessageKind.TEXT, " 你好 "), "你好"),
        (msg(MessageKind.TEXT, ""), None),
        (msg(MessageKind.URL, "文章", "http://x"), "文章 http://x"),
        (msg(MessageKind.URL, "看 http://x", "http://x"), "看 http://x"),
        (msg(MessageKind.IMAGE), "[图片]"),
        (msg(MessageKind.FILE, "a.pdf"), "[文件] a.pdf"),
        (msg(MessageKind.MINI_PROGRAM, "拼团", "http://m"), "[小程序] 拼团 http://m"),
        (msg(MessageKind.SYSTEM, "x 撤回了一条消息"), None),
    ],
)
def test_message_body(event: GroupMessage, expected: str | None) -> None:
    assert message_body(event, list(MessageKind), DEFAULT_LABELS) == expected


def test_kinds_filter_and_partial_labels() -> None:
    config = RelayConfig.model_validate({"kinds": ["text"], "labels": {"image": "（图）"}})
    assert message_body(msg(MessageKind.IMAGE), config.kinds, config.labels) is None
    assert config.labels[MessageKind.IMAGE] == "（图）" and config.labels[MessageKind.FILE] == "[文件]"
    with pytest.raises(ValueError, match="system messages are never relayed"):
        RelayConfig.model_validate({"kinds": ["text", "system"]})
