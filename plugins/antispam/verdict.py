"""The values a detection produces: one result per check, and the verdict over them.

Plain frozen values (tg-spam's model): the detector returns every check's result so an
admin can see *why*; the executor decides what to do with the verdict and records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .config import Action

# What admins and members read in warnings and notices.
RULE_TITLES = {
    "blacklist": "违禁词",
    "ad_content": "广告内容",
    "contact": "引流联系方式",
    "links": "可疑链接",
    "new_member": "新成员发链接/联系方式",
    "kinds": "禁发的消息类型",
    "flood": "刷屏",
    "wave": "多人/多群重复内容",
    "mentions": "过多@他人",
    "classifier": "疑似广告（分类器）",
    "qr_code": "二维码",
    "llm": "疑似广告（语言模型）",
    "taught": "管理员标记过的广告",
    "blacklisted": "已被拉黑",
}


class CheckResult(NamedTuple):
    """One check's finding. A tuple: made for every check of every message, so cheap."""

    name: str
    spam: bool
    details: str
    action: Action = Action.NONE  # what this result asks for when spam
    score: float | None = None  # the text model's spam probability (its own result only)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "spam": self.spam, "details": self.details}

    @property
    def title(self) -> str:
        return RULE_TITLES.get(self.name, self.name)

    def set_aside(self, why: str) -> CheckResult:
        """This finding kept for the record but no longer acted on, saying why."""
        return self._replace(spam=False, action=Action.NONE, details=f"{self.details}（{why}，不处理）")


@dataclass(frozen=True, slots=True)
class Verdict:
    results: tuple[CheckResult, ...]

    @property
    def fired(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.spam and r.action > Action.NONE)

    @property
    def spam(self) -> bool:
        return any(r.spam and r.action > Action.NONE for r in self.results)

    @property
    def action(self) -> Action:
        return max((r.action for r in self.results if r.spam), default=Action.NONE)

    @property
    def rules(self) -> str:
        """The fired rules, for people: "广告内容、引流联系方式"."""
        return "、".join(dict.fromkeys(r.title for r in self.fired))

    @property
    def rule_names(self) -> list[str]:
        return list(dict.fromkeys(r.name for r in self.fired))

    def as_json(self, message_id: Any = None) -> dict[str, Any]:
        return {
            "id": message_id,
            "spam": self.spam,
            "action": self.action.label if self.spam else Action.NONE.label,
            "checks": [r.as_json() for r in self.results],
        }


CLEAN = Verdict(())
