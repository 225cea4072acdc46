"""A second opinion from a language model: one OpenAI-compatible chat-completions endpoint
(a local model server such as llama.cpp, vLLM or Ollama, or a hosted one), asked about a
borderline message and answering with strict JSON.

`SecondOpinion.ask(text, key, now)` returns an `Opinion`, or None for "no opinion": over
the hourly budget, a timeout, an HTTP or network error, or an answer that is not exactly
a JSON object with a boolean `spam` and a string `reason`. Answers are cached (bounded,
least recently used first out) by the normalised text, so a wave of one ad costs one call.

The API key comes from the environment variable the config names and goes in the
Authorization header only: nothing logged here contains it (messages pass `_redact`, and
answers' bodies are never logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import httpx

from .config import LlmRule

log = logging.getLogger("qunbot.plugin.antispam")

HOUR = timedelta(hours=1)
MAX_TEXT = 1000  # characters of the message sent to the model
MAX_REASON = 120  # characters of the model's reason kept

PROMPT = (
    "你是微信群的广告审核员。判断下面这条群消息是不是广告、引流、推销或诈骗信息。"
    '只输出一个 JSON 对象，不要输出任何其他内容，格式：{"spam": true 或 false, "reason": "不超过20字的理由"}'
)


class Opinion(NamedTuple):
    spam: bool
    reason: str


class SecondOpinion:
    """One endpoint with its budget, cache and fault log; shared by every group whose
    `llm` settings are the same."""

    def __init__(self, rule: LlmRule, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.rule = rule
        self.timeout = rule.timeout_ms / 1000
        self._key = os.environ.get(rule.api_key_env, "") if rule.api_key_env else ""
        if rule.api_key_env and not self._key:
            log.warning(
                "antispam: the language model's key variable %s is not set; asking without a key", rule.api_key_env
            )
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=self.timeout, transport=transport)
        self._calls: deque[datetime] = deque()
        self._cache: OrderedDict[str, Opinion] = OrderedDict()
        self._failing = 0  # consecutive calls without an opinion (one warning when it starts)
        self.asked = 0

    def cached(self, key: str) -> Opinion | None:
        opinion = self._cache.get(key)
        if opinion is not None:
            self._cache.move_to_end(key)
        return opinion

    def within_budget(self, now: datetime) -> bool:
        calls = self._calls
        while calls and now - calls[0] >= HOUR:
            calls.popleft()
        return len(calls) < self.rule.per_hour

    async def ask(self, text: str, key: str, now: datetime) -> Opinion | None:
        """The model's opinion of `text` (cached under `key`, the normalised text), or None."""
        opinion = self.cached(key)
        if opinion is not None:
            return opinion
        if not self.within_budget(now):
            log.debug("antispam: language model budget (%d/h) used up; not asked", self.rule.per_hour)
            return None
        self._calls.append(now)
        self.asked += 1
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(self.rule.url, json=self._request(text))
            opinion = parse_answer(response.status_code, response.content)
            problem = None if opinion is not None else f"unusable answer (HTTP {response.status_code})"
        except TimeoutError:
            opinion, problem = None, f"no answer within {self.rule.timeout_ms} ms"
        except httpx.HTTPError as exc:
            opinion, problem = None, f"{type(exc).__name__}: {exc}"
        if opinion is None:
            self._fault(problem or "no opinion")
            return None
        if self._failing:
            log.info("antispam: the language model answers again (after %d call(s) without an opinion)", self._failing)
            self._failing = 0
        if self.rule.cache_size:
            self._cache[key] = opinion
            if len(self._cache) > self.rule.cache_size:
                self._cache.popitem(last=False)
        return opinion

    def _request(self, text: str) -> dict[str, Any]:
        return {
            "model": self.rule.model,
            "messages": [{"role": "system", "content": PROMPT}, {"role": "user", "content": text[:MAX_TEXT]}],
            "temperature": 0,
            "max_tokens": 100,
        }

    def _fault(self, problem: str) -> None:
        self._failing += 1
        if self._failing == 1:
            log.warning("antispam: the language model at %s gave no opinion: %s", self.rule.url, self._redact(problem))
        else:
            log.debug("antispam: the language model gave no opinion: %s", self._redact(problem))

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_answer(status: int, body: bytes) -> Opinion | None:
    """A chat-completions response whose message content is exactly a JSON object with a
    boolean `spam` and a string `reason`; anything else is no opinion."""
    if status != 200:
        return None
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
        answer = json.loads(content) if isinstance(content, str) else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(answer, dict):
        return None
    spam, reason = answer.get("spam"), answer.get("reason")
    if not isinstance(spam, bool) or not isinstance(reason, str):
        return None
    return Opinion(spam, " ".join(reason.split())[:MAX_REASON])
