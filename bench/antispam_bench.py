"""Anti-spam throughput: messages through the full check pipeline of the default config.

100,000 messages drawn from the labelled corpus (about a third of them ads, with links,
numbers, obfuscation), spread over 50 groups and 10,000 members with join times and message
counts, through `Detector.check` with every check of config/bot.yaml on, the stateful ones
(flood, wave) included. The baseline, measured in the same run, is `normalize()` alone on
the same texts: the floor any text check pays.
"""

from __future__ import annotations

import gc
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.__main__ import figure
from bot.core.events import MessageKind
from bot.core.text import normalize
from plugins.antispam.checks import Message
from plugins.antispam.detector import Detector
from plugins.antispam.spamcheck import load_antispam_config

REPO = Path(__file__).resolve().parent.parent
N_MESSAGES = 100_000
N_GROUPS = 50
N_MEMBERS = 10_000


def make_messages(n: int = N_MESSAGES) -> list[Message]:
    rng = random.Random(7)
    lines = (REPO / "tests" / "data" / "spam_corpus.jsonl").read_text("utf-8").splitlines()
    corpus = [json.loads(line) for line in lines]
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    out = []
    for i in range(n):
        rec = rng.choice(corpus)
        new = rng.random() < 0.1
        out.append(Message(
            text=rec["text"], kind=MessageKind.parse(rec.get("kind")), url=rec.get("url"),
            group_id=f"g{i % N_GROUPS}", member_id=f"m{rng.randrange(N_MEMBERS)}",
            at=start + timedelta(milliseconds=50 * i),
            member_age=timedelta(minutes=rng.randrange(60)) if new else None,
            member_messages=rng.randrange(5) if new else None,
        ))
    return out


def check_rate(messages: list[Message]) -> tuple[float, int]:
    detector = Detector(load_antispam_config(REPO / "config" / "bot.yaml"), explain=False)
    check = detector.check
    began = time.perf_counter()
    spam = sum(1 for m in messages if check(m).spam)
    return len(messages) / (time.perf_counter() - began), spam


def normalize_rate(messages: list[Message]) -> float:
    began = time.perf_counter()
    for m in messages:
        normalize(m.text)
    return len(messages) / (time.perf_counter() - began)


async def figures() -> list[dict[str, object]]:
    messages = make_messages()
    # The 100,000 prepared inputs are long-lived: keep the cyclic collector from walking
    # them over and over, which a running bot (one message at a time) never pays.
    gc.collect()
    gc.freeze()
    baseline = normalize_rate(messages)
    rate, spam = check_rate(messages)
    gc.unfreeze()
    return [
        figure("antispam_check_messages_per_s", rate, "messages/s", baseline, target=20_000,
               messages=len(messages), flagged=spam, baseline_name="normalize() alone on the same texts"),
    ]
