"""`qunbot spam-eval` and the figures of `qunbot spam-train`.

`evaluate` runs a labelled JSONL file (the corpus format: id, text, kind, url, member_days,
member_messages, spam, family, community) through `spamcheck.check_lines`, exactly what
`qunbot spam-check` does, and counts: recall, false-positive rate and precision overall, per
kind, per sender's standing and per family, and the ids it got wrong. `cross_validate` gives a text model's figures
on lines it was not trained on (k folds), as `spam-train` prints them before anything is
switched on.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.core.events import MessageKind

from .checks import model_reads
from .classifier import NEW, OLD, RECENT, Example, Scorer, TextModel, prepare, standing
from .detector import Detector
from .spamcheck import QR_KINDS, check_lines, message_from_json


@dataclass
class Tally:
    """Counts of one slice (all lines, one kind, one family)."""

    ads: int = 0
    caught: int = 0
    normal: int = 0
    flagged: int = 0

    def merge(self, other: Tally) -> None:
        self.ads += other.ads
        self.caught += other.caught
        self.normal += other.normal
        self.flagged += other.flagged

    def add(self, spam: bool, flagged: bool) -> None:
        if spam:
            self.ads += 1
            self.caught += flagged
        else:
            self.normal += 1
            self.flagged += flagged

    @property
    def recall(self) -> float | None:
        return self.caught / self.ads if self.ads else None

    @property
    def false_positive_rate(self) -> float | None:
        return self.flagged / self.normal if self.normal else None

    @property
    def precision(self) -> float | None:
        hits = self.caught + self.flagged
        return self.caught / hits if hits else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ads": self.ads,
            "caught": self.caught,
            "normal": self.normal,
            "flagged": self.flagged,
            "recall": _round(self.recall),
            "false_positive_rate": _round(self.false_positive_rate),
            "precision": _round(self.precision),
        }

    def line(self, label: str) -> str:
        parts = [f"{label:<16}"]
        if self.ads:
            parts.append(f"recall {_pct(self.recall)} ({self.caught}/{self.ads})")
        if self.normal:
            parts.append(f"false positives {_pct(self.false_positive_rate)} ({self.flagged}/{self.normal})")
        if self.caught + self.flagged:
            parts.append(f"precision {_pct(self.precision)}")
        return "  ".join(parts)


@dataclass(frozen=True, slots=True)
class Miss:
    id: Any
    spam: bool  # the label: True = a missed ad, False = a normal line flagged
    kind: str
    family: str | None
    text: str
    rules: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "spam": self.spam,
            "kind": self.kind,
            "family": self.family,
            "rules": self.rules,
            "text": self.text,
        }


@dataclass
class Evaluation:
    overall: Tally = field(default_factory=Tally)
    kinds: dict[str, Tally] = field(default_factory=dict)
    # By the sender's standing (new, recent, old: `classifier.standing`). Most ads come from
    # newcomers and most normal lines from old members, so the overall false-positive rate hides
    # how often an ordinary newcomer is warned: this slice shows it.
    standings: dict[str, Tally] = field(default_factory=dict)
    families: dict[str, Tally] = field(default_factory=dict)
    missed: list[Miss] = field(default_factory=list)  # ads let through
    false_alarms: list[Miss] = field(default_factory=list)  # normal lines flagged
    errors: list[str] = field(default_factory=list)  # lines that could not be judged

    def as_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.as_json(),
            "kinds": {k: t.as_json() for k, t in sorted(self.kinds.items())},
            "standings": {k: self.standings[k].as_json() for k in STANDINGS if k in self.standings},
            "families": {f: t.as_json() for f, t in sorted(self.families.items())},
            "missed": [m.as_json() for m in self.missed],
            "false_positives": [m.as_json() for m in self.false_alarms],
            "errors": self.errors,
        }

    def report(self) -> list[str]:
        out = [self.overall.line("overall"), "", "by kind:"]
        out += [f"  {t.line(k)}" for k, t in sorted(self.kinds.items())]
        out += ["", "by sender (new: under a day or 3 messages; recent: a week or 20; old: longer or unknown):"]
        out += [f"  {self.standings[k].line(k)}" for k in STANDINGS if k in self.standings]
        if self.families:
            out += ["", "by family (ads):"]
            out += [f"  {t.line(f)}" for f, t in sorted(self.families.items())]
        out += ["", f"missed ads ({len(self.missed)}):"]
        out += [f"  {m.id}  [{m.kind}{'/' + m.family if m.family else ''}] {m.text[:60]}" for m in self.missed]
        out += ["", f"false positives ({len(self.false_alarms)}):"]
        out += [f"  {m.id}  [{m.kind}] {','.join(m.rules)}: {m.text[:60]}" for m in self.false_alarms]
        if self.errors:
            out += ["", f"lines not judged ({len(self.errors)}):", *[f"  {e}" for e in self.errors]]
        return out


def evaluate(lines: Iterable[str], detector: Detector) -> Evaluation:
    """Judge every labelled line with `check_lines` (the spam-check path) and count."""
    result = Evaluation()
    every = list(lines)
    kept = [line for line in every if line.strip()]  # check_lines gives one verdict per such line
    for line, (verdict, error) in zip(kept, check_lines(every, detector), strict=True):
        if error is not None:
            result.errors.append(error)
            continue
        obj = json.loads(line)  # check_lines read it: valid JSON, an object
        spam = obj.get("spam")
        if not isinstance(spam, bool):
            result.errors.append(f'{obj.get("id")}: no label ("spam": true/false)')
            continue
        kind = _kind_label(obj.get("kind"))
        family = obj.get("family") if isinstance(obj.get("family"), str) and obj.get("family") else None
        flagged = bool(verdict["spam"])
        result.overall.add(spam, flagged)
        result.kinds.setdefault(kind, Tally()).add(spam, flagged)
        result.standings.setdefault(_standing_of(obj), Tally()).add(spam, flagged)
        if family is not None and spam:
            result.families.setdefault(family, Tally()).add(spam, flagged)
        if spam != flagged:
            rules = [c["name"] for c in verdict["checks"] if c["spam"]]
            miss = Miss(verdict["id"], spam, kind, family, str(obj.get("text") or ""), rules)
            (result.missed if spam else result.false_alarms).append(miss)
    return result


STANDINGS = (NEW, RECENT, OLD)


def _standing_of(obj: dict[str, Any]) -> str:
    """The sender's standing as the detector reads it (check_lines has read this line)."""
    message = message_from_json(obj)[1]
    return standing(message.member_age, message.member_messages)


def _kind_label(raw: object) -> str:
    """One slice per kind however the file spells it (`mini-program`, `card`, `MiniProgram`);
    a QR image keeps its own slice, and an unknown spelling is shown as written."""
    if not isinstance(raw, str) or not raw.strip():
        return MessageKind.TEXT.value
    if raw.strip().lower() in QR_KINDS:
        return "qr"
    kind = MessageKind.parse(raw)
    return kind.value if kind is not MessageKind.OTHER else raw.strip()


def _unpack(example: Example) -> tuple[str, bool, str, str]:
    text, spam = example[0], example[1]
    return (text, spam, example[2], example[3]) if len(example) == 4 else (text, spam, "text", OLD)


def _flags(model: Scorer, squeezed: str, kind: str, who: str, thresholds: dict[str, float], min_chars: int) -> bool:
    """As the classifier check decides, at the bars of the sender's standing (the check's lower
    bar for an established member's short text is left out: these figures compare models)."""
    return model_reads(kind, squeezed, min_chars) and model.score(squeezed, kind, who) >= thresholds[who]


def cross_validate(
    samples: Sequence[Example],
    thresholds: dict[str, float],
    min_chars: int,
    folds: int = 5,
    mark: Sequence[bool] | None = None,
    workers: int = 1,
) -> tuple[Tally, Tally]:
    """The text model's figures on lines it was not trained on: every `folds`-th line is held
    out in turn (deterministic). Returns (all lines, the lines `mark`ed, e.g. this
    deployment's own samples). `thresholds` by the sender's standing (`classifier.standing`).
    With `workers` > 1 the folds train in that many processes (each training is pure Python,
    so threads would take turns); the figures are the same either way."""
    prepared = [(prepare(text), spam, kind, who) for text, spam, kind, who in map(_unpack, samples)]
    marks = list(mark) if mark is not None else [False] * len(prepared)
    jobs = [(prepared, fold, folds, thresholds, min_chars, marks) for fold in range(folds)]
    if workers > 1 and folds > 1:
        # spawn, not fork: the caller may hold threads (an event loop, a database driver).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, folds), mp_context=context) as pool:
            results = list(pool.map(_one_fold, *zip(*jobs, strict=True)))
    else:
        results = [_one_fold(*job) for job in jobs]
    everything, marked = Tally(), Tally()
    for fold_all, fold_marked in results:
        everything.merge(fold_all)
        marked.merge(fold_marked)
    return everything, marked


def _one_fold(
    prepared: list[tuple[str, bool, str, str]],
    fold: int,
    folds: int,
    thresholds: dict[str, float],
    min_chars: int,
    marks: list[bool],
) -> tuple[Tally, Tally]:
    model = TextModel.train([p for i, p in enumerate(prepared) if i % folds != fold], prepared=True)
    everything, marked = Tally(), Tally()
    for i in range(fold, len(prepared), folds):
        squeezed, spam, kind, who = prepared[i]
        flagged = _flags(model, squeezed, kind, who, thresholds, min_chars)
        everything.add(spam, flagged)
        if marks[i]:
            marked.add(spam, flagged)
    return everything, marked


def score_with(model: Scorer, samples: Iterable[Example], thresholds: dict[str, float], min_chars: int) -> Tally:
    tally = Tally()
    for text, spam, kind, who in map(_unpack, samples):
        tally.add(spam, _flags(model, prepare(text), kind, who, thresholds, min_chars))
    return tally


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
