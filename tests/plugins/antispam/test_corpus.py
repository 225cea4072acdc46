"""Precision and recall of the default config on the labelled corpus, through exactly the
code path `qunbot spam-check` uses (the config file's antispam section, a stateless
detector, `check_lines`).

tests/data/spam_corpus.jsonl: realistic chat from a dozen kinds of community with hard
cases on both sides (the rules were developed against it).
tests/data/spam_corpus_heldout.jsonl: written last, in the same style, and never tuned on;
its figures are the honest estimate for unseen chat.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins.antispam.detector import Detector
from plugins.antispam.spamcheck import check_lines, load_antispam_config, message_from_json, model_for

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "bot.yaml"
DATA = ROOT / "tests" / "data"


@dataclass
class Score:
    ads: int
    caught: int
    normal: int
    flagged: int
    missed: list[str]
    false_alarms: list[str]

    @property
    def recall(self) -> float:
        return self.caught / self.ads

    @property
    def false_positive_rate(self) -> float:
        return self.flagged / self.normal


def score(path: Path) -> Score:
    lines = path.read_text(encoding="utf-8").splitlines()
    truth = {rec["id"]: rec for rec in map(json.loads, filter(str.strip, lines))}
    config = load_antispam_config(CONFIG)
    detector = Detector(config, stateful=False, classifier=model_for(config))
    s = Score(0, 0, 0, 0, [], [])
    for verdict, error in check_lines(lines, detector):
        assert error is None, error
        rec = truth[verdict["id"]]
        if rec["spam"]:
            s.ads += 1
            if verdict["spam"]:
                s.caught += 1
            else:
                s.missed.append(f"{rec['id']} {rec['text'][:50]}")
        else:
            s.normal += 1
            if verdict["spam"]:
                s.flagged += 1
                s.false_alarms.append(f"{rec['id']} {rec['text'][:50]} -> {verdict['action']}")
    return s


def test_the_corpus_is_big_and_varied_enough() -> None:
    records = [json.loads(line) for line in (DATA / "spam_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 600
    ads = sum(r["spam"] for r in records)
    assert 0.3 <= ads / len(records) <= 0.4
    assert len({r["community"] for r in records}) >= 8
    assert len({r["id"] for r in records}) == len(records)


@pytest.mark.parametrize("name", ["spam_corpus.jsonl", "spam_corpus_heldout.jsonl"])
def test_default_config_catches_ads_and_spares_members(name: str) -> None:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    s = score(path)
    print(
        f"\n{name}: recall {s.recall:.3f} ({s.caught}/{s.ads}), "
        f"false positives {s.false_positive_rate:.3f} ({s.flagged}/{s.normal})"
    )
    assert s.recall >= 0.95, f"missed ads: {s.missed}"
    assert s.false_positive_rate <= 0.01, f"flagged normal messages: {s.false_alarms}"


def test_the_cli_gives_the_same_verdicts_as_the_library() -> None:
    path = DATA / "spam_corpus.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "spam-check", "--config", str(CONFIG), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    cli = [json.loads(line) for line in proc.stdout.splitlines()]
    config = load_antispam_config(CONFIG)
    detector = Detector(config, stateful=False, classifier=model_for(config))
    library = [v for v, _ in check_lines(path.read_text(encoding="utf-8").splitlines(), detector)]
    assert cli == library


def test_the_hot_path_decides_exactly_like_the_explaining_path() -> None:
    """The chat handler runs the detector with explain=False (negative results keep short
    details, hopeless scoring is skipped): the decisions must not change."""
    config = load_antispam_config(CONFIG)
    model = model_for(config)
    explaining = Detector(config, stateful=False, classifier=model)
    terse = Detector(config, stateful=False, explain=False, classifier=model)
    for line in (DATA / "spam_corpus.jsonl").read_text(encoding="utf-8").splitlines():
        _, message = message_from_json(json.loads(line))
        for new in (None, 0):
            m = message._replace(member_messages=new)
            a, b = explaining.check(m), terse.check(m)
            assert (a.spam, a.action, [r.spam for r in a.results]) == (b.spam, b.action, [r.spam for r in b.results])
