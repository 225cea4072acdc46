"""What admins teach in chat, and the model the running bot scores with.

- `RecentMessages`: the last messages of each group, bounded in count and age, where
  `广告 @成员` and a quoted `广告` find the message meant.
- `TaughtSamples`: the taught messages (table `antispam_samples`), compiled in memory as
  character 2-gram shingles of the squeezed text with an inverted index, updated at once.
  `TaughtCheck` flags a near-duplicate of a taught ad; `LiveModel` lets a near-duplicate of a
  taught normal message through the text model. Both take effect without a restart.
- `LiveModel`: the text model every detector holds. It is the active model file
  (`<model_dir>/model.json`, written by `qunbot spam-train --activate` or `启用新模型`) or
  the shipped one, swapped in place, so a new model takes effect without rebuilding anything;
  the file is looked at again every `POLL` (a CLI activation is picked up by the running bot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.core.events import GroupMessage, MessageKind, Quote

from .checks import Probe, _result
from .classifier import OLD, ModelError, TextModel, prepare, shipped_model
from .config import Action, TeachingSettings
from .verdict import CheckResult

log = logging.getLogger("qunbot.plugin.antispam")

ACTIVE_FILE = "model.json"
CANDIDATE_FILE = "candidate.json"
POLL = timedelta(seconds=30)
SHINGLE = 2
_DIGITS = re.compile("[1-9]")  # re.sub is several times faster than str.translate here


def shingles(squeezed: str) -> frozenset[str]:
    """Character 2-grams of a squeezed text, digits read as 0 (a new phone number or price
    does not make an ad new)."""
    text = _DIGITS.sub("0", squeezed)
    return frozenset([text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)])


# --- recent messages ----------------------------------------------------------------------------


class RecentMessages:
    """The last `per_group` messages of each group, none older than `max_age`, and `total` at
    most over all groups (the oldest go first): enough to find what `广告 @成员` or a quoted
    `广告` means, and no more. Without the total, a bot in a thousand groups would hold
    200,000 messages (some 100 MB)."""

    def __init__(self, per_group: int = 200, max_age: timedelta = timedelta(hours=24), total: int = 20_000) -> None:
        self.per_group = per_group
        self.max_age = max_age
        self._groups: dict[str, deque[GroupMessage]] = {}
        # Every message kept, oldest first, over all groups; it may still hold some a group's
        # own bounds dropped already, so it holds `total` messages at most in all.
        self._order: deque[GroupMessage] = deque(maxlen=total)

    @property
    def total(self) -> int:
        return self._order.maxlen or 0

    @total.setter
    def total(self, value: int) -> None:
        if value != self._order.maxlen:
            order = self._order = deque(self._order, maxlen=value)
            if len(order) == value:  # shrunk: groups keep only what the total still holds
                self._drop_before(order[0])

    def _drop_before(self, first: GroupMessage) -> None:
        for group_id, queue in list(self._groups.items()):
            while queue and queue[0].at < first.at:
                queue.popleft()
            if not queue:
                del self._groups[group_id]

    def add(self, event: GroupMessage) -> None:
        groups, order = self._groups, self._order
        if len(order) == order.maxlen:
            # The oldest message kept anywhere goes: it is at the front of its group's queue
            # unless the group's own bounds dropped it already.
            evicted = order[0]
            queue = groups.get(evicted.group_id)
            if queue is not None and queue and queue[0] is evicted:
                queue.popleft()
                if not queue:
                    del groups[evicted.group_id]
        order.append(event)
        queue = groups.get(event.group_id)
        if queue is None:
            queue = groups[event.group_id] = deque(maxlen=self.per_group)
        queue.append(event)
        oldest = event.at - self.max_age
        while queue[0].at < oldest:
            queue.popleft()

    def _recent(self, group_id: str, now: datetime) -> Iterable[GroupMessage]:
        oldest = now - self.max_age
        for event in reversed(self._groups.get(group_id, ())):
            if event.at < oldest:
                return
            yield event

    def last_from(self, group_id: str, member_id: str, now: datetime) -> GroupMessage | None:
        """The member's newest message in the group (their commands and system lines aside)."""
        for event in self._recent(group_id, now):
            if event.sender.id == member_id and event.kind is not MessageKind.SYSTEM:
                return event
        return None

    def quoted(self, group_id: str, quote: Quote, now: datetime) -> GroupMessage | None:
        """The message a quote points to: by id when the platform gives one, else the newest
        message of a sender of that name whose text is the quoted text (WeChat may shorten
        it), else that sender's newest message."""
        fallback = None
        quoted = quote.text.strip()
        for event in self._recent(group_id, now):
            if quote.message_id and event.message_id == quote.message_id:
                return event
            sender = event.sender
            if quote.sender_id and sender.id != quote.sender_id:
                continue
            if not quote.sender_id and quote.name not in (sender.name, sender.display, sender.id):
                continue
            text = event.text.strip()
            if quoted and (text == quoted or text.startswith(quoted.rstrip("…").rstrip("."))):
                return event
            if fallback is None:
                fallback = event
        return fallback

    def find_member(self, name_or_id: str, now: datetime) -> GroupMessage | None:
        """The newest message, in any group, of a member with this id or display name."""
        best: GroupMessage | None = None
        for group_id in self._groups:
            for event in self._recent(group_id, now):
                if name_or_id in (event.sender.id, event.sender.name):
                    if best is None or event.at > best.at:
                        best = event
                    break
        return best


# --- taught samples -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    key: int
    similarity: float


class TaughtSamples:
    """Taught messages compiled for near-duplicate search: per label, an inverted index from
    shingle to sample keys (table row ids; negative for samples kept in memory only)."""

    def __init__(self, similarity: float = 0.45, min_chars: int = 8) -> None:
        self.similarity = similarity
        self.min_chars = min_chars
        self._index: dict[bool, dict[str, set[int]]] = {True: {}, False: {}}
        self._shingles: dict[int, tuple[bool, frozenset[str]]] = {}
        self._next_local = -1

    def __len__(self) -> int:
        return len(self._shingles)

    def count(self, spam: bool) -> int:
        return sum(1 for label, _ in self._shingles.values() if label is spam)

    def local_key(self) -> int:
        """A key for a sample that has no table row (no database)."""
        self._next_local -= 1
        return self._next_local

    def add(self, key: int, text: str, spam: bool) -> bool:
        """Learn a raw text; False when it is too short to match anything safely."""
        squeezed = prepare(text)
        if len(squeezed) < self.min_chars:
            return False
        self.discard(key)
        grams = shingles(squeezed)
        self._shingles[key] = (spam, grams)
        index = self._index[spam]
        for gram in grams:
            index.setdefault(gram, set()).add(key)
        return True

    def discard(self, key: int) -> None:
        entry = self._shingles.pop(key, None)
        if entry is None:
            return
        spam, grams = entry
        index = self._index[spam]
        for gram in grams:
            keys = index.get(gram)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[gram]

    def best(self, squeezed: str, spam: bool) -> Match | None:
        """The most similar taught sample of that label at or above `similarity`."""
        index = self._index[spam]
        if not index or len(squeezed) < self.min_chars:
            return None
        mine = shingles(squeezed)
        hits: Counter[int] = Counter()
        for gram in mine:
            keys = index.get(gram)
            if keys:
                hits.update(keys)
        found: Match | None = None
        size = len(mine)
        for key, shared in hits.items():
            similarity = shared / (size + len(self._shingles[key][1]) - shared)
            if similarity >= self.similarity and (found is None or similarity > found.similarity):
                found = Match(key, similarity)
        return found

    def matching(self, text: str, spam: bool) -> list[int]:
        """Keys of every sample of that label the raw text is a near-duplicate of."""
        squeezed = prepare(text)
        if len(squeezed) < self.min_chars:
            return []
        mine = shingles(squeezed)
        out = []
        for key, (label, grams) in self._shingles.items():
            shared = len(mine & grams)
            if label is spam and shared and shared / len(mine | grams) >= self.similarity:
                out.append(key)
        return out


class TaughtCheck:
    """A near-duplicate of a message an admin marked as an ad."""

    name = "taught"
    quiet = None  # reads the text itself: a taught ad may have no ad words at all
    quiet_counts = True

    def __init__(self, rule: TeachingSettings, samples: TaughtSamples) -> None:
        self.action = Action.of(rule.action)
        self.samples = samples
        self._none = _result(self.name, False, "与管理员标记过的广告都不相似", self.action)

    def check(self, probe: Probe) -> CheckResult:
        return self.check_quiet(probe.features.squeezed, "", "", None, OLD)

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        found = self.samples.best(squeezed, True)
        if found is None:
            return self._none
        return _result(self.name, True, f"与管理员标记的广告 #{found.key} 相似（{found.similarity:.2f}）", self.action)


# --- the live model -----------------------------------------------------------------------------


def active_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / ACTIVE_FILE


def candidate_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / CANDIDATE_FILE


def deployment_model(model_dir: str | Path) -> tuple[TextModel, str, str | None]:
    """(model, where it came from, problem): the active model file when there is one and it
    can be read, else the shipped model (with the problem naming the file)."""
    path = active_path(model_dir)
    if not path.exists():
        return shipped_model(), "shipped", None
    try:
        return TextModel.load(path), str(path), None
    except ModelError as err:
        return shipped_model(), "shipped", str(err)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def activate(model_dir: str | Path) -> TextModel:
    """Make the candidate the active model: checked first (a damaged candidate is refused,
    naming it), then copied over the active file through a rename, so the running bot never
    reads half a file."""
    source = candidate_path(model_dir)
    if not source.exists():
        raise ModelError(f"{source}: no candidate model; build one with `qunbot spam-train`")
    model = TextModel.load(source)
    target = active_path(model_dir)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return model


class WithTaught:
    """A text model as the bot uses it (duck-types `TextModel.score` for `ClassifierCheck`):
    near-duplicates of taught normal messages score 0, everything else what the model says."""

    __slots__ = ("model", "taught")

    def __init__(self, model: TextModel, taught: TaughtSamples) -> None:
        self.model = model
        self.taught = taught

    def score(self, squeezed: str, kind: str = "text", who: str = OLD) -> float:
        if self.taught.best(squeezed, False) is not None:
            return 0.0
        return self.model.score(squeezed, kind, who)

    def score_text(self, text: str, kind: str = "text", who: str = OLD) -> float:
        return self.score(prepare(text), kind, who)


class LiveModel(WithTaught):
    """The running bot's model: the active model file or the shipped one, swapped in place."""

    __slots__ = ("_mtime", "_next_poll", "_task", "model_dir", "problem", "source")

    def __init__(
        self,
        model: TextModel,
        source: str,
        taught: TaughtSamples,
        model_dir: str | Path,
        problem: str | None = None,
        mtime: float | None = None,
    ) -> None:
        """`mtime`: the active file's when `model` was read from it (None: no file)."""
        super().__init__(model, taught)
        self.source = source
        self.model_dir = Path(model_dir)
        self.problem = problem  # why the active file is not used (told to the bot admins once)
        self._mtime = mtime
        self._next_poll: datetime | None = None
        self._task: asyncio.Task[bool] | None = None

    @classmethod
    def load(cls, model_dir: str | Path, taught: TaughtSamples) -> LiveModel:
        """The deployment's model (see `deployment_model`), file I/O included: run it in a thread."""
        mtime = _mtime(active_path(model_dir))
        model, source, problem = deployment_model(model_dir)
        return cls(model, source, taught, model_dir, problem, mtime)

    def use(self, model: TextModel, source: str, mtime: float | None) -> None:
        """Switch to a model just activated (`mtime`: the active file's, so it is not read again)."""
        self.model, self.source, self.problem, self._mtime = model, source, None, mtime

    def stat(self) -> float | None:
        return _mtime(active_path(self.model_dir))

    def poll(self, now: datetime, tell: Callable[[str], object]) -> None:
        """Called per message (a comparison): every `POLL`, look at the active file in a
        task off the message path and switch to it when it changed."""
        if self._next_poll is not None and now < self._next_poll:
            return
        self._next_poll = now + POLL
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.refresh(tell))

    async def refresh(self, tell: Callable[[str], object] | None = None) -> bool:
        """Switch to the active file if it changed since it was last read. A file that cannot
        be read leaves the current model in use, and is told (once per change of the file)."""
        mtime = await asyncio.to_thread(self.stat)
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        path = active_path(self.model_dir)
        if mtime is None:  # the active file was deleted: back to the shipped model
            self.model, self.source, self.problem = shipped_model(), "shipped", None
            log.info("anti-spam model: %s removed, back to the shipped model", path)
            return True
        try:
            model = await asyncio.to_thread(TextModel.load, path)
        except ModelError as err:
            self.problem = str(err)
            log.error("anti-spam model not switched: %s", err)
            if tell is not None:
                outcome = tell(f"⚠️ 新的广告模型文件无法使用，仍沿用当前模型：{err}")
                if asyncio.iscoroutine(outcome):
                    await outcome
            return False
        self.model, self.source, self.problem = model, str(path), None
        log.info("anti-spam model switched to %s (%s)", path, model.info)
        return True
