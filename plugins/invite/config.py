"""The invite plugin's configuration (the `plugins.invite` section of bot.yaml)."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.config.refs import GroupSelectors
from bot.core.plugin import PluginConfig
from bot.core.templates import template_type
from bot.core.text import normalize

MEMBER_TEXT = template_type("name", "group", "keyword")
CHOOSE_TEXT = template_type("name", "keyword", "topics", "topic")
ADMIN_TEXT = template_type("keyword", "groups", "cap", "group")

WECHAT_GROUP_LIMIT = 500


class InviteRule(PluginConfig):
    """A keyword (or keyword + topic, e.g. `加群 读书`) and the groups it invites into."""

    name: str = ""
    keywords: list[str] = Field(min_length=1)
    # With a topic the member sends "<keyword> <topic>" (加群 读书); without, the bare keyword.
    topic: str = ""
    # Candidate groups (ids or set:names): the least full one under `member_cap` is chosen.
    groups: GroupSelectors = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> InviteRule:
        if any(not normalize(k) for k in self.keywords):
            raise ValueError(f"rule {self.label!r}: keywords must not be empty")
        return self

    @property
    def label(self) -> str:
        return self.name or (f"{self.keywords[0]} {self.topic}".strip())


class InviteConfig(PluginConfig):
    rules: list[InviteRule] = Field(default_factory=list)
    # A group counts as full at this many members (WeChat's hard limit is 500; leave room
    # for the owner's own invitations).
    member_cap: int = Field(480, ge=1, le=WECHAT_GROUP_LIMIT)
    # Invites per local day: from this bot account, and into any one group (None: no cap).
    daily_cap: int | None = Field(100, ge=1)
    daily_cap_per_group: int | None = Field(None, ge=1)
    # An invitation not yet accepted (above 40 members WeChat asks the invitee) counts
    # toward the group's size, and stops a second invite to the same person, this long.
    pending_hours: float = Field(24, gt=0)
    # WeChat adds people directly up to this many members; above, it sends an invitation.
    direct_add_limit: int = Field(40, ge=0)
    accept_friend_requests: bool = True
    # The same request from the same person again within this many seconds gets no second
    # answer (every answer is a send). A different request (another or an unknown topic) is
    # always answered.
    repeat_cooldown_seconds: float = Field(30, ge=0)
    # Texts. Placeholders: {name} the member, {group}, {keyword} what they sent, {topics}.
    inviting: MEMBER_TEXT = "好的，{name}！正在拉你进「{group}」，请稍候～"  # type: ignore[valid-type]
    invitation_sent: MEMBER_TEXT = (  # type: ignore[valid-type]
        "好的，{name}！已向你发送「{group}」的入群邀请，请在聊天列表里点开邀请加入～"
    )
    already_member: MEMBER_TEXT = "你已经在「{group}」里啦～"  # type: ignore[valid-type]
    pending: MEMBER_TEXT = "入群邀请已经发给你了，请在聊天列表里找到「{group}」的邀请点开加入～"  # type: ignore[valid-type]
    all_full: MEMBER_TEXT = "抱歉，{name}，群暂时满员了，管理员正在准备新群，请稍后再发送“{keyword}”试试～"  # type: ignore[valid-type]
    try_tomorrow: MEMBER_TEXT = "今天的入群名额已经用完啦，请明天再发送“{keyword}”～"  # type: ignore[valid-type]
    failed: MEMBER_TEXT = "抱歉，邀请你加入「{group}」没有成功，请稍后再试或联系管理员。"  # type: ignore[valid-type]
    choose: CHOOSE_TEXT = "想加入哪个群？请发送：{topics}"  # type: ignore[valid-type]
    # A topic no rule has (加群 游泳). {topic} what they asked for.
    unknown_topic: CHOOSE_TEXT = "没有“{topic}”这个群。想加入哪个群？请发送：{topics}"  # type: ignore[valid-type]
    # To admins (once a day per situation). {groups} the full groups, {cap} the cap.
    admin_full: ADMIN_TEXT = (  # type: ignore[valid-type]
        "「{keyword}」对应的群都满了（{groups}），新的入群请求已婉拒。请建新群并加入配置。"
    )
    admin_daily_cap: ADMIN_TEXT = "今日入群邀请已达上限（{cap} 个），之后的请求已请对方明天再来。"  # type: ignore[valid-type]
    admin_group_cap: ADMIN_TEXT = (  # type: ignore[valid-type]
        "「{keyword}」对应的群今日邀请都已达上限（每群 {cap} 个：{groups}），之后的请求已请对方明天再来。"
    )

    @model_validator(mode="after")
    def _unique_phrases(self) -> InviteConfig:
        seen: dict[tuple[str, str], str] = {}
        for rule in self.rules:
            for keyword in rule.keywords:
                key = (normalize(keyword), normalize(rule.topic))
                if key in seen:
                    phrase = f"{keyword} {rule.topic}".strip()
                    raise ValueError(f"“{phrase}” is used by rules {seen[key]!r} and {rule.label!r}")
                seen[key] = rule.label
        return self
