"""The learned text check: naive Bayes over character n-grams of the squeezed text.

Why a hand-written naive Bayes and not scikit-learn: the model has to train at start-up and
again whenever an admin teaches it (a few thousand short lines, well under a second in pure
Python), score every chat message in microseconds, and be stored as a small JSON file an
operator can read. scikit-learn would add numpy and scipy (~100 MB) to every install for a
model that is a dictionary lookup per n-gram; on short chat texts binarized naive Bayes over
character n-grams is as accurate as a linear model (Wang & Manning 2012, "Baselines and
Bigrams"), and cross-validation on the shipped corpus is how its settings were chosen.

Features: the set of character n-grams (`NGRAMS`) of the squeezed text (letters, digits and
CJK only; see `textforms.squeeze`), with every digit read as "0" so 日赚500 and 日赚800 share
their grams. Each gram present adds its log-likelihood ratio (Bernoulli presence weights,
add-alpha smoothing); grams seen in fewer than `MIN_DF` training lines are dropped, which keeps
the model small and its scores from hanging on one line's typo.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .textforms import deep_normalize, squeeze

FORMAT = "qunbot-spam-model"
VERSION = 1
NGRAMS = (1, 2, 3)
ALPHA = 0.5
MIN_DF = 2
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
    def train(cls, samples: Iterable[tuple[str, bool]], *, alpha: float = ALPHA, min_df: int = MIN_DF,
              prepared: bool = False) -> TextModel:
        """Train on (text, is_spam) pairs; raw texts unless `prepared` (already squeezed)."""
        df = {True: Counter[str](), False: Counter[str]()}
        docs = {True: 0, False: 0}
        for text, spam in samples:
            squeezed = text if prepared else prepare(text)
            feats = grams(squeezed)
            if not feats:
                continue
            df[spam].update(feats)
            docs[spam] += 1
        if not docs[True] or not docs[False]:
            raise ModelError(f"training needs both spam and normal samples (got {docs[True]} spam, "
                             f"{docs[False]} normal)")
        n_spam, n_ham = docs[True] + 2 * alpha, docs[False] + 2 * alpha
        weights: dict[str, float] = {}
        for gram in df[True].keys() | df[False].keys():
            s, h = df[True][gram], df[False][gram]
            if s + h < min_df:
                continue
            weights[gram] = math.log((s + alpha) / n_spam) - math.log((h + alpha) / n_ham)
        bias = math.log(docs[True] / docs[False])
        info = {"spam": docs[True], "normal": docs[False], "grams": len(weights), "alpha": alpha, "min_df": min_df}
        return cls(weights, bias, info)

    def log_odds(self, squeezed: str) -> float:
        get = self.weights.get
        return self.bias + sum([get(g, 0.0) for g in grams(squeezed)])

    def score(self, squeezed: str) -> float:
        """Spam probability of a squeezed text (0 for an empty one)."""
        if not squeezed:
            return 0.0
        z = self.log_odds(squeezed)
        if z < -40:
            return 0.0
        if z > 40:
            return 1.0
        return 1.0 / (1.0 + math.exp(-z))

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
