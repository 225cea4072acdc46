"""An optional learned check: multinomial naive Bayes over character bigrams of the squeezed
text (Chinese has no spaces; bigrams carry most of the meaning of short chat messages).

Trained at load from the seed set shipped in `seed.json` plus the labelled decisions in
the audit table (removals that stood are spam, pardons are ham). Small enough to train in
milliseconds and to evaluate in microseconds; off by default.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources


def tokens(squeezed: str) -> list[str]:
    """Character bigrams (and the lone character of a one-character text)."""
    if len(squeezed) < 2:
        return [squeezed] if squeezed else []
    return [squeezed[i : i + 2] for i in range(len(squeezed) - 1)]


class NaiveBayes:
    def __init__(self) -> None:
        self._counts = {True: Counter[str](), False: Counter[str]()}
        self._docs = {True: 0, False: 0}
        self._totals = {True: 0, False: 0}
        self._vocab: set[str] = set()

    def train(self, squeezed: str, spam: bool) -> None:
        toks = tokens(squeezed)
        if not toks:
            return
        self._counts[spam].update(toks)
        self._docs[spam] += 1
        self._totals[spam] += len(toks)
        self._vocab.update(toks)

    def train_many(self, samples: Iterable[tuple[str, bool]]) -> NaiveBayes:
        for text, spam in samples:
            self.train(text, spam)
        return self

    @property
    def trained(self) -> bool:
        return self._docs[True] > 0 and self._docs[False] > 0

    def spam_probability(self, squeezed: str) -> float:
        if not self.trained:
            return 0.0
        toks = tokens(squeezed)
        total_docs = self._docs[True] + self._docs[False]
        vocab = len(self._vocab) + 1
        logp = {}
        for label in (True, False):
            counts = self._counts[label]
            denom = self._totals[label] + vocab
            score = math.log(self._docs[label] / total_docs)
            for tok in toks:
                score += math.log((counts.get(tok, 0) + 1) / denom)
            logp[label] = score
        diff = logp[False] - logp[True]
        if diff > 700:
            return 0.0
        return 1.0 / (1.0 + math.exp(diff))


@cache
def seed_samples() -> tuple[tuple[str, bool], ...]:
    """The shipped seed set: raw texts with labels (normalised by the caller)."""
    raw = resources.files(__package__).joinpath("seed.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return tuple((t, True) for t in data["spam"]) + tuple((t, False) for t in data["ham"])
