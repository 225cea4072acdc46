"""The relay plugin's configuration (the `plugins.relay` section of bot.yaml)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from bot.config.refs import GroupRefs, GroupSelectors
from bot.core.events import MessageKind
from bot.core.plugin import PluginConfig
from bot.core.templates import template_type
from bot.core.text import normalize

LINE_PLACEHOLDERS = ("name", "group", "text")
NOTICE_PLACEHOLDERS = ("relay", "source", "prefix")
SUMMARY_PLACEHOLDERS = ("relay", "source", "duration", "messages", "questions", "speakers", "groups")

LineText = template_type(*LINE_PLACEHOLDERS)
NoticeText = template_type(*NOTICE_PLACEHOLDERS)
SummaryText = template_type(*SUMMARY_PLACEHOLDERS)
IDLE_PLACEHOLDERS = ("relay", "idle", "start")
IdleText = template_type(*IDLE_PLACEHOLDERS)

# How a message that is not plain text is shown in the other groups. The platform has no
# media-forward action yet, so images, files, voice ... travel as this label plus whatever
# text (a file name, a title) and URL the adapter gave.
DEFAULT_LABELS: dict[str, str] = {
    MessageKind.IMAGE: "[图片]",
    MessageKind.FILE: "[文件]",
    MessageKind.VIDEO: "[视频]",
    MessageKind.VOICE: "[语音]",
    MessageKind.EMOTICON: "[表情]",
    MessageKind.MINI_PROGRAM: "[小程序]",
    MessageKind.CONTACT_CARD: "[名片]",
    MessageKind.OTHER: "[消息]",
}
DEFAULT_KINDS = [k.value for k in MessageKind if k is not MessageKind.SYSTEM]


class RelayLink(PluginConfig):
    """One relay: `source` + `targets` (one-to-many) or `mesh` (every group to every other)."""

    name: str = Field(min_length=1)
    source: Annotated[str | None, GroupRefs()] = None
    targets: GroupSelectors = Field(default_factory=list)  # group ids or set:names
    mesh: GroupSelectors = Field(default_factory=list)  # group ids or set:names
    # Only these members' messages are relayed (the lecturer); empty: everyone's.
    speakers: list[str] = Field(default_factory=list)
    # False: relays only during a live session (开始直播 … 结束直播).
    always_on: bool = True
    # Audience questions (one-to-many only): target-group messages starting with one of
    # the plugin's `question_prefixes` go to the source group.
    questions: bool = True
    # Line template for this relay; default: the plugin's `format` / `mesh_format`.
    format: LineText | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _shape(self) -> RelayLink:
        if self.mesh:
            if self.source or self.targets:
                raise ValueError(f"relay {self.name!r}: use either mesh, or source + targets, not both")
            if len(set(self.mesh)) < 2 and not self.mesh[0].startswith("set:"):
                raise ValueError(f"relay {self.name!r}: a mesh needs at least two groups (or a set:name)")
        else:
            if not self.source or not self.targets:
                raise ValueError(f"relay {self.name!r}: needs source + targets (one-to-many) or mesh: [groups]")
            if self.source in self.targets:
                raise ValueError(f"relay {self.name!r}: the source {self.source!r} is also a target")
        return self

    @property
    def is_mesh(self) -> bool:
        return bool(self.mesh)


class RelayConfig(PluginConfig):
    relays: list[RelayLink] = Field(default_factory=list)
    # Placeholders: {name} the speaker, {group} the group it was said in, {text}.
    format: LineText = "【{name}】{text}"  # type: ignore[valid-type]
    mesh_format: LineText = "【{group}·{name}】{text}"  # type: ignore[valid-type]
    question_prefixes: list[str] = Field(default_factory=lambda: ["提问"])
    question_format: LineText = "❓「{group}」{name} 提问：{text}"  # type: ignore[valid-type]
    # Said in the target groups when a live session starts / ends ("" = say nothing).
    # Placeholders: {relay} {source} (the source group) {prefix} (the first question prefix).
    start_notice: NoticeText = (  # type: ignore[valid-type]
        "📢 直播开始！本群将同步「{source}」的直播内容。有问题请发送“{prefix} + 你的问题”。"
    )
    stop_notice: NoticeText = "📢 直播结束，感谢大家参与！"  # type: ignore[valid-type]
    summary: SummaryText = (  # type: ignore[valid-type]
        "📋 直播「{relay}」已结束：时长 {duration}，转发 {messages} 条消息到 {groups} 个群，"
        "{speakers} 位发言人，收到 {questions} 个提问。"
    )
    summary_questions: int = Field(10, ge=0, le=100)  # questions listed under the summary
    # Command words (admins of the source group, or bot admins).
    start_words: list[str] = Field(default_factory=lambda: ["开始直播"])
    stop_words: list[str] = Field(default_factory=lambda: ["结束直播"])
    status_words: list[str] = Field(default_factory=lambda: ["直播状态"])
    kinds: list[MessageKind] = Field(default_factory=lambda: [MessageKind(k) for k in DEFAULT_KINDS])
    labels: dict[MessageKind, str] = Field(default_factory=lambda: dict(DEFAULT_LABELS))
    # While a relayed message to a group still waits in the outbox, later ones for that
    # group are merged into the next send: the backlog costs fewer sends, not more lag.
    merge_backlog: bool = True
    # A relayed message (or question) longer than this is cut and ends in …（已截断）: one
    # pasted essay is one send per target, not dozens. The outbox also caps the pieces of any
    # message (outbox.max_chars × outbox.max_parts).
    max_chars: int = Field(500, ge=20, le=10_000)
    # A message whose text equals what the bot relayed into that group within this many
    # seconds is an echo (another relay bot, a puppet that re-delivers): never relayed.
    echo_window_seconds: float = Field(600, ge=0)
    ledger_days: int = Field(7, ge=1)  # relayed-message ids are kept this long
    # A live session (开始直播) with nothing relayed for this many minutes ends by itself, with
    # its summary, and the source group is told (a forgotten 结束直播). 0: never.
    idle_end_minutes: float = Field(180, ge=0, le=7 * 24 * 60)
    idle_end_notice: IdleText = (  # type: ignore[valid-type]
        "⏹️ 直播「{relay}」已经 {idle}没有新的发言，已自动结束。需要时再发送“{start}”开始。"
    )

    @field_validator("question_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        if any(not normalize(p) for p in value):
            raise ValueError("question prefixes must not be empty")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[MessageKind, str]) -> dict[MessageKind, str]:
        # A partial table overrides the defaults, it does not drop them.
        return {**DEFAULT_LABELS, **value}

    @model_validator(mode="after")
    def _unique_names(self) -> RelayConfig:
        seen: set[str] = set()
        for link in self.relays:
            if link.name in seen:
                raise ValueError(f"two relays are named {link.name!r}")
            seen.add(link.name)
        if MessageKind.SYSTEM in self.kinds:
            raise ValueError("system messages are never relayed: remove 'system' from kinds")
        return self
