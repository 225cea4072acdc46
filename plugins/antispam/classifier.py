"""The learned text check: logistic regression over character n-grams of the squeezed text.

Why hand-written and not scikit-learn: the model has to train in seconds (`qunbot spam-train`,
a few thousand short lines), score every chat message in microseconds, and be stored as a
small JSON file an operator can read. scikit-learn would add numpy and scipy (~100 MB) to every
install for a model whose scoring is one dictionary lookup per n-gram. Why logistic regression
and not naive Bayes: both were cross-validated on the shipped corpus (5 folds, the frozen test
split left out); at a 1% false-positive rate naive Bayes caught 54% of the ads the text alone
can show and logistic regression 73%, because naive Bayes counts every correlated n-gram of a
phrase as independent evidence and is sure of itself on short ordinary lines.

Features: the set of character n-grams (`NGRAMS`) of the squeezed text (letters, digits and
CJK only; see `textforms.squeeze`), with every digit read as "0" so 日赚500 and 日赚800 share
their grams, scaled by 1/sqrt(count) so long and short messages weigh alike; and the
message's context as words: its kind, the sender's standing (new, recent or old; no history
counts as old) and the two together, and whether the text is empty or very short. The context lets one model weigh
"扫码进群" under an image from a member of ten minutes differently from the same words of a
member of two years (cross-validated: at a 1% false-positive rate the context raised the
share of ads caught from 0.72 to 0.84). Training is AdaGrad with L2 regularisation, in a
fixed order (the same corpus gives the same model).
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import random
import re
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

import ahocorasick

from bot.core.events import MessageKind
from bot.core.heap import return_freed_memory
from bot.core.matching import root_first

from .textforms import deep_normalize, squeeze

FORMAT = "qunbot-spam-model"
VERSION = 3  # 3: lines read through the model's vocabulary, in training as in scoring
NGRAMS = (1, 2, 3)
# 20 epochs (10 before) judged each writer's lines better when trained on the other writers'
# (leave-one-writer-out over A–K). L2 went from 3e-4 to 1e-3 then, on 28,000 lines; on 240,000
# it went back down to 2e-4: through the whole detector on writers the model had not seen,
# trained on A–EH and judged on EI–EN, 0.853 of ads caught at 52 false positives against 0.827
# at 50 (5e-4: 0.842 at 52; 1e-4: 0.856 at 58; 2e-3: 0.804 at 47), and trained on A–EB and
# judged on EC–EN, 0.865 at 95 against 0.840 at 86 (of 7,356 ads and 8,532 ordinary lines).
# 30 epochs from 2026-12-08: through the whole detector on half the writers (A–IA) with a model
# trained on the other half, both ways, 198 more of 151,166 ads caught at 3 more of 189,383
# ordinary lines flagged (40: 78 more ads at 23 more lines, the threshold's own exchange rate).
# Training takes half as long again (some 5 minutes).
EPOCHS = 30
L2 = 2e-4
RATE = 0.2
MIN_DF = 2  # grams of fewer training lines than this are not part of the model
CORPUS_PACKAGE = f"{__package__}.corpus"
SHIPPED_MODEL = "model.json"

_DIGIT = re.compile("[1-9]")
_NO_GRAM = "\x00\x00\x00\x00"  # the one word of an automaton with no grams: NUL never occurs in text
_concat = operator.add
_second = operator.itemgetter(1)

# A sender's standing, as the model reads it (the boundaries are part of the model).
NEW, RECENT, OLD = "new", "recent", "old"
_NEW_AGE, _NEW_SENT = timedelta(days=1), 3
RECENT_AGE, RECENT_SENT = timedelta(days=7), 20
SHORT = 6  # squeezed characters below which a text is "short"

# Below this the text model reads a message as plainly ordinary, far below `veto_below`, and
# may set aside findings the general veto leaves alone. Judged on half the writers (A-GM) with
# a model trained on the other half, both ways:
# - a newcomer's QR code with a caption that says what it is for (a school's sign-up form, the
#   property's payment code): the new-member warning and what the QR reader found in it.
#   Phishing codes come with captions written to read as a notice. 0.1 set aside 184 of 247
#   newcomers' ordinary captioned codes and 17 of 3,960 such ads (0.2: 218 and 35; the general
#   0.75: 169 more ads lost);
# - a removal by the phrase rule: a group's rules or a warning that names the scams in full
#   ("群规：不荐股 不带单 不收费 谁发谁踢"). 0.1 set aside 30 of 608 long-time members' false
#   positives and 1 ad of 131,763 (0.3: 47 and 6).
PLAINLY_ORDINARY = 0.1


def standing(age: timedelta | None, sent: int | None) -> str:
    """new: in the group under a day or fewer than 3 messages; recent: under a week or fewer
    than 20; old: longer. No history (present before the bot, or an input line without it)
    counts as old, as everywhere in anti-spam: most members of a real group joined before
    the bot did."""
    if (age is not None and age < _NEW_AGE) or (sent is not None and sent < _NEW_SENT):
        return NEW
    if (age is not None and age <= RECENT_AGE) or (sent is not None and sent < RECENT_SENT):
        return RECENT
    return OLD


def _context(kind: str, who: str, size: int) -> tuple[str, ...]:
    length = "@empty" if size == 0 else "@short" if size < SHORT else "@text"
    return (f"@k:{kind}", f"@m:{who}", f"@k:{kind}@m:{who}", length)


class ModelError(ValueError):
    """A model file or sample set that cannot be used; the message names it and says why."""


_WEIGHT_SCALE = 10_000  # weights are stored in ten-thousandths (`train` rounds them so)


def _gram_values(weights: list[float]) -> tuple[array[int], int]:
    """Each gram's value in the automaton, and their `spread`. The automaton stores 32-bit C
    ints; a gram's is its weight in ten-thousandths times the spread, plus the gram's rank
    among the grams sharing that weight. Ranks make every value unique, so a text's set of
    values dedupes its grams as their numbers would, and one C-level `sum` of the set is the
    sum of their weights in units of 1 / (`_WEIGHT_SCALE` × spread): a float lookup per gram
    in an array of weights took an eighth of the anti-spam check's time. Scoring thus reads
    each weight less than a ten-thousandth above the file's (`train` rounds to that);
    `value // spread` gives the file's exactly. Two passes over the weights and C ints, not a
    list of int objects, which raised the bench's peak memory by some 18 MB."""
    sharing = Counter(round(w * _WEIGHT_SCALE) for w in weights)
    most = max(sharing.values(), default=1)
    spread = most | 1  # above every rank; odd (a power of two would zero most values' low bits, a set's slots)
    largest = max(map(abs, sharing), default=0)
    if (largest + 1) * spread >= 1 << 31:
        raise ModelError(
            f"weights too large or too many alike ({largest / _WEIGHT_SCALE} at most, {most} sharing one); "
            "rebuild it with `qunbot spam-train`"
        )
    values = array("i")
    ranks: dict[int, int] = {}
    for w in weights:
        step = round(w * _WEIGHT_SCALE)
        rank = ranks[step] = ranks.get(step, -1) + 1
        values.append(step * spread + rank)
    return values, spread


def grams(squeezed: str, kind: str = "text", who: str = OLD) -> set[str]:
    """The model's features: the distinct 1-, 2- and 3-grams of a squeezed text (digits read
    as 0) and the context words. Built with C-level `map`s (this runs on every message)."""
    text = squeezed if squeezed.isalpha() else _DIGIT.sub("0", squeezed)
    pairs = list(map(_concat, text, text[1:]))
    out = set(text)
    out.update(pairs)
    out.update(map(_concat, pairs, text[2:]))
    out.update(_context(kind, who, len(text)))
    return out


def prepare(text: str) -> str:
    """Raw text → the squeezed form the model reads (the checks compute it once per message)."""
    return squeeze(deep_normalize(text))


class Scorer(Protocol):
    """What the text check needs of a model: `TextModel`, or a wrapper around one (the running
    bot's `teaching.LiveModel`, `slowchecks.ScoreMemo`)."""

    def score(self, squeezed: str, kind: str = "text", who: str = ...) -> float: ...


class TextModel:
    """A trained model: a weight per n-gram and a bias; `score` is a spam probability."""

    __slots__ = ("_automaton", "_context_weights", "_context_words", "_spread", "_unit", "_weights", "bias", "info")

    def __init__(self, weights: dict[str, float], bias: float, info: dict[str, Any] | None = None) -> None:
        # Every weight; None once a loaded model keeps its grams in the automaton only (see
        # `weights`). The context words (kind, standing, length) stay here either way.
        self._weights: dict[str, float] | None = weights
        self._context_words = {word: w for word, w in weights.items() if word[0] == "@"}
        self.bias = bias
        self.info = info or {}
        self._context_weights: dict[tuple[str, str, int], float] = {}  # (kind, standing, length class)
        # Built when a file is loaded, else at the first score (training and cross-validation
        # never need it).
        self._automaton: ahocorasick.Automaton | None = None
        self._spread = 1  # of the automaton's values (`_gram_values`)
        self._unit = 0.0  # the weight of one unit of a value

    @classmethod
    def train(
        cls,
        examples: Iterable[Example],
        *,
        prepared: bool = False,
        epochs: int = EPOCHS,
        l2: float = L2,
        rate: float = RATE,
    ) -> TextModel:
        """Train on examples: (text, is_spam) or (text, is_spam, kind, standing); raw texts
        unless `prepared` (already squeezed)."""
        found: list[tuple[set[str], float]] = []
        counts = {True: 0, False: 0}
        for example in examples:
            text, spam = example[0], example[1]
            kind, who = (example[2], example[3]) if len(example) == 4 else ("text", OLD)
            found.append((grams(text if prepared else prepare(text), kind, who), 1.0 if spam else 0.0))
            counts[spam] += 1
        if not counts[True] or not counts[False]:
            raise ModelError(
                f"training needs both spam and normal samples (got {counts[True]} spam, {counts[False]} normal)"
            )
        # The vocabulary: grams of at least MIN_DF training lines (a gram of one line only helps
        # fit that line, and such grams would make up most of the file), and the context words.
        # A line is read through the vocabulary in training as in scoring, where the automaton
        # finds only the model's grams: the scale counts the same grams both times.
        df = Counter(f for feats, _ in found for f in feats)
        # Each gram gets a number and the weights live in lists: the update loop below runs
        # some 80 million times on the shipped corpus, and a list index costs less than a
        # dict lookup by string (about 1.4x faster overall; the same model to the last digit).
        numbers: dict[str, int] = {}
        docs: list[tuple[tuple[int, ...], float, float]] = []
        for feats, label in found:
            known = sorted(f for f in feats if f[0] == "@" or df[f] >= MIN_DF)
            ids = tuple([numbers.setdefault(f, len(numbers)) for f in known])
            docs.append((ids, label, 1.0 / math.sqrt(len(ids))))
        weights = [0.0] * len(numbers)
        squares = [1e-8] * len(numbers)
        bias, bias_square = 0.0, 1e-8
        order = random.Random(0)
        sqrt = math.sqrt
        for _ in range(epochs):
            order.shuffle(docs)
            for doc_feats, label, scale in docs:
                z = bias + scale * sum([weights[f] for f in doc_feats])
                error = _sigmoid(z) - label
                step = error * scale
                for f in doc_feats:
                    w = weights[f]
                    g = step + l2 * w
                    sq = squares[f] + g * g
                    squares[f] = sq
                    weights[f] = w - rate * g / sqrt(sq)
                bias_square += error * error
                bias -= rate * error / sqrt(bias_square)
        kept = {f: round(weights[n], 4) for f, n in numbers.items()}
        info = {"spam": counts[True], "normal": counts[False], "grams": len(kept), "epochs": epochs, "l2": l2}
        return cls(kept, bias, info)

    def log_odds(self, squeezed: str, kind: str = "text", who: str = OLD) -> float:
        """The weights of the text's grams the model knows, and of its context words, summed
        and scaled. The grams are found in one pass of an Aho-Corasick automaton over the
        model's grams, all in C: no per-gram string is built or hashed in Python. Each match
        is the gram's value (`_gram_values`): a set of them dedupes the grams, and their sum is
        the sum of the grams' weights, in units of `self._unit`. The automaton walks characters:
        walking UTF-8 bytes (as `textforms.PhraseAutomaton` does) gives the same matches in the
        same order, but took about a tenth longer per message through the whole detector
        (interleaved rounds, process CPU time), its 95,000 nodes three steps a character."""
        text = squeezed if squeezed.isalpha() else _DIGIT.sub("0", squeezed)
        size = len(text)
        key = (kind, who, 0 if size == 0 else 1 if size < SHORT else 2)
        total = self._context_weights.get(key)
        if total is None:
            total = self._context_weights[key] = sum(
                self._context_words.get(word, 0.0) for word in _context(kind, who, size)
            )
        known = 4  # the context words
        if size:
            found = set(map(_second, (self._automaton or self._build_automaton()).iter(text)))
            total += sum(found) * self._unit
            known += len(found)
        return self.bias + total / math.sqrt(known)

    @property
    def weights(self) -> dict[str, float]:
        """Every weight by gram or context word. A model loaded from a file keeps its grams in
        the automaton only (a second copy as a dict of strings would cost some 13 MB for the
        shipped model), and this rebuilds the mapping from it (to save or compare a model)."""
        if self._weights is not None:
            return self._weights
        automaton = self._automaton or self._build_automaton()
        spread = self._spread
        # In sorted order, as files list them (the automaton lists them in its own).
        rebuilt = {
            gram: (value // spread) / _WEIGHT_SCALE for gram, value in sorted(automaton.items()) if gram != _NO_GRAM
        }
        rebuilt.update(self._context_words)
        return rebuilt

    def _build_automaton(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)  # values as C ints, not objects
        weights = self.weights
        grams = [gram for gram in weights if gram[0] != "@"]  # context words are never part of a text
        values, spread = _gram_values([weights[gram] for gram in grams])
        # The grams go in common characters first: the automaton scans a node's children
        # linearly, and the root has thousands.
        for number in root_first(grams):
            automaton.add_word(grams[number], values[number])
        for number, gram in enumerate(grams):
            automaton.add_word(gram, values[number])
        if not grams:
            automaton.add_word(_NO_GRAM, 0)  # an automaton needs a word
        automaton.make_automaton()
        self._automaton, self._spread, self._unit = automaton, spread, 1 / (_WEIGHT_SCALE * spread)
        return automaton

    def score(self, squeezed: str, kind: str = "text", who: str = OLD) -> float:
        """Spam probability of a message: its squeezed text, kind and sender's standing."""
        return _sigmoid(self.log_odds(squeezed, kind, who))

    def score_text(self, text: str, kind: str = "text", who: str = OLD) -> float:
        return self.score(prepare(text), kind, who)

    # --- files --------------------------------------------------------------------------------

    def dumps(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "ngrams": list(NGRAMS),
                "bias": self.bias,
                "info": self.info,
                "weights": self.weights,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def loads(cls, data: str, source: str = "model") -> TextModel:
        try:
            obj = json.loads(data)
        except ValueError as err:
            raise ModelError(f"{source}: not a model file (invalid JSON: {err})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ModelError(f"{source}: not a qunbot spam model (format is not {FORMAT!r})")
        if obj.get("version") != VERSION or obj.get("ngrams") != list(NGRAMS):
            raise ModelError(
                f"{source}: model version {obj.get('version')} / n-grams {obj.get('ngrams')} do not "
                f"match this qunbot ({VERSION} / {list(NGRAMS)}); rebuild it with `qunbot spam-train`"
            )
        weights, bias = obj.get("weights"), obj.get("bias")
        if (
            not isinstance(weights, dict)
            or not isinstance(bias, (int, float))
            or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) for k, v in weights.items()
            )
        ):
            raise ModelError(
                f"{source}: damaged model (weights or bias missing or not numbers); rebuild it with `qunbot spam-train`"
            )
        info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
        for key, value in weights.items():  # JSON gives 0 for 0.0: floats throughout, in place
            if type(value) is not float:  # (no second copy of a dict of every gram)
                weights[key] = float(value)
        model = cls(weights, float(bias), info)
        # A file is loaded to score with (in a thread when the bot switches models): the
        # automaton is built now rather than on the event loop at the first message (some
        # 70 ms for the shipped model).
        try:
            model._build_automaton()
        except ModelError as err:
            raise ModelError(f"{source}: {err}") from None
        model._weights = None  # the automaton holds the grams now
        del obj, weights  # the parsed file: some 25 MB for the shipped model, freed here
        return_freed_memory()
        return model

    def save(self, path: Path) -> None:
        """Written to a temporary file and renamed: a crash never leaves half a model."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.dumps(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TextModel:
        try:
            data = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ModelError(f"{path}: cannot read the model ({err})") from None
        return cls.loads(data, str(path))


def _sigmoid(z: float) -> float:
    if z < -40:
        return 0.0
    if z > 40:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


# --- the shipped corpus ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled line of a corpus file (the spam-check input format plus labels)."""

    id: str
    text: str
    spam: bool
    kind: str = "text"
    url: str | None = None
    member_days: float | None = None
    member_messages: int | None = None
    family: str | None = None
    community: str | None = None

    @classmethod
    def from_json(cls, obj: Any, source: str) -> Sample:
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("text", ""), str)
            or not isinstance(obj.get("spam"), bool)
            or "id" not in obj
        ):
            raise ModelError(f"{source}: expected an object with id, text and spam (true/false)")
        return cls(
            id=str(obj["id"]),
            text=obj.get("text") or "",
            spam=obj["spam"],
            kind=obj.get("kind") or "text",
            url=obj.get("url"),
            member_days=obj.get("member_days"),
            member_messages=obj.get("member_messages"),
            family=obj.get("family"),
            community=obj.get("community"),
        )


def read_samples(lines: Iterable[str], source: str) -> Iterator[Sample]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise ModelError(f"{source}:{number}: invalid JSON ({err})") from None
        yield Sample.from_json(obj, f"{source}:{number}")


@cache
def corpus_samples() -> tuple[Sample, ...]:
    """The development corpus shipped in `plugins/antispam/corpus/` (its README says how it
    was made). The frozen test split is not part of it."""
    return read_corpus(resources.files(CORPUS_PACKAGE), "corpus")


def read_corpus(folder: Traversable, name: str) -> tuple[Sample, ...]:
    """Every `*.jsonl` file of a folder, in name order (`spam-train --corpus` reads an
    operator's own corpus this way); a bad line raises `ModelError` naming file and line."""
    out: list[Sample] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jsonl"):
            out.extend(read_samples(entry.read_text(encoding="utf-8").splitlines(), f"{name}/{entry.name}"))
    return tuple(out)


Example = tuple[str, bool] | tuple[str, bool, str, str]


def training_examples(samples: Iterable[Sample]) -> Iterator[Example]:
    """What the model learns from: each sample's text (captions included), kind and standing."""
    for s in samples:
        age = timedelta(days=s.member_days) if s.member_days is not None else None
        yield s.text, s.spam, MessageKind.parse(s.kind).value, standing(age, s.member_messages)


def corpus_digest(samples: Iterable[Sample]) -> str:
    """What the shipped model was trained on, as a hash (the model file records it)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(
            json.dumps([s.id, s.text, s.spam, s.kind, s.member_days, s.member_messages], ensure_ascii=False).encode()
        )
    return h.hexdigest()[:16]


def build_shipped() -> TextModel:
    """Train the model on the shipped corpus (a few seconds); `shipped_model` loads the result."""
    samples = corpus_samples()
    model = TextModel.train(training_examples(samples))
    model.info["corpus"] = corpus_digest(samples)
    return model


@cache
def shipped_model() -> TextModel:
    """The model trained on the shipped corpus, from `model.json` beside this file (rebuilt
    with `python -m plugins.antispam.classifier` whenever the corpus changes; a test checks
    that it matches the corpus)."""
    return TextModel.loads(
        resources.files(__package__).joinpath(SHIPPED_MODEL).read_text("utf-8"), f"plugins/antispam/{SHIPPED_MODEL}"
    )


if __name__ == "__main__":
    built = build_shipped()
    target = Path(__file__).with_name(SHIPPED_MODEL)
    built.save(target)
    sys.stdout.write(f"{target}: {built.info}\n")
