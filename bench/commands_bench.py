"""The command pre-check on ordinary chat: `CommandTable.may_start` on every message, with the
shipped plugins' command words, against the plain one-dict-lookup check it replaced (the
baseline, measured in the same run). Punctuation around a word and glued arguments cost a
`str.lstrip`/`rstrip` and a set lookup more per message.

.venv/bin/python -m bench commands
"""

from __future__ import annotations

import random
import time

from bench.__main__ import figure
from bench.matching_bench import _messages
from bot.core import manage
from bot.core.commands import CommandTable
from bot.core.dispatcher import plugin_names
from bot.core.loader import PluginSettings, available_plugins, import_plugin
from bot.core.text import normalize

PREFIXES = ["/", "#", "!"]


def _table() -> CommandTable:
    plugins = [manage.plugin, *(import_plugin(n) for n in available_plugins())]
    settings = [PluginSettings(p, p.priority, p.config()) for p in sorted(plugins, key=lambda p: p.priority)]
    entries = [
        (w, spec)
        for s in settings
        for spec in s.plugin.commands
        if spec.scope != "private"
        for w in spec.words(s.default)
    ]
    return CommandTable(entries, {"plugin": plugin_names(settings)})


def _rate(check: object, texts: list[str]) -> float:
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for text in texts:
            check(text)  # type: ignore[operator]
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


async def figures() -> list[dict[str, object]]:
    rng = random.Random(11)
    table = _table()
    words = table._by_word  # the baseline reads the same dict
    texts = [normalize(t) for t in _messages(rng, 100_000, ["签到", "投票结果", "帮助"])]

    def baseline(normalized: str) -> bool:
        for prefix in PREFIXES:
            if normalized.startswith(prefix):
                normalized = normalized[len(prefix) :].lstrip()
                break
        return normalized.partition(" ")[0] in words

    may_start = table.may_start
    base = _rate(lambda t: baseline(t), texts)  # the same call depth as the one measured
    now = _rate(lambda t: may_start(t, PREFIXES), texts)
    return [figure("command pre-check on chat", now / 1e6, "M messages/s", base / 1e6)]
