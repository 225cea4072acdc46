"""The checks that have to wait for something, which the synchronous detector cannot run:
QR codes in images (fetched from the platform, decoded in a worker thread)
and the language model's second opinion (an HTTP call).

They run in one place: the chat handler, after the detector's verdict, for the messages
that qualify (`GroupSlowChecks.plan`); their results are added to the verdict like any
other check's (`GroupSlowChecks.run`). A message that does not qualify (nearly all chat)
costs a dictionary lookup: no task, no await.

Qualifying:
- QR: an image, with a platform message id, from a member whose join the bot saw less
  than `qr.member_days` ago, when some QR target's action is stronger than what the
  verdict already asks for. The verdict waits at most `qr.wait_ms` for fetch + decode; a
  decode that finishes later is only logged (the message has been judged by then; acting
  twice on one message would be worse than missing one image).
- QR, later: an image from any other member with nothing said beside it (a hello at most),
  or with a caption the text model reads at `qr.lure_from` or more, when some target's action
  (`qr.established`, `qr.established_lure`) is stronger than the verdict's. Nothing waits
  for it: the handler starts the read and moves on, and what the code points to is acted on
  once read (`AntispamState.act_once_read`). The message was judged not spam, so this is the
  only action on it.
- Language model ("borderline"): the text model scored the message (at least
  `llm.min_chars` characters) and the model's answer could change the outcome (`llm.action`
  is stronger than what the verdict asks for), and either
  * the spam probability is within `llm.band` below the group's threshold
    (threshold − band ≤ p < threshold), or
  * `llm.disputes` and the text model and the rules disagree: the model fired and no rule
    did, or a rule fired while the model scored the text below 0.5.
  The verdict waits at most `llm.timeout_ms`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.core.events import MessageKind
from bot.core.platform import Platform, PlatformError

from .checks import PRESUMED_QR_DETAILS, Message, says_nothing
from .classifier import OLD, PLAINLY_ORDINARY, Scorer, prepare
from .config import Action, AntispamConfig, LlmRule
from .llm import SecondOpinion
from .qrcodes import QrError, QrReader, classify, link_host
from .verdict import CheckResult, Verdict

log = logging.getLogger("qunbot.plugin.antispam")

_IMAGE = MessageKind.IMAGE
_RULES_LEAN_NORMAL = 0.5  # below this, the text model reads a message as normal
_LATE_KEPT = 32  # decodes still running after their verdict, kept to log their result
_NO_CODE = CheckResult("qr_code", False, "图片里没有二维码")  # an image read in full, with no code in it


def _photo_after_all(result: CheckResult) -> CheckResult:
    """A newcomer's first image with nothing said is warned about because it is usually a QR
    code; read in full and holding none, it is a photo (a baby, a dog, a screenshot): the
    warning goes."""
    if result.name == "new_member" and result.details in PRESUMED_QR_DETAILS and result.action is Action.WARN:
        return result.set_aside("图片里没有二维码")
    return result


class ScoreMemo:
    """The text model, remembering the last (squeezed text, probability, standing) it scored:
    the detector scores every message anyway, and the language model's "borderline" is read
    from that score instead of scoring twice. It wraps the running model (which an activated
    model file may swap), so it always scores with the current one. Used only by the detectors
    of groups with the language model on; the handler clears `last` before each of their
    messages."""

    __slots__ = ("last", "model")

    def __init__(self, model: Scorer) -> None:
        self.model = model
        self.last: tuple[str, float, str, str] | None = None  # squeezed text, p, standing, kind

    def score(self, squeezed: str, kind: str = "text", who: str = OLD) -> float:
        p = self.model.score(squeezed, kind, who)
        self.last = (squeezed, p, who, kind)
        return p


def _model_score(verdict: Verdict) -> float | None:
    """The text model's probability for the message, when it read it."""
    return next((r.score for r in verdict.results if r.name == "classifier"), None)


class Plan(NamedTuple):
    qr: bool  # a newcomer's image, read before the verdict
    llm: str  # why the language model is asked ("" when it is not)
    later: bool = False  # an established member's image, read in the background (`established_table`)


class GroupSlowChecks:
    """The slow checks of one configuration (a group or a set of groups)."""

    def __init__(
        self, config: AntispamConfig, reader: QrReader | None, llm: SecondOpinion | None, memo: ScoreMemo | None
    ) -> None:
        qr = config.qr
        self.reader = reader if qr.enabled else None
        self.qr = qr
        self.qr_age = timedelta(days=qr.member_days)
        self.qr_actions = {kind: Action.of(action) for kind, action in qr.actions.model_dump().items()}
        self.qr_strongest = max(self.qr_actions.values())
        self.established_actions = {kind: Action.of(action) for kind, action in qr.established.model_dump().items()}
        self.lure_actions = {kind: Action.of(action) for kind, action in qr.established_lure.model_dump().items()}
        self.allowed_domains = tuple(config.links.domains)
        self.llm = llm if config.llm.enabled else None
        self.memo = memo if self.llm is not None else None
        self.llm_action = Action.of(config.llm.action)
        self.classifier, self.strictness = config.classifier, config.strictness
        self.band = config.llm.band
        self.disputes = config.llm.disputes
        self.min_chars = config.llm.min_chars
        self.late: set[asyncio.Future[list[str]]] = set()

    # --- which messages qualify (synchronous, cheap) ----------------------------------------
    def plan(self, message: Message, message_id: str | None, verdict: Verdict) -> Plan | None:
        action = verdict.action
        readable = (
            self.reader is not None and message.kind is _IMAGE and message_id is not None and not self.reader.busy
        )
        newcomer = self.is_newcomer(message)
        qr = readable and newcomer and self.qr_strongest > action
        later = readable and not newcomer and self.established_table(message, verdict) is not None
        why = self._borderline(verdict) if self.llm is not None and self.llm_action > action else ""
        return Plan(qr, why, later) if qr or why or later else None

    def is_newcomer(self, message: Message) -> bool:
        """Whose images are read before the verdict: a join the bot saw under `member_days` ago."""
        return message.member_age is not None and message.member_age < self.qr_age

    def established_table(self, message: Message, verdict: Verdict) -> dict[str, Action] | None:
        """What an established member's code is acted on by: `established` when nothing is
        said beside it, `established_lure` when the text model leans to reading the caption
        as an ad; None when neither applies or could ask for more than the verdict does."""
        if says_nothing(prepare(message.text)):
            table = self.established_actions
        else:
            score = _model_score(verdict)
            if score is None or score < self.qr.lure_from:
                return None
            table = self.lure_actions
        return table if max(table.values()) > verdict.action else None

    def _borderline(self, verdict: Verdict) -> str:
        scored = self.memo.last if self.memo is not None else None
        if scored is None or len(scored[0]) < self.min_chars:
            return ""
        squeezed, p, who, kind = scored
        threshold = self.classifier.threshold_for(self.strictness, who, kind, len(squeezed))
        if threshold - self.band <= p < threshold:
            return f"广告概率 {p:.3f}，接近阈值 {threshold}"
        if self.disputes:
            fired = verdict.fired
            model_fired = any(r.name == "classifier" for r in fired)
            rules_fired = any(r.name != "classifier" for r in fired)
            if model_fired and not rules_fired:
                return f"只有分类器判为广告（概率 {p:.3f}）"
            if rules_fired and p < _RULES_LEAN_NORMAL:
                return f"规则判为广告，分类器概率只有 {p:.3f}"
        return ""

    # --- running them -------------------------------------------------------------------------
    async def run(
        self, plan: Plan, platform: Platform, message: Message, message_id: str | None, verdict: Verdict, now: datetime
    ) -> Verdict:
        """The verdict with the slow checks' results added; waits at most for the longer of
        the two deadlines."""
        jobs = []
        if plan.qr and message_id is not None:
            jobs.append(self._qr(platform, message, message_id))
        if plan.llm:
            jobs.append(self._second_opinion(message.text, plan.llm, now))
        added = list(await asyncio.gather(*jobs))
        results = verdict.results
        if plan.qr and added[0] is _NO_CODE:
            results = tuple(map(_photo_after_all, results))
        elif plan.qr:
            added[0] = self._captioned(added[0], message, verdict)
        return Verdict((*results, *added))

    def with_known_code(self, message: Message, verdict: Verdict) -> Verdict:
        """The verdict with what the running bot's QR reader would add, for a message whose
        code's content is known already (`qunbot spam-check`'s `"kind": "qr"` lines): a
        newcomer's code by `actions`, an established member's by `established_table`. Judging
        a file then matches judging the chat (with the `qr` extra installed)."""
        if not (self.qr.enabled and message.qr and message.url and message.kind is _IMAGE):
            return verdict
        if self.is_newcomer(message):
            result = self._captioned(self.qr_result([message.url]), message, verdict)
        elif (table := self.established_table(message, verdict)) is not None:
            result = self.qr_result([message.url], table)
        else:
            return verdict
        return Verdict((*verdict.results, result))

    def _captioned(self, result: CheckResult, message: Message, verdict: Verdict) -> CheckResult:
        """A newcomer's code with a caption the text model reads as plainly ordinary is not
        acted on ("学校发的校服征订二维码，老师让转到家长群"), as the new-member rule's warning
        is not (`Detector._corroborate`, off with `classifier.veto_below` at 0, as here)."""
        if not result.spam or self.classifier.veto_below <= 0:
            return result
        score = _model_score(verdict)
        if score is None or score >= PLAINLY_ORDINARY or says_nothing(prepare(message.text)):
            return result
        return result.set_aside(f"文本模型读作正常消息 {score:.2f}")

    async def read_later(
        self, platform: Platform, message: Message, message_id: str, verdict: Verdict
    ) -> CheckResult | None:
        """An established member's image (`established_table`), read when nothing waits for
        it: what its code points to, or None when there is no code or it could not be read
        (logged)."""
        assert self.reader is not None
        table = self.established_table(message, verdict)
        if table is None:
            return None
        qr = self.qr

        async def fetch() -> bytes:
            return await platform.fetch_image(message_id, qr.max_bytes)

        try:
            payloads = await self.reader.scan(fetch, qr.max_pixels)
        except (QrError, PlatformError) as exc:
            log.info("antispam: image %s of %s not read: %s", message_id, message.member_id, exc)
            return None
        result = self.qr_result(payloads, table)
        return None if result is _NO_CODE else result

    async def _qr(self, platform: Platform, message: Message, message_id: str) -> CheckResult:
        assert self.reader is not None
        qr = self.qr

        async def fetch() -> bytes:
            return await platform.fetch_image(message_id, qr.max_bytes)

        scan = asyncio.ensure_future(self.reader.scan(fetch, qr.max_pixels))
        done, _ = await asyncio.wait({scan}, timeout=qr.wait_ms / 1000)
        if not done:
            self._keep_late(scan, message)
            return CheckResult("qr_code", False, f"{qr.wait_ms} 毫秒内没读完图片，未等待")
        if scan.cancelled():  # the reader was closed under it (a stop or a reload)
            return CheckResult("qr_code", False, "没有读取图片：正在停止")
        try:
            payloads = scan.result()
        except (QrError, PlatformError) as exc:
            return CheckResult("qr_code", False, f"没有读取图片：{exc}")
        except Exception as exc:  # a decoder fault must not lose the verdict
            log.warning("antispam: reading QR codes from message %s failed: %s", message_id, exc, exc_info=True)
            return CheckResult("qr_code", False, f"读取图片出错（{type(exc).__name__}）")
        return self.qr_result(payloads)

    def qr_result(self, payloads: Iterable[str], actions: dict[str, Action] | None = None) -> CheckResult:
        """What the decoded codes point to, acted on per kind of target (the strongest wins;
        `actions`: a newcomer's, `qr.actions`, unless given)."""
        actions = actions or self.qr_actions
        best: tuple[Action, str] | None = None
        for payload in payloads:
            target = classify(payload)
            action = actions[target.kind]
            what = f"{target.title}（{target.shown}）"
            if target.kind == "link" and self._allowed(payload):
                action, what = Action.NONE, f"{what}，允许的域名"
            if best is None or action > best[0]:
                best = (action, what)
        if best is None:
            return _NO_CODE
        action, what = best
        return CheckResult("qr_code", action > Action.NONE, what, action)

    def _allowed(self, payload: str) -> bool:
        host = link_host(payload)
        return bool(host) and any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    def _keep_late(self, scan: asyncio.Future[list[str]], message: Message) -> None:
        """A scan past its wait: its result is logged when it comes, and never acted on."""
        if len(self.late) >= _LATE_KEPT:
            scan.cancel()
            return
        self.late.add(scan)

        def done(task: asyncio.Future[list[str]]) -> None:
            self.late.discard(task)
            if task.cancelled():
                return
            error = task.exception()
            if error is not None:
                log.info(
                    "antispam: a late image read of %s in %s failed: %s", message.member_id, message.group_id, error
                )
            else:
                result = self.qr_result(task.result())
                log.info(
                    "antispam: QR code read after the verdict (not acted on) from %s in %s: %s",
                    message.member_id,
                    message.group_id,
                    result.details,
                )

        scan.add_done_callback(done)

    async def _second_opinion(self, text: str, why: str, now: datetime) -> CheckResult:
        assert self.llm is not None and self.memo is not None and self.memo.last is not None
        opinion = await self.llm.ask(text, self.memo.last[0], now)
        if opinion is None:
            return CheckResult("llm", False, f"语言模型没有答复（超时、出错或超出每小时次数）；{why}")
        if opinion.spam:
            return CheckResult("llm", True, f"语言模型认为是广告：{opinion.reason}（{why}）", self.llm_action)
        return CheckResult("llm", False, f"语言模型认为不是广告：{opinion.reason}（{why}）")


class SlowChecks:
    """What every configuration's slow checks share: one QR reader (one worker thread), one
    language-model client per distinct `llm` settings, the score memo; `by_config` maps a
    configuration's id to its `GroupSlowChecks`, only for configurations with one of the
    checks on."""

    def __init__(self, configs: list[AntispamConfig], model: Scorer | None) -> None:
        self.reader = QrReader.create() if any(c.qr.enabled for c in configs) else None
        self.memo = ScoreMemo(model) if model is not None and any(c.llm.enabled for c in configs) else None
        self.clients: dict[str, SecondOpinion] = {}
        self.by_config: dict[int, GroupSlowChecks] = {}
        for config in configs:
            self.add(config)

    def add(self, config: AntispamConfig) -> GroupSlowChecks | None:
        scored = self.memo is not None and config.classifier.enabled and config.classifier.action != "ignore"
        if config.llm.enabled and not scored:
            log.warning(
                "antispam: the language model is asked about borderline scores of the text model, "
                "which is off here (classifier.enabled / classifier.action): it will not be asked"
            )
        llm = self._client(config.llm) if config.llm.enabled and scored else None
        if (self.reader is None or not config.qr.enabled) and llm is None:
            return None
        checks = self.by_config[id(config)] = GroupSlowChecks(config, self.reader, llm, self.memo)
        return checks

    def model_for(self, config: AntispamConfig, model: Scorer | None) -> Scorer | None:
        """The text model a configuration's detector scores with (the memo when it asks the
        language model)."""
        return self.memo if config.llm.enabled and self.memo is not None else model

    def _client(self, rule: LlmRule) -> SecondOpinion:
        key = rule.model_dump_json()
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = SecondOpinion(rule)
        return client

    async def aclose(self) -> None:
        if self.reader is not None:
            self.reader.close()
        for client in self.clients.values():
            await client.aclose()
