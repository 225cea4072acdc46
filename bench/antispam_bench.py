"""Anti-spam throughput: messages through the full check pipeline of the default config.

`antispam_check_messages_per_s` (target 20,000): with the text model on, 100,000 group messages, 90% of them the
corpus's normal messages (hard cases included: links, numbers, 微信/兼职 in passing) and
10% its ads, spread over 50 groups and 10,000 members, one in ten of them new, through
`Detector.check` with every check of config/bot.yaml on, flood and wave included, as the
chat handler runs it. The baseline, measured in the same run, is `normalize()` alone on the
same texts: the floor any text check pays.

`antispam_rules_only_messages_per_s`: the same traffic with the text model off, in the
same run, so the model's cost shows as the difference.

`antispam_ads_per_s`: the same pipeline on ads only (every check finds something and
explains it), for information: a wave of ads costs this much per message before the
executor acts.
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
from plugins.antispam.spamcheck import load_antispam_config, model_for

REPO = Path(__file__).resolve().parent.parent
N_MESSAGES = 100_000
N_GROUPS = 50
N_MEMBERS = 10_000
AD_SHARE = 0.10


def corpus() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    lines = (REPO / "tests" / "data" / "spam_corpus.jsonl").read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if not r["spam"]], [r for r in records if r["spam"]]


def make_messages(n: int = N_MESSAGES, ad_share: float = AD_SHARE, seed: int = 7) -> list[Message]:
    rng = random.Random(seed)
    normal, ads = corpus()
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    out = []
    for i in range(n):
        rec = rng.choice(ads if rng.random() < ad_share else normal)
        new = rng.random() < 0.1
        out.append(
            Message(
                text=str(rec["text"]),
                kind=MessageKind.parse(rec.get("kind")),
                url=rec.get("url"),  # type: ignore[arg-type]
                group_id=f"g{i % N_GROUPS}",
                member_id=f"m{rng.randrange(N_MEMBERS)}",
                at=start + timedelta(milliseconds=50 * i),
                member_age=timedelta(minutes=rng.randrange(60)) if new else None,
                member_messages=rng.randrange(5) if new else None,
            )
        )
    return out


def check_rate(messages: list[Message], model: bool = True) -> tuple[float, int]:
    # explain=False: as the chat handler runs it (negative results keep short details).
    config = load_antispam_config(REPO / "config" / "bot.yaml")
    detector = Detector(config, explain=False, classifier=model_for(config) if model else None)
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
    traffic = make_messages()
    ads = make_messages(N_MESSAGES // 5, ad_share=1.0, seed=8)
    # The prepared inputs are long-lived: keep the cyclic collector from walking them over
    # and over, which a running bot (one message at a time) never pays.
    gc.collect()
    gc.freeze()
    try:
        baseline = normalize_rate(traffic)
        rules_rate, rules_flagged = check_rate(traffic, model=False)
        rate, flagged = check_rate(traffic)
        ad_rate, ad_flagged = check_rate(ads)
    finally:
        gc.unfreeze()
    return [
        figure(
            "antispam_check_messages_per_s",
            rate,
            "messages/s",
            baseline,
            target=20_000,
            messages=len(traffic),
            ad_share=AD_SHARE,
            flagged=flagged,
            baseline_name="normalize() alone on the same texts",
        ),
        figure(
            "antispam_rules_only_messages_per_s",
            rules_rate,
            "messages/s",
            baseline,
            messages=len(traffic),
            flagged=rules_flagged,
            baseline_name="normalize() alone on the same texts",
        ),
        figure("antispam_ads_per_s", ad_rate, "messages/s", None, messages=len(ads), flagged=ad_flagged),
    ]
