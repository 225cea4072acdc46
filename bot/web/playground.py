"""试一试: a message typed as a member of a group, run past what would act on it — the
anti-spam checks, the command table, the keyword rules — in dispatch order, without sending
or recording anything. Each step asks the plugin's own matcher (the same objects the
handlers use), so what it says is what the bot would do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.events import MessageKind
from bot.core.text import normalize, strip_mention

if TYPE_CHECKING:
    from bot.web.server import WebConsole


@dataclass
class Step:
    plugin: str
    acts: bool
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    steps: list[Step]

    @property
    def first(self) -> Step | None:
        return next((s for s in self.steps if s.acts), None)


async def try_message(console: WebConsole, group_id: str, member_id: str, text: str, new_member: bool) -> Outcome:
    services = console.services
    steps: list[Step] = []
    antispam = console.host("antispam")
    if antispam is not None and antispam.enabled_in(group_id):
        from plugins.antispam.checks import Message

        state = antispam.state
        detector = state.detector_for(antispam.config_for(group_id))
        age = timedelta(0) if new_member else None
        verdict = detector.check(
            Message(
                text=text,
                kind=MessageKind.TEXT,
                group_id=group_id,
                member_id=member_id,
                at=console.now(),
                member_age=age,
                member_messages=0 if new_member else None,
            )
        )
        if verdict.spam:
            verb = {"warn": "警告", "kick": "移出"}.get(verdict.action.label, verdict.action.label)
            summary = f"判为广告，会{verb}：{verdict.rules}（之后的功能都不再处理这条消息）"
        else:
            summary = "不算广告"
        details = [f"{r.name}：{'✔' if r.spam else '✘'} {r.details}" for r in verdict.results if r.spam or r.details]
        steps.append(Step("自动踢广告", verdict.spam, summary, details))
    runtime = console.runtime
    match = runtime.table_for(group_id).parse(text, services.config.commands.prefixes, services.bot.name)
    if match is not None:
        spec = match.spec
        host = runtime.hosts.get(spec.plugin)
        enabled = host is not None and host.enabled_in(group_id)
        level = await services.groups.permission(member_id, group_id)
        if not enabled:
            steps.append(Step("命令", False, f"“{spec.word}”是{spec.plugin}的命令，但本群已关闭这个功能"))
        elif spec.scope == "private":
            steps.append(Step("命令", False, f"“{spec.word}”只能私聊使用"))
        elif level < spec.permission:
            steps.append(Step("命令", True, f"“{spec.word}”需要{spec.permission.label}权限：会回复拒绝"))
        else:
            title = host.settings.plugin.title if host is not None else spec.plugin
            args = f"，参数：{' '.join(match.command.args)}" if match.command.args else ""
            steps.append(Step("命令", True, f"【{title}】命令“{spec.word}”：{spec.help}{args}"))
    keyword = console.host("keyword_reply")
    if keyword is not None and keyword.enabled_in(group_id):
        from plugins.keyword_reply import best_rule

        normalized = normalize(strip_mention(text, services.bot.name))
        rule, captures = best_rule(keyword.state.rules_for(keyword.config_for(group_id)), normalized, group_id)
        if rule is not None:
            replies = list(rule.rule.replies[:3])
            got = f"，捕获：{captures}" if captures else ""
            steps.append(
                Step("关键词回复", True, f"规则 #{rule.index + 1}“{rule.keyword}”（{rule.rule.match}）{got}", replies)
            )
        else:
            steps.append(Step("关键词回复", False, "没有规则匹配"))
    return Outcome(steps)
