"""Admins teach 自动踢广告 in chat, as tg-spam's operators do with /spam and /notspam.

- `广告` quoting a message, or `广告 @成员` (their last message in this group): the sender is
  removed through the executor (the same policy as an automatic removal: never an admin,
  dry-run respected, fail closed), and the message becomes a spam sample.
- `误判 @成员` / `误判 名字` (in the group, or privately in reply to the bot's notice): the
  member is pardoned (解封's `lift`), invited back where they were removed (when the
  platform can invite), and their message becomes a normal sample.
- `启用新模型`: switch the candidate of `qunbot spam-train` on, at once.

A sample is written to `antispam_samples` and compiled into the in-memory `TaughtSamples`
right away: the next similar message is caught (the `taught` check) or let through the text
model, with no restart; the next `qunbot spam-train` learns from it too.
"""

from __future__ import annotations

import asyncio

from bot.core.context import Context, Services
from bot.core.events import GroupMessage, Member, MessageKind
from bot.core.platform import Capability
from bot.core.plugin import Command, Permission

from . import AntispamState, host_teaching, lift, plugin
from .checks import Message
from .classifier import ModelError, prepare
from .config import Action, AntispamConfig
from .models import AntispamDecision, AntispamSample, Outcome
from .teaching import activate, active_path
from .verdict import CheckResult, Verdict

_MARK_USAGE = "用法：引用一条消息回复“广告”，或发送“广告 @成员”（处理 TA 在本群的最后一条消息）。"
_PARDON_USAGE = "用法：误判 @成员（或 误判 名字/成员ID）"


@plugin.command(
    "广告",
    "spam",
    permission=Permission.GROUP_ADMIN,
    usage="@成员，或引用一条消息回复",
    help="把一条消息标记为广告：移出发送者，并记为广告样本（以后相似的消息直接处理）",
)
async def mark_spam(
    cmd: Command, ctx: Context, config: AntispamConfig, state: AntispamState, services: Services
) -> None:
    event = ctx.event
    assert isinstance(event, GroupMessage)
    found, problem = await _marked_message(cmd, ctx, state, services, event)
    if found is None:
        ctx.reply(problem)
        return
    member, gid = found.sender, event.group_id
    admin = event.sender
    verdict = Verdict((CheckResult("taught", True, f"管理员 {admin.display} 标记为广告", Action.REMOVE),))
    decision = await state.executor.decide(gid, member.id, verdict, config, ctx.now())
    if decision.outcome == Outcome.EXEMPT:
        ctx.reply(f"{member.display} 是{decision.why}，不处理，也不记为广告样本。")
        return
    message = Message(text=found.text, kind=found.kind, url=found.url, group_id=gid, member_id=member.id, at=found.at)
    # Carried out as if on the marked message: a warning (failing closed) mentions its sender.
    await state.executor.carry_out(
        state.host.context(found), decision, verdict, message, member, config, found.message_id
    )
    learned = await learn(state, ctx, found, spam=True)
    done = {
        Outcome.REMOVED: f"已将 {member.display} 移出",
        Outcome.FAILED_CLOSED: f"没能移出 {member.display}（{decision.why}），只发了提醒",
        Outcome.WOULD_REMOVE: f"试运行：{member.display} 不会被移出",
    }.get(decision.outcome, f"已处理 {member.display}")
    ctx.reply(f"{done}；{learned}")


@plugin.command(
    "误判",
    "notspam",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="@成员 或 名字",
    help="自动踢广告判错了：解除拉黑和警告、邀请回群，并把 TA 的消息记为正常样本",
)
async def mark_ham(cmd: Command, ctx: Context, state: AntispamState, services: Services) -> None:
    event = ctx.event
    bot_id = services.bot.id
    mentioned = [m for m in getattr(event, "mentions", ()) if m != bot_id]
    typed = (cmd.arg(0) or "").lstrip("@＠").strip()
    if not mentioned and not typed:
        ctx.reply(_PARDON_USAGE)
        return
    target = mentioned[0] if mentioned else typed
    ctx.reply(await pardon_mistake(state, ctx, services, target, by_id=bool(mentioned)))


async def pardon_mistake(state: AntispamState, ctx: Context, services: Services, target: str, *, by_id: bool) -> str:
    """误判: what the chat command and the console's button do. `target` is a member id
    (`by_id`) or a name or id as typed; in a group context only that group is answered for.
    Returns the reply."""
    gid = ctx.group_id
    now = ctx.now()
    await state.executor.settle()  # the rows of the member's last actions
    last = await state.store.last_acted(target, gid) if state.store is not None else None
    seen = state.recent.find_member(target, now)
    if by_id:
        member_id = target
    elif last is not None:
        member_id = last.member_id
    elif seen is not None:
        member_id = seen.sender.id
    else:
        member_id = _banned_named(state, target)
    name = last.member_name if last is not None and last.member_name else target
    banned_in = {b.group_id for b in state.executor.bans.get(member_id, ())}
    lifted = await lift(state, ctx, member_id, gid)
    removed_from = {b.group_id for b in lifted.bans} | (banned_in if gid is None else banned_in & {gid})
    if last is not None and last.outcome == Outcome.REMOVED:
        removed_from.add(last.group_id)
    if gid is not None:  # a group's admin answers for that group only
        removed_from &= {gid}
    where = gid or (last.group_id if last is not None else None) or next(iter(removed_from), None)
    sample = state.recent.last_from(where, member_id, now) if where else None
    if sample is None and last is not None and last.text:
        sample = GroupMessage(
            at=last.at,
            group_id=last.group_id,
            sender=Member(member_id, last.member_name),
            text=last.text,
            message_id=last.message_id,
        )
    if not lifted.unbanned and not lifted.cleared and sample is None:
        return f"{target} 不在黑名单里，没有警告记录，我也不记得 TA 最近的消息。"
    parts = [lifted.summary] if lifted.summary else []
    if removed_from:
        if Capability.INVITE in services.platform.capabilities:
            for group_id in sorted(removed_from):
                ctx.invite(group_id, member_id)
            groups = "、".join(f"「{services.groups.display_name(g)}」" for g in sorted(removed_from))
            parts.append(f"已邀请 TA 回到{groups}")
        else:
            parts.append("当前平台不能由机器人邀请入群，请手动把 TA 拉回群")
    parts.append(
        await learn(state, ctx, sample, spam=False) if sample is not None else "没有找到 TA 的消息文字，没有记为样本"
    )
    return f"{name}（{member_id}）：{'；'.join(parts)}。"


async def confirm_decision(state: AntispamState, ctx: Context, decision: AntispamDecision) -> str:
    """确认广告 on a recorded decision (the console's button): a warning or a dry-run that was
    right. The member is removed as `广告` would (the executor's policy: never an admin,
    dry-run respected, fail closed) unless already removed, and the message becomes a spam
    sample. Returns what happened."""
    config: AntispamConfig = state.host.config_for(decision.group_id)
    member = Member(decision.member_id, decision.member_name)
    parts: list[str] = []
    if decision.outcome != Outcome.REMOVED:
        admin = ctx.sender.display if ctx.sender else "管理员"
        verdict = Verdict((CheckResult("taught", True, f"管理员 {admin} 确认为广告", Action.REMOVE),))
        outcome = await state.executor.decide(decision.group_id, member.id, verdict, config, ctx.now())
        if outcome.outcome == Outcome.EXEMPT:
            return f"{member.display} 是{outcome.why}，不处理，也不记为广告样本。"
        message = Message(
            text=decision.text or "",
            kind=MessageKind.parse(decision.kind),
            url=None,
            group_id=decision.group_id,
            member_id=member.id,
            at=decision.at,
        )
        # Carried out as if on the recorded message, as `广告` does: a warning (failing closed)
        # mentions its sender in the group.
        marked = GroupMessage(
            at=decision.at,
            group_id=decision.group_id,
            sender=member,
            text=decision.text or "",
            message_id=decision.message_id,
        )
        await state.executor.carry_out(
            state.host.context(marked), outcome, verdict, message, member, config, decision.message_id
        )
        parts.append(
            {
                Outcome.REMOVED: f"已将 {member.display} 移出",
                Outcome.FAILED_CLOSED: f"没能移出 {member.display}（{outcome.why}），只发了提醒",
                Outcome.WOULD_REMOVE: f"试运行：{member.display} 不会被移出",
            }.get(outcome.outcome, f"已处理 {member.display}")
        )
    else:
        parts.append(f"{member.display} 已被移出")
    if decision.text:
        sample = GroupMessage(
            at=decision.at,
            group_id=decision.group_id,
            sender=member,
            text=decision.text,
            message_id=decision.message_id,
        )
        parts.append(await learn(state, ctx, sample, spam=True))
    else:
        parts.append("这条记录没有保存消息文字（storage.store_text），没有记为广告样本")
    return "；".join(parts)


@plugin.command(
    "启用新模型",
    "activate-model",
    permission=Permission.BOT_ADMIN,
    scope="both",
    help="启用 qunbot spam-train 训练出的候选广告模型（立即生效，不用重启）",
)
async def activate_model(ctx: Context, state: AntispamState) -> None:
    teaching = host_teaching(state)
    try:
        model = await asyncio.to_thread(activate, teaching.model_dir)
    except ModelError as err:
        ctx.reply(f"没有启用新模型：{err}")
        return
    except OSError as err:
        ctx.reply(f"没有启用新模型：无法写入 {active_path(teaching.model_dir)}（{err}）")
        return
    live = state.classifier
    if live is not None:
        live.use(model, str(active_path(teaching.model_dir)), await asyncio.to_thread(live.stat))
    info = model.info
    ctx.reply(
        f"已启用新模型（{info.get('spam', '?')} 条广告、{info.get('normal', '?')} 条正常消息训练）"
        f"，立即生效。想退回内置模型，删除 {active_path(teaching.model_dir)} 即可。"
    )


# --- helpers ------------------------------------------------------------------------------------


async def _marked_message(
    cmd: Command, ctx: Context, state: AntispamState, services: Services, event: GroupMessage
) -> tuple[GroupMessage | None, str]:
    """The message an admin's 广告 means, or why there is none."""
    gid, now = event.group_id, ctx.now()
    teaching = host_teaching(state)
    if event.quote is not None:
        found = state.recent.quoted(gid, event.quote, now)
        if found is not None:
            return found, ""
        # Older than what is remembered: the quoted text, and the member by name.
        member = await _member_named(services, gid, event.quote.sender_id or event.quote.name)
        if member is None:
            return None, f"找不到群里名叫「{event.quote.name}」的成员，请改用“广告 @成员”。"
        return GroupMessage(
            at=now,
            group_id=gid,
            sender=member,
            text=event.quote.text,
            message_id=event.quote.message_id,
            group_topic=event.group_topic,
        ), ""
    mentioned = [m for m in event.mentions if m != services.bot.id]
    typed = (cmd.arg(0) or "").lstrip("@＠").strip()
    if not mentioned and not typed:
        return None, _MARK_USAGE
    member_id = mentioned[0] if mentioned else typed
    if not mentioned:
        member = await _member_named(services, gid, typed)
        member_id = member.id if member is not None else typed
    found = state.recent.last_from(gid, member_id, now)
    if found is None:
        return None, (
            f"我不记得 {typed or member_id} 最近在本群说过什么（只记最近 {teaching.recent_hours:g} 小时、"
            f"每群 {teaching.recent_messages} 条）。请引用那条消息回复“广告”。"
        )
    return found, ""


async def _member_named(services: Services, group_id: str, name: str) -> Member | None:
    """A group member by id or display name (the platform's member list)."""
    try:
        members = await services.platform.members(group_id)
    except Exception:  # a platform that cannot list members: no match, the admin is told
        return None
    for member in members:
        if name in (member.id, member.name):
            return member
    return None


def _banned_named(state: AntispamState, target: str) -> str:
    for member_id, bans in state.executor.bans.items():
        if any(b.member_name == target for b in bans):
            return member_id
    return target


async def learn(state: AntispamState, ctx: Context, message: GroupMessage, *, spam: bool) -> str:
    """Store a taught sample and compile it at once; says what happened, for the reply."""
    text = message.text.strip()
    what = "广告" if spam else "正常消息"
    if len(prepare(text)) < state.taught.min_chars:
        return f"这条消息文字太少（{message.kind.value}），没有记为{what}样本"
    by = ctx.sender.id if ctx.sender else ""
    if state.store is not None:
        key = await state.store.add_sample(
            AntispamSample(
                at=ctx.now(),
                label="spam" if spam else "normal",
                text=text,
                kind=message.kind.value,
                group_id=message.group_id,
                member_id=message.sender.id,
                member_name=message.sender.name,
                by=by,
                message_id=message.message_id,
            )
        )
    else:
        key = state.taught.local_key()
    # The opposite label's near-duplicates were a mistake: taught again, they are dropped.
    contrary = state.taught.matching(text, not spam)
    for old in contrary:
        state.taught.discard(old)
    if state.store is not None:
        await state.store.delete_samples([k for k in contrary if k > 0])
    state.taught.add(key, text, spam)
    dropped = f"（撤销了 {len(contrary)} 条相反的样本）" if contrary else ""
    after = "以后相似的消息会直接处理" if spam else "以后相似的消息不会再被分类器判为广告"
    stored = "" if state.store is not None else "（没有数据库：只在本次运行有效）"
    return f"已记为{what}样本 #{key}{dropped}，{after}{stored}"
