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
their grams, scaled by 1/sqrt(count) so long and short messages weigh alike. Training is
AdaGrad with L2 regularisation, in a fixed order (the same corpus gives the same model).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .textforms import deep_normalize, squeeze

FORMAT = "qunbot-spam-model"
VERSION = 2
NGRAMS = (1, 2, 3)
EPOCHS = 15
L2 = 1e-3
RATE = 0.5
PRUNE = 1e-3  # weights smaller than this are left out of the model file
CORPUS_PACKAGE = f"{__package__}.corpus"

_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")


class ModelError(ValueError):
    """A model file or sample set that cannot be used; the message names it and says why."""


def grams(squeezed: str) -> set[str]:
    """The distinct n-grams of a squeezed text, digits read as 0."""
    text = squeezed.translate(_DIGITS_AS_ZERO)
    size = len(text)
    out: set[str] = set()
    for n in NGRAMS:
        out.update([text[i : i + n] for i in range(size - n + 1)])
    return out


def prepare(text: str) -> str:
    """Raw text → the squeezed form the model reads (the checks compute it once per message)."""
    return squeeze(deep_normalize(text))


class TextModel:
    """A trained model: a weight per n-gram and a bias; `score` is a spam probability."""

    __slots__ = ("bias", "info", "weights")

    def __init__(self, weights: dict[str, float], bias: float, info: dict[str, Any] | None = None) -> None:
        self.weights = weights
        self.bias = bias
        self.info = info or {}

    @classmethod
    def train(cls, samples: Iterable[tuple[str, bool]], *, prepared: bool = False, epochs: int = EPOCHS,
              l2: float = L2, rate: float = RATE) -> TextModel:
        """Train on (text, is_spam) pairs; raw texts unless `prepared` (already squeezed)."""
        docs: list[tuple[tuple[str, ...], float, float]] = []
        counts = {True: 0, False: 0}
        for text, spam in samples:
            feats = tuple(sorted(grams(text if prepared else prepare(text))))
            if feats:
                docs.append((feats, 1.0 if spam else 0.0, 1.0 / math.sqrt(len(feats))))
                counts[spam] += 1
        if not counts[True] or not counts[False]:
            raise ModelError(f"training needs both spam and normal samples (got {counts[True]} spam, "
                             f"{counts[False]} normal)")
        weights: dict[str, float] = {}
        squares: dict[str, float] = {}
        bias, bias_square = 0.0, 1e-8
        order = random.Random(0)
        for _ in range(epochs):
            order.shuffle(docs)
            for feats, label, scale in docs:
                z = bias + scale * sum([weights.get(f, 0.0) for f in feats])
                error = _sigmoid(z) - label
                for f in feats:
                    w = weights.get(f, 0.0)
                    g = error * scale + l2 * w
                    sq = squares.get(f, 1e-8) + g * g
                    squares[f] = sq
                    weights[f] = w - rate * g / math.sqrt(sq)
                bias_square += error * error
                bias -= rate * error / math.sqrt(bias_square)
        kept = {f: round(w, 5) for f, w in weights.items() if abs(w) >= PRUNE}
        info = {"spam": counts[True], "normal": counts[False], "grams": len(kept), "epochs": epochs, "l2": l2}
        return cls(kept, bias, info)

    def log_odds(self, squeezed: str) -> float:
        feats = grams(squeezed)
        if not feats:
            return self.bias
        get = self.weights.get
        return self.bias + sum([get(g, 0.0) for g in feats]) / math.sqrt(len(feats))

    def score(self, squeezed: str) -> float:
        """Spam probability of a squeezed text (0 for an empty one)."""
        if not squeezed:
            return 0.0
        return _sigmoid(self.log_odds(squeezed))

    def score_text(self, text: str) -> float:
        return self.score(prepare(text))

    # --- files --------------------------------------------------------------------------------

    def dumps(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "ngrams": list(NGRAMS), "bias": self.bias,
                           "info": self.info, "weights": self.weights}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def loads(cls, data: str, source: str = "model") -> TextModel:
        try:
            obj = json.loads(data)
        except ValueError as err:
            raise ModelError(f"{source}: not a model file (invalid JSON: {err})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ModelError(f"{source}: not a qunbot spam model (format is not {FORMAT!r})")
        if obj.get("version") != VERSION or obj.get("ngrams") != list(NGRAMS):
            raise ModelError(f"{source}: model version {obj.get('version')} / n-grams {obj.get('ngrams')} do not "
                             f"match this qunbot ({VERSION} / {list(NGRAMS)}); rebuild it with `qunbot spam-train`")
        weights, bias = obj.get("weights"), obj.get("bias")
        if not isinstance(weights, dict) or not isinstance(bias, (int, float)) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) for k, v in weights.items()):
            raise ModelError(f"{source}: damaged model (weights or bias missing or not numbers); "
                             f"rebuild it with `qunbot spam-train`")
        info = obj.get("info") if isinstance(obj.get("info"), dict) else {}
        return cls({k: float(v) for k, v in weights.items()}, float(bias), info)

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
        if not isinstance(obj, dict) or not isinstance(obj.get("text", ""), str) or not isinstance(
                obj.get("spam"), bool) or "id" not in obj:
            raise ModelError(f"{source}: expected an object with id, text and spam (true/false)")
        return cls(id=str(obj["id"]), text=obj.get("text") or "", spam=obj["spam"], kind=obj.get("kind") or "text",
                   url=obj.get("url"), member_days=obj.get("member_days"),
                   member_messages=obj.get("member_messages"), family=obj.get("family"),
                   community=obj.get("community"))


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
    folder = resources.files(CORPUS_PACKAGE)
    out: list[Sample] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jsonl"):
            out.extend(read_samples(entry.read_text(encoding="utf-8").splitlines(), f"corpus/{entry.name}"))
    return tuple(out)


def training_pairs(samples: Iterable[Sample]) -> Iterator[tuple[str, bool]]:
    """What the model learns from: the text of each sample (captions of images included)."""
    for s in samples:
        if s.text.strip():
            yield s.text, s.spam


@cache
def shipped_model() -> TextModel:
    """The model trained on the shipped corpus alone (cached: trained once per process)."""
    return TextModel.train(training_pairs(corpus_samples()))
