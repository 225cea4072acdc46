"""The text model's file: what it was trained on, what it keeps when loaded, and the weights it
can hold (the model as a check is in test_checks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from plugins.antispam.classifier import (
    SHIPPED_MODEL,
    ModelError,
    TextModel,
    corpus_digest,
    corpus_samples,
    shipped_model,
)


def test_the_shipped_model_is_trained_on_the_shipped_corpus() -> None:
    assert shipped_model().info["corpus"] == corpus_digest(corpus_samples()), (
        "plugins/antispam/corpus changed: rebuild the model with `python -m plugins.antispam.classifier`"
    )


def test_a_loaded_model_keeps_its_grams_in_the_automaton_and_saves_them_all() -> None:
    text = (Path(__file__).parents[3] / "plugins" / "antispam" / SHIPPED_MODEL).read_text("utf-8")
    loaded = TextModel.loads(text, "model.json")
    assert loaded.weights == {k: float(v) for k, v in json.loads(text)["weights"].items()}
    again = TextModel.loads(loaded.dumps(), "again")
    for line in ("加我微信领红包", "今天的作业发群里了", ""):
        assert again.score(line, "text", "new") == loaded.score(line, "text", "new")
    empty = TextModel({"@k:text": 0.5}, -1.0)  # no grams at all: the automaton's placeholder is no gram
    assert TextModel.loads(empty.dumps(), "empty").weights == {"@k:text": 0.5}


def test_a_model_scores_with_its_weights_and_refuses_ones_it_cannot_hold() -> None:
    """Grams sharing a weight are told apart in the automaton (a text's grams count once each),
    a text's score is its weights' sum to within a ten-thousandth a gram, and a weight too large
    for the automaton's values is a clear error naming the file."""
    weights = {"加微": 1.25, "微信": 1.25, "信": 1.25, "红包": -0.5, "@k:text": 0.1}
    model = TextModel.loads(TextModel(weights, -1.0).dumps(), "model.json")
    assert model.weights == weights
    expected = -1.0 + (0.1 + 1.25 * 3 - 0.5) / math.sqrt(4 + 4)  # four grams, four context words
    assert model.log_odds("加微信红包微信", "text") == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ModelError, match=r"^huge\.json: .*weights too large"):
        TextModel.loads(TextModel({"广告": 5e6}, 0.0).dumps(), "huge.json")
