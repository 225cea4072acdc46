"""The executor: turns a verdict into a decision, carries it out, and records why.

`decide` is the policy (who is never touched, strikes, dry-run, failing closed);
`carry_out` does what the decision says through the context (warnings with `ctx.reply`,
removals with `ctx.remove` on the outbox's moderation lane, notices with
`ctx.notify_admins`) and hands the audit rows to the audit writer. Nothing here awaits the
database: strikes and bans are mirrored in memory (`strikes`, `bans`), and the rows of each
action (decision, strike, ban) are written in one transaction, in order, by the writer's
task. `settle()` waits for those writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.context import Context, Services
from bot.core.events import Member
from bot.core.platform import Capability
from bot.core.plugin import Permission
from bot.core.templates import Template

from .audit import AuditEntry, AuditWriter
from .config import Action, AntispamConfig
from .models import AntispamBan, AntispamDecision, AntispamStrike, Outcome
from .store import AntispamStore
from .strikes import StrikeBook
from .verdict import RULE_TITLES, Verdict

if TYPE_CHECKING:
    from .checks import Message

log = logging.getLogger("qunbot.plugin.antispam")

_QUOTE_CHARS = 300


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # see models.Outcome
    action: Action  # what is (or would be) done
    strikes: int = 0
    why: str = ""  # who or what stopped the bot (exempt, failed closed)

    @property
    def acted(self) -> bool:
        """Whether something happened in the group (then no other plugin answers)."""
        return self.outcome in (Outcome.WARNED, Outcome.REMOVED, Outcome.FAILED_CLOSED)


class Executor:
    def __init__(
        self,
        services: Services,
        store: AntispamStore | None,
        bans: dict[str, list[AntispamBan]],
        strikes: StrikeBook | None = None,
        writer: AuditWriter | None = None,
    ) -> None:
        """`bans`, `strikes` and `writer` are handed over from the previous executor on a
        reload, so the new one misses nothing the old one did meanwhile."""
        self.services = services
        self.store = store
        self.bans = bans  # member id -> bans, mirrored from the database
        self.strikes = strikes if strikes is not None else StrikeBook(timedelta(hours=24))
        self.writer = (
            writer
            if writer is not None
            else AuditWriter(store, health=getattr(store, "health", None))
            if store is not None
            else None
        )

    async def settle(self) -> None:
        """Wait until the rows of every action so far are written (or given up on)."""
        if self.writer is not None:
            await self.writer.settle()

    # --- policy ------------------------------------------------------------------------------
    async def protected(self, group_id: str, member_id: str, config: AntispamConfig) -> str:
        """Why this member is never acted on, or "" when they may be."""
        services = self.services
        if member_id == services.bot.id or member_id in services.config.other_bots:
            return "机器人账号"
        if member_id in config.allow_members:
            return "白名单成员"
        level = await services.groups.permission(member_id, group_id)
        if level >= Permission.BOT_ADMIN:
            return "机器人管理员"
        if level >= Permission.GROUP_ADMIN:
            return "群主或管理员"
        return ""

    async def cannot_remove(self, group_id: str) -> str:
        """Why a removal must not be attempted here (fail closed), or ""."""
        services = self.services
        if Capability.REMOVE not in services.platform.capabilities:
            return "当前平台不支持移出成员"
        info = await services.groups.info(group_id)
        if info is None:
            return "无法确认群主和管理员身份"
        if info.bot_can_remove is False:
            return "我没有移出成员的权限（需要群主或管理员身份）"
        if info.bot_can_remove is not True:
            return "无法确认我是否有移出权限"
        return ""

    async def decide(
        self, group_id: str, member_id: str, verdict: Verdict, config: AntispamConfig, now: datetime
    ) -> Decision:
        why = await self.protected(group_id, member_id, config)
        if why:
            return Decision(Outcome.EXEMPT, Action.NONE, why=why)
        action = verdict.action
        since = now - timedelta(hours=config.strikes.window_hours)
        strikes = self.strikes.count(group_id, member_id, since, now) + 1
        if action is Action.WARN and strikes >= config.strikes.limit:
            action = Action.REMOVE
        if config.dry_run:
            return Decision(Outcome.WOULD_REMOVE if action is Action.REMOVE else Outcome.WOULD_WARN, action, strikes)
        if action is Action.REMOVE:
            blocker = await self.cannot_remove(group_id)
            if blocker:
                return Decision(Outcome.FAILED_CLOSED, Action.WARN, strikes, why=blocker)
            return Decision(Outcome.REMOVED, action, strikes)
        return Decision(Outcome.WARNED, action, strikes)

    # --- carrying it out -------------------------------------------------------------------------
    async def carry_out(
        self,
        ctx: Context,
        decision: Decision,
        verdict: Verdict,
        message: Message,
        sender: Member,
        config: AntispamConfig,
        message_id: str | None = None,
    ) -> None:
        group_id = message.group_id
        now = ctx.now()
        rules = verdict.rules
        rule_names = ",".join(verdict.rule_names)
        row = AntispamDecision(
            at=now,
            group_id=group_id,
            member_id=sender.id,
            member_name=sender.name,
            message_id=message_id,
            kind=message.kind.value,
            text=self._keep(message.text),
            action=verdict.action.label,
            outcome=decision.outcome,
            rules=rule_names,
            checks=[r.as_json() for r in verdict.results],
            strikes=decision.strikes,
            dry_run=config.dry_run,
            label="spam" if decision.outcome == Outcome.REMOVED else None,
        )
        strike = ban = None
        if decision.outcome in (Outcome.WARNED, Outcome.FAILED_CLOSED):
            strike = AntispamStrike(group_id=group_id, member_id=sender.id, at=now, rules=rule_names)
            self.strikes.add(group_id, sender.id, now)
        elif decision.outcome == Outcome.REMOVED:
            ban = self._ban(sender, group_id, config, now, rule_names)
        self._audit(AuditEntry(row, strike, ban))
        group = self.services.groups.display_name(group_id)
        who = f"{sender.display}（{sender.id}）"
        quote = _quote(message.text, message.kind.value)
        details = "\n".join(f"· {r.title}：{r.details}" for r in verdict.fired)
        if strike is not None:
            text = Template.parse(config.warn_text, ("member", "rules", "strikes", "limit", "group")).render(
                {
                    "member": sender.display,
                    "rules": rules,
                    "strikes": min(decision.strikes, config.strikes.limit),
                    "limit": config.strikes.limit,
                    "group": group,
                }
            )
            ctx.reply(text, mention=True)
        if decision.outcome == Outcome.REMOVED:
            removal = ctx.remove(group_id, sender.id, f"自动踢广告：{rules}")
            if removal is not None:  # (test fakes of the context queue nothing)
                removal.on_done = _published(ctx, group_id, sender, verdict.rule_names)
            if config.removal_text:
                ctx.say(
                    Template.parse(config.removal_text, ("member", "rules", "group")).render(
                        {"member": sender.display, "rules": rules, "group": group}
                    )
                )
            if config.notify_admins:
                strikes = f"（第 {decision.strikes} 次违规）" if decision.strikes > 1 else ""
                await ctx.notify_admins(
                    f"🚫 已将 {who}移出群「{group}」{strikes}。\n触发规则：{rules}\n{details}\n原消息：{quote}\n"
                    f"如为误判，请回复“误判 {_handle(sender)}”（解除拉黑、邀请回群，并记为正常消息）；"
                    f"只解除拉黑：“解封 {sender.id}”。",
                    group_id,
                )
        elif decision.outcome == Outcome.FAILED_CLOSED:
            await ctx.notify_admins(
                f"⚠️ {who}在群「{group}」的消息应当移出（{rules}），但{decision.why}，我只发了提醒，没有移出。"
                f"请管理员处理。\n{details}\n原消息：{quote}\n是广告：在群里发送“广告 @{sender.display}”；"
                f"如为误判，请回复“误判 {_handle(sender)}”。",
                group_id,
            )
        elif decision.outcome in (Outcome.WOULD_WARN, Outcome.WOULD_REMOVE) and config.notify_dry_run:
            verb = "移出" if decision.outcome == Outcome.WOULD_REMOVE else "警告"
            await ctx.notify_admins(
                f"【试运行】{who}在群「{group}」的消息按当前规则会被{verb}（{rules}），本次未做任何处理。\n"
                f"{details}\n原消息：{quote}\n如为误判，请回复“误判 {_handle(sender)}”（记为正常消息）。",
                group_id,
            )
        log.info("%s %s in %s: %s (%s)", decision.outcome, sender.id, group_id, rules, decision.why or "-")

    def _ban(
        self, member: Member, group_id: str, config: AntispamConfig, now: datetime, rules: str
    ) -> AntispamBan | None:
        """Ban a removed member (in memory at once; the row goes with the decision's)."""
        if config.ban_scope == "none":
            return None
        ban = AntispamBan(
            member_id=member.id,
            member_name=member.name,
            group_id=group_id,
            everywhere=config.ban_scope == "all_groups",
            at=now,
            rules=rules,
        )
        kept = [b for b in self.bans.get(member.id, []) if b.group_id != group_id]
        self.bans[member.id] = [*kept, ban]
        return ban

    def banned_in(self, member_id: str, group_id: str) -> AntispamBan | None:
        for ban in self.bans.get(member_id, ()):
            if ban.everywhere or ban.group_id == group_id:
                return ban
        return None

    async def rejoin(
        self, ctx: Context, group_id: str, member: Member, ban: AntispamBan, config: AntispamConfig
    ) -> bool:
        """A banned member joined: remove them again (unless protected, in dry-run, or the
        bot may not remove here). Returns whether a removal was queued."""
        now = ctx.now()
        group = self.services.groups.display_name(group_id)
        who = f"{member.display}（{member.id}）"
        first = self.services.groups.display_name(ban.group_id)
        rules = "、".join(RULE_TITLES.get(r, r) for r in ban.rules.split(",") if r) or RULE_TITLES["blacklisted"]
        why = await self.protected(group_id, member.id, config)
        if why:
            return False
        blocker = "" if config.dry_run else await self.cannot_remove(group_id)
        outcome = Outcome.WOULD_REMOVE if config.dry_run else Outcome.FAILED_CLOSED if blocker else Outcome.REMOVED
        self._audit(
            AuditEntry(
                AntispamDecision(
                    at=now,
                    group_id=group_id,
                    member_id=member.id,
                    member_name=member.name,
                    kind="join",
                    action=Action.REMOVE.label,
                    outcome=outcome,
                    rules="blacklisted",
                    checks=[
                        {
                            "name": "blacklisted",
                            "spam": True,
                            "details": f"removed from {ban.group_id} at {ban.at.isoformat()} ({ban.rules})",
                        }
                    ],
                    dry_run=config.dry_run,
                )
            )
        )
        if outcome == Outcome.REMOVED:
            removal = ctx.remove(group_id, member.id, f"自动踢广告：黑名单成员（{rules}）")
            if removal is not None:
                removal.on_done = _published(ctx, group_id, member, ["blacklisted"])
            await ctx.notify_admins(
                f"🚫 黑名单成员 {who}加入了群「{group}」，已移出。\n此前在群「{first}」因{rules}被移出。\n"
                f"如需解除，管理员可发送“解封 {member.id}”。",
                group_id,
            )
            return True
        if outcome == Outcome.FAILED_CLOSED:
            await ctx.notify_admins(
                f"⚠️ 黑名单成员 {who}加入了群「{group}」（此前在群「{first}」因{rules}被移出），"
                f"但{blocker}，没有移出。请管理员处理。",
                group_id,
            )
        elif config.notify_dry_run:
            await ctx.notify_admins(
                f"【试运行】黑名单成员 {who}加入了群「{group}」，按当前规则会被移出，本次未做任何处理。", group_id
            )
        return False

    # --- helpers -------------------------------------------------------------------------------------
    def _audit(self, entry: AuditEntry) -> None:
        if self.writer is not None:  # without a database there is no audit trail
            self.writer.put(entry)

    def _keep(self, text: str) -> str | None:
        return text if self.services.config.storage.store_text == "full" else None


def _handle(member: Member) -> str:
    """How to name a member in a command an admin can copy: the display name when it is one
    word, else the id."""
    name = member.name.strip()
    return name if name and not any(c.isspace() for c in name) else member.id


def _quote(text: str, kind: str) -> str:
    body = text.strip().replace("\n", " ")
    if len(body) > _QUOTE_CHARS:
        body = body[:_QUOTE_CHARS] + "…"
    if kind not in ("text", "url"):
        body = f"[{kind}] {body}".strip()
    return body or f"[{kind}]"


def _published(ctx: Context, group_id: str, member: Member, rules: list[str]) -> Any:
    """When the removal went through: `ad_removed` for the listeners (outgoing webhooks)."""

    async def done(result: Any, error: Exception | None) -> None:
        if error is None and result is not None and result.ok:
            ctx.services.publish(
                "ad_removed",
                {"group_id": group_id, "member_id": member.id, "member_name": member.name, "rules": rules},
            )

    return done
