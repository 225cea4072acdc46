"""自动踢广告: ad and spam removal, modelled on tg-spam.

- `checks` + `textforms`: each check is built from its rule's config and returns one
  result (name, spam yes/no, details); the text is read once for all of them.
- `detector`: runs every check of a configuration and returns a `Verdict` (all results).
- `executor`: the policy (never the owner, admins, bots or allow-listed members; strikes;
  dry-run; fail closed when roles or rights are unknown) and the actions, with an audit row.
- `strikes`, `audit`: recent strikes in memory, and the writer that stores each action's
  audit rows in one transaction off the message path.
- `tracker`: join times and message counts for the new-member rules, in memory.

The plugin runs at priority 1, before everything else (the core's commands are at 5); when
it warns or removes, it stops propagation, so no keyword reply follows an ad. The
per-message path never awaits the database, not even for a message it acts on: strikes and
bans are read from memory and the audit rows are written behind it. The admin commands that
read or change those tables first wait for the writer (`Executor.settle`); so does shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from bot.core.context import Context, PluginHost, Services
from bot.core.events import GroupMessage, Member, MembersJoined, MembersLeft, MessageKind
from bot.core.plugin import STOP, Command, Permission, Plugin
from bot.core.templates import Template

from .checks import Message
from .classifier import RECENT_AGE, RECENT_SENT, ModelError, Scorer, TextModel
from .config import AntispamConfig, TeachingSettings
from .detector import Detector, Windows
from .executor import Executor
from .models import AntispamBan, AntispamDecision, Outcome
from .replay import replay
from .rules_text import penalties
from .slowchecks import GroupSlowChecks, SlowChecks
from .store import AntispamStore
from .strikes import StrikeBook
from .teaching import LiveModel, RecentMessages, TaughtSamples, WithTaught, candidate_path
from .tracker import MemberTracker
from .verdict import CLEAN, Verdict

__all__ = ["AntispamConfig", "AntispamState", "Detector", "Message", "plugin"]

log = logging.getLogger("qunbot.plugin.antispam")

# Joins older than this are not reloaded at start-up: such members are established.
TRACK_DAYS = timedelta(days=30)

plugin = Plugin(
    "antispam",
    title="自动踢广告",
    aliases=("广告", "踢广告", "反广告", "防广告", "反垃圾"),
    config=AntispamConfig,
    priority=1,
    description="识别广告、引流、刷屏和广告潮；警告、累计移出、跨群拉黑，支持试运行与回放",
)


@dataclass
class AntispamState:
    host: PluginHost
    tracker: MemberTracker
    executor: Executor
    store: AntispamStore | None
    windows: Windows = field(default_factory=Windows)
    classifier: LiveModel | None = None
    detectors: dict[int, Detector] = field(default_factory=dict)
    slow: SlowChecks | None = None  # QR codes and the language model (see `slowchecks`)
    recent: RecentMessages = field(default_factory=RecentMessages)
    taught: TaughtSamples = field(default_factory=TaughtSamples)
    problems_told: set[str] = field(default_factory=set)
    rules_shown: dict[str, datetime] = field(default_factory=dict)  # group → when 群规 was last answered
    reading: set[asyncio.Task[None]] = field(default_factory=set)  # images read in the background

    def detector_for(self, config: AntispamConfig) -> Detector:
        detector = self.detectors.get(id(config))
        if detector is None:  # a config the loader did not list (not expected): compile once
            model = self.slow.model_for(config, self.classifier) if self.slow is not None else self.classifier
            detector = self.detectors[id(config)] = Detector(
                config, windows=self.windows, classifier=model, explain=False, taught=self.taught
            )
            if self.slow is not None:
                self.slow.add(config)
        return detector

    def saw(self, event: GroupMessage) -> None:
        """Every group message: remembered for 广告 @成员 and quotes; the model file is
        looked at again now and then (a `spam-train --activate` is picked up)."""
        self.recent.add(event)
        if self.classifier is not None:
            self.classifier.poll(event.at, self.tell_bot_admins)

    def act_once_read(
        self,
        ctx: Context,
        slow: GroupSlowChecks,
        message: Message,
        sender: Member,
        message_id: str,
        verdict: Verdict,
        config: AntispamConfig,
    ) -> None:
        """Read an established member's image in the background (no message waits for it) and
        act on what its code points to, once. The reader's own bounds cap how many are read."""

        async def read_and_act() -> None:
            try:
                found = await slow.read_later(ctx.services.platform, message, message_id, verdict)
                if found is None or not found.spam:
                    return
                judged = Verdict((*verdict.results, found))
                decision = await self.executor.decide(message.group_id, sender.id, judged, config, ctx.now())
                await self.executor.carry_out(ctx, decision, judged, message, sender, config, message_id)
            except Exception:  # a background task must not fail unseen
                log.warning("antispam: acting on the QR code of image %s failed", message_id, exc_info=True)

        task = asyncio.create_task(read_and_act(), name=f"antispam-qr-{message_id}")
        self.reading.add(task)
        task.add_done_callback(self.reading.discard)

    async def tell_bot_admins(self, text: str) -> None:
        await self.host.services.notifier.notify(text, source=self.host.name)


@plugin.state
async def _build(host: PluginHost) -> AntispamState:
    services = host.services
    # The loader validated each of them with AntispamConfig.
    configs = cast(list[AntispamConfig], host.settings.configs())
    # Members are followed while the new-member rules or the text model's "recent" standing
    # can still apply to them.
    max_age = max(timedelta(minutes=max(c.new_member.minutes for c in configs)), RECENT_AGE)
    tracker = MemberTracker(max_age, max(*(c.new_member.messages for c in configs), RECENT_SENT))
    horizon = timedelta(hours=max(c.strikes.window_hours for c in configs))
    previous = _running_state(host)
    if previous is not None:
        # A reload: the running executor keeps acting until the swap. Its rows are written
        # before anything is read, and its strikes, bans and writer are taken over, so what
        # it does meanwhile is seen here too.
        await previous.executor.settle()
        strikes, bans, writer = previous.executor.strikes, previous.executor.bans, previous.executor.writer
    else:
        strikes, bans, writer = StrikeBook(horizon), {}, None
    store = AntispamStore(services.db) if services.db is not None else None
    teaching = host.config_for(None).teaching  # the deployment's samples and model files
    taught = TaughtSamples(teaching.similarity, teaching.min_chars)
    problems: list[str] = []
    if store is not None:
        if services.recorder is not None:
            try:
                await services.recorder.flush()  # joins seen moments ago may still be buffered
            except Exception:
                log.warning("could not flush the recorder before loading recent joins", exc_info=True)
        now = services.clock.now()
        tracker.load(await store.recent_joins(now - max(max_age, TRACK_DAYS), services.clock.tz))
        if previous is None:
            for ban in await store.bans():
                bans.setdefault(ban.member_id, []).append(ban)
            strikes.load(await store.recent_strikes(now - horizon))
        elif horizon > strikes.horizon:  # a longer window: load the older strikes it now covers
            covered, strikes.horizon = now - strikes.horizon, horizon
            strikes.drop_before(covered)
            strikes.load(await store.recent_strikes(now - horizon, until=covered))
        samples, problems = await store.samples()
        for key, text, spam in samples:
            taught.add(key, text, spam)
    elif previous is not None:  # no database: the samples taught so far live in memory only
        taught = previous.taught
    strikes.horizon = horizon
    classifier = None
    if any(c.classifier.enabled for c in configs):
        # The active model file (`qunbot spam-train --activate`, 启用新模型) or the shipped one;
        # never retrained behind the operators' back: a new model is switched on explicitly.
        classifier = await asyncio.to_thread(LiveModel.load, teaching.model_dir, taught)
        if classifier.problem is not None:
            problems.append(f"{classifier.problem}（改用内置模型）")
    executor = Executor(services, store, bans, strikes, writer)
    recent = (
        previous.recent
        if previous is not None
        else RecentMessages(teaching.recent_messages, timedelta(hours=teaching.recent_hours), teaching.recent_total)
    )
    recent.per_group, recent.max_age = teaching.recent_messages, timedelta(hours=teaching.recent_hours)
    recent.total = teaching.recent_total
    state = AntispamState(host, tracker, executor, store, classifier=classifier, recent=recent, taught=taught)
    state.slow = slow = SlowChecks(configs, classifier)
    for cfg in configs:
        state.detectors[id(cfg)] = Detector(
            cfg, windows=state.windows, classifier=slow.model_for(cfg, classifier), explain=False, taught=taught
        )
    told = set(previous.problems_told) if previous is not None else set()
    for problem in problems:
        log.error("anti-spam: %s", problem)
    fresh = [p for p in problems if p not in told]
    if fresh:  # once per problem, not again on every reload
        await state.tell_bot_admins("⚠️ 自动踢广告：以下数据无法使用，已跳过，其余规则照常工作：\n" + "\n".join(fresh))
    state.problems_told = told | set(fresh)
    return state


def _running_state(host: PluginHost) -> AntispamState | None:
    """This plugin's state in the runtime being replaced (on a reload), if any."""
    runtime = getattr(host.services.dispatcher, "runtime", None)
    running = runtime.hosts.get(host.name) if runtime is not None else None
    state = getattr(running, "state", None)
    return state if isinstance(state, AntispamState) else None


@plugin.on_shutdown
async def _shutdown(host: PluginHost) -> None:
    # `qunbot run` at the end of input, `simulate`, a stop or a reload: write what is queued.
    if isinstance(host.state, AntispamState):
        # Images still being read in the background are not acted on any more.
        reading = list(host.state.reading)
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        writer = host.state.executor.writer
        dropped = writer.dropped if writer is not None else 0
        await host.state.executor.settle()
        if host.state.slow is not None:
            await host.state.slow.aclose()
        if writer is not None and writer.dropped > dropped:
            # The rows are in the log; the failure still makes `qunbot run` exit non-zero.
            raise RuntimeError(f"{writer.dropped - dropped} anti-spam action(s) could not be recorded at shutdown")


# --- events -----------------------------------------------------------------------------------


_TEXT, _SYSTEM = MessageKind.TEXT, MessageKind.SYSTEM


@plugin.on(GroupMessage)
async def screen(event: GroupMessage, ctx: Context, config: AntispamConfig, state: AntispamState) -> Any:
    state.saw(event)
    sender = event.sender
    member_id = sender.id
    age, sent = state.tracker.observe(event.group_id, member_id, event.at)
    detector = state.detectors.get(id(config)) or state.detector_for(config)
    kind = event.kind
    if kind is _SYSTEM or member_id in detector.allow_members:
        return False
    # The checks that wait (QR codes, the language model): None for groups with neither on.
    slow = state.slow.by_config.get(id(config)) if state.slow is not None else None
    if slow is not None and slow.memo is not None:
        slow.memo.last = None  # the text model's score of this message, once the detector ran
    if (
        kind is _TEXT
        and not (event.url or event.mentions)
        and ((age is None and sent is None) or not detector.is_new_member(age, sent))
    ):
        # An established member's plain text, most of chat: nothing is built unless the
        # text gives a content check something to look at (or the flood check fires).
        verdict = detector.check_plain(event.text, ctx.text, event.group_id, member_id, event.at, age, sent)
        if (verdict is CLEAN or not verdict.spam) and (slow is None or slow.llm is None):
            return False
    else:
        verdict = None
    message = Message(
        text=event.text,
        kind=kind,
        url=event.url,
        group_id=event.group_id,
        member_id=member_id,
        at=event.at,
        mentions=len(event.mentions),
        member_age=age,
        member_messages=sent,
        normalized=ctx.text,
    )
    if verdict is None:
        verdict = detector.check(message)
    if slow is not None and (plan := slow.plan(message, event.message_id, verdict)) is not None:
        if plan.later and event.message_id is not None:
            state.act_once_read(ctx, slow, message, sender, event.message_id, verdict, config)
        if plan.qr or plan.llm:
            # After the synchronous verdict, only for messages that qualify; bounded waits.
            verdict = await slow.run(plan, ctx.services.platform, message, event.message_id, verdict, ctx.now())
    if not verdict.spam:
        return False
    executor = state.executor
    decision = await executor.decide(event.group_id, member_id, verdict, config, ctx.now())
    await executor.carry_out(ctx, decision, verdict, message, sender, config, event.message_id)
    return STOP if decision.acted else False


@plugin.on(MembersJoined)
async def on_join(event: MembersJoined, ctx: Context, config: AntispamConfig, state: AntispamState) -> Any:
    for member in event.members:
        state.tracker.joined(event.group_id, member.id, event.at)
    removed = 0
    for member in event.members:
        ban = state.executor.banned_in(member.id, event.group_id)
        if ban is not None and await state.executor.rejoin(ctx, event.group_id, member, ban, config):
            removed += 1
    # Nobody welcomes a banned member who is being removed again.
    return STOP if removed and removed == len(event.members) else False


@plugin.on(MembersLeft)
async def on_leave(event: MembersLeft, state: AntispamState) -> bool:
    for member in event.members:
        state.tracker.left(event.group_id, member.id)
    return False


# --- admin commands ------------------------------------------------------------------------------


@plugin.command(
    "解封",
    "pardon",
    "unban",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="成员ID",
    help="解除某人的拉黑和警告记录",
)
async def pardon(cmd: Command, ctx: Context, state: AntispamState, services: Services) -> None:
    target = (cmd.arg(0) or "").lstrip("@＠")
    if not target:
        ctx.reply("用法：解封 成员ID（可在“黑名单”里查看）")
        return
    member_id = _resolve_member(state, target)
    lifted = await lift(state, ctx, member_id, ctx.group_id)
    if not lifted.unbanned and not lifted.cleared:
        ctx.reply(f"{target} 不在黑名单里，也没有警告记录。")
        return
    ctx.reply(f"{member_id}：{lifted.summary}。")


@dataclass(frozen=True, slots=True)
class Lifted:
    bans: list[AntispamBan]  # the ban rows removed (where they had been removed)
    unbanned: bool
    cleared: int

    @property
    def summary(self) -> str:
        parts = []
        if self.unbanned:
            parts.append("已解除拉黑，可以重新加入")
        if self.cleared:
            parts.append(f"已清除 {self.cleared} 条警告记录")
        return "，".join(parts)


async def lift(state: AntispamState, ctx: Context, member_id: str, in_group: str | None) -> Lifted:
    """A pardon (解封, 误判): the member's bans (in `in_group`, or everywhere) and strikes are
    lifted, their last removal is relabelled as a mistake, and the pardon is recorded."""
    asker = ctx.sender.id if ctx.sender else ""
    lifted: list[AntispamBan] = []
    await state.executor.settle()  # the rows of the member's last actions, before changing them
    cleared = state.executor.strikes.clear(member_id, in_group)
    if state.store is not None:
        lifted = await state.store.unban(member_id, [in_group] if in_group else None)
        cleared = await state.store.clear_strikes(member_id, in_group)
        await state.store.relabel_last_removal(member_id, "ham")
    known = state.executor.bans.get(member_id, [])
    keep = [b for b in known if not (in_group is None or b.everywhere or b.group_id == in_group)]
    if not lifted:
        lifted = [b for b in known if b not in keep]
    if keep:
        state.executor.bans[member_id] = keep
    else:
        state.executor.bans.pop(member_id, None)
    unbanned = bool(lifted) or len(keep) < len(known)
    if (unbanned or cleared) and state.store is not None:
        await state.store.record(
            AntispamDecision(
                at=ctx.now(),
                group_id=in_group or "*",
                member_id=member_id,
                action="none",
                outcome=Outcome.PARDONED,
                by=asker,
                rules=",".join(sorted({b.group_id for b in lifted})),
            )
        )
    return Lifted(lifted, unbanned, cleared)


@plugin.command(
    "群规",
    scope="group",
    help="查看群规",
    words_from=lambda c: c.rules_words if c.rules_text else [],
)
async def group_rules(ctx: Context, config: AntispamConfig, state: AntispamState, services: Services) -> None:
    gid = ctx.group_id or ""
    now = ctx.now()
    last = state.rules_shown.get(gid)
    if last is not None and now - last < timedelta(seconds=config.rules_cooldown_seconds):
        return  # asked again right away: the answer is still on screen
    state.rules_shown[gid] = now  # one entry per group the bot is in: bounded
    text = Template.parse(config.rules_text or "", ("penalties", "group")).render(
        {"penalties": penalties(config), "group": services.groups.display_name(gid)}
    )
    ctx.reply(text)


@plugin.command(
    "黑名单", "banlist", "blacklist", permission=Permission.GROUP_ADMIN, scope="both", help="查看被自动踢广告拉黑的成员"
)
async def show_bans(ctx: Context, state: AntispamState, services: Services) -> None:
    gid = ctx.group_id
    rows = [
        b for bans in state.executor.bans.values() for b in bans if gid is None or b.everywhere or b.group_id == gid
    ]
    if not rows:
        ctx.reply("黑名单是空的。")
        return
    rows.sort(key=lambda b: b.at, reverse=True)
    tz = services.clock.tz
    lines = [f"黑名单（{len(rows)} 人，解封请发送“解封 成员ID”）："]
    for b in rows[:30]:
        scope = "所有群" if b.everywhere else "仅本群"
        where = services.groups.display_name(b.group_id)
        name = f"{b.member_name}（{b.member_id}）" if b.member_name else b.member_id
        lines.append(f"· {name}：{b.at.astimezone(tz):%m-%d %H:%M} 在「{where}」，{scope}")
    if len(rows) > 30:
        lines.append(f"……另有 {len(rows) - 30} 人")
    ctx.reply("\n".join(lines))


@plugin.command(
    "广告回放",
    "spam-replay",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="[天数] [新模型]",
    help="用当前规则回放最近几天的消息：会警告、移出哪些人（不做任何处理）；"
    "加“新模型”：用 spam-train 训练出的候选模型回放",
)
async def replay_command(cmd: Command, ctx: Context, state: AntispamState, services: Services) -> None:
    if services.db is None:
        ctx.reply("没有数据库，无法回放。")
        return
    words = list(cmd.args)
    candidate = any(w in _CANDIDATE_WORDS for w in words)
    try:
        days = int(next((w for w in words if w not in _CANDIDATE_WORDS), "7"))
    except ValueError:
        ctx.reply("用法：广告回放 [天数] [新模型]，例如：广告回放 30 新模型")
        return
    days = max(1, min(days, 90))
    classifier: Scorer | None = state.classifier
    judged_by = "当前规则"
    if candidate:
        path = candidate_path(host_teaching(state).model_dir)
        try:
            model = await asyncio.to_thread(TextModel.load, path)
        except ModelError as err:
            ctx.reply(f"没有可用的新模型：{err}")
            return
        classifier = WithTaught(model, state.taught)
        judged_by = "当前规则和新模型"
    now = ctx.now()
    host = state.host
    gid = ctx.group_id
    groups = [gid] if gid else None

    async def protected(group_id: str, member_id: str) -> bool:
        return bool(await state.executor.protected(group_id, member_id, host.config_for(group_id)))

    await state.executor.settle()

    report = await replay(
        services.db,
        host.config_for,
        since=now - timedelta(days=days),
        until=now,
        tz=services.clock.tz,
        groups=groups,
        protected=protected,
        classifier=classifier,
        taught=state.taught,
        judged_by=judged_by,
    )
    ctx.reply(report.summary(services.clock.tz))


@plugin.command(
    "测广告",
    "spam-test",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    usage="文字",
    help="看看一段文字会不会被判为广告、为什么（按老成员判断）",
)
async def test_text(cmd: Command, ctx: Context, config: AntispamConfig, state: AntispamState) -> None:
    if not cmd.rest:
        ctx.reply("用法：测广告 要检查的文字")
        return
    verdict = state.detector_for(config).check(Message(text=cmd.rest))
    if not verdict.spam:
        lines = ["不算广告。"]
    else:
        verb = {"warn": "警告", "kick": "移出"}[verdict.action.label]
        lines = [f"算广告，会{verb}：{verdict.rules}"]
    lines += [f"· {r.title}：{'✔' if r.spam else '✘'} {r.details}" for r in verdict.results]
    ctx.reply("\n".join(lines))


_CANDIDATE_WORDS = frozenset({"新模型", "候选", "candidate"})


def host_teaching(state: AntispamState) -> TeachingSettings:
    return state.host.config_for(None).teaching


def _resolve_member(state: AntispamState, target: str) -> str:
    """An id as typed, or the id of the banned member with that display name."""
    if target in state.executor.bans:
        return target
    for member_id, bans in state.executor.bans.items():
        if any(b.member_name == target for b in bans):
            return member_id
    return target


# 广告, 误判 and 启用新模型 (admins teaching in chat) register themselves on `plugin`.
from . import chat_teaching  # noqa: E402,F401
