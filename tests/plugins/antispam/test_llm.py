"""The language model's second opinion against a real HTTP server on 127.0.0.1 (a small
asyncio server speaking just enough HTTP/1.1): a good answer, a timeout, malformed answers,
the hourly budget, the cache, which messages qualify, the key never logged, and the full
pipeline through the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from plugins.antispam.checks import Message
from plugins.antispam.classifier import TextModel
from plugins.antispam.config import Action, AntispamConfig, LlmRule
from plugins.antispam.llm import Opinion, SecondOpinion, parse_answer
from plugins.antispam.slowchecks import GroupSlowChecks, ScoreMemo
from plugins.antispam.verdict import CLEAN, CheckResult, Verdict
from tests.harness import chat, write_config

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
KEY = "sk-test-5f1e9c0b7a2d4e6f"


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        }
    ).encode()


Reply = tuple[int, bytes, float]  # status, body, seconds to wait before answering


@dataclass
class FakeModelServer:
    """Answers POSTs with `reply(request_json, headers)`; records every request."""

    reply: Callable[[dict[str, Any], dict[str, str]], Reply]
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = json.loads(body)
            self.requests.append((headers, request))
            status, payload, delay = self.reply(request, headers)
            if delay:
                await asyncio.sleep(delay)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
                "\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeModelServer]:
    fake = FakeModelServer(lambda request, headers: (200, completion('{"spam": true, "reason": "兼职刷单引流"}'), 0))
    srv = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield fake


def rule(server: FakeModelServer, **extra: Any) -> LlmRule:
    return LlmRule(enabled=True, url=server.url, **extra)


async def test_a_good_answer_is_an_opinion_and_the_request_is_a_chat_completion(server: FakeModelServer) -> None:
    llm = SecondOpinion(rule(server, model="local-7b"))
    try:
        assert await llm.ask("有人想做兼职吗", "有人想做兼职吗", NOW) == Opinion(True, "兼职刷单引流")
    finally:
        await llm.aclose()
    ((headers, request),) = server.requests
    assert request["model"] == "local-7b" and request["temperature"] == 0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == "有人想做兼职吗"
    assert "authorization" not in headers  # no key configured


async def test_a_timeout_is_no_opinion_and_does_not_wait_for_the_server(server: FakeModelServer) -> None:
    server.reply = lambda request, headers: (200, completion('{"spam": true, "reason": "x"}'), 5)
    llm = SecondOpinion(rule(server, timeout_ms=200))
    started = time.monotonic()
    try:
        assert await llm.ask("有人想做兼职吗", "k", NOW) is None
    finally:
        await llm.aclose()
    assert time.monotonic() - started < 4  # decided without the answer, well before it came


@pytest.mark.parametrize(
    "content",
    [
        "是广告",
        '{"spam": "yes", "reason": "x"}',
        '{"spam": true}',
        '["spam", true]',
        '{"spam": 1, "reason": "x"}',
        '```json\n{"spam": true, "reason": "x"}\n```',
    ],
)
def test_malformed_answers_are_no_opinion(content: str) -> None:
    assert parse_answer(200, completion(content)) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"not json"),
        (200, b'{"choices": []}'),
        (200, b'{"choices": [{"message": {"content": null}}]}'),
        (500, completion('{"spam": true, "reason": "x"}')),
        (200, b"\xff\xfe"),
    ],
)
def test_broken_responses_are_no_opinion(status: int, body: bytes) -> None:
    assert parse_answer(status, body) is None


async def test_a_malformed_answer_over_http_is_no_opinion_and_not_cached(server: FakeModelServer) -> None:
    server.reply = lambda request, headers: (200, completion("我觉得是广告"), 0)
    llm = SecondOpinion(rule(server))
    try:
        assert await llm.ask("有人想做兼职吗", "k", NOW) is None
        assert await llm.ask("有人想做兼职吗", "k", NOW) is None
    finally:
        await llm.aclose()
    assert len(server.requests) == 2


async def test_the_hourly_budget_and_the_cache(server: FakeModelServer) -> None:
    llm = SecondOpinion(rule(server, per_hour=2, cache_size=2))
    try:
        assert await llm.ask("一", "a", NOW) is not None
        assert await llm.ask("一", "a", NOW) is not None  # cached: no call, no budget
        assert await llm.ask("二", "b", NOW + timedelta(minutes=1)) is not None
        assert await llm.ask("三", "c", NOW + timedelta(minutes=2)) is None  # 2 calls this hour
        assert len(server.requests) == 2
        assert await llm.ask("三", "c", NOW + timedelta(minutes=61)) is not None  # the first call has aged out
        assert len(server.requests) == 3
        # The cache holds two answers: "a" was least recently used and is gone.
        assert llm.cached("a") is None and llm.cached("b") is not None and llm.cached("c") is not None
    finally:
        await llm.aclose()


async def test_the_key_is_sent_but_never_logged(
    server: FakeModelServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QUNBOT_TEST_LLM_KEY", KEY)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    answers = iter(
        [
            (500, json.dumps({"error": "bad key"}).encode(), 0.0),  # an error page
            (200, completion("not json"), 0.0),
            (200, completion('{"spam": false, "reason": "ok"}'), 0.0),
            (200, completion('{"spam": false, "reason": "ok"}'), 5.0),  # a timeout
        ]
    )

    def reply(request: dict[str, Any], headers: dict[str, str]) -> Reply:
        status, body, delay = next(answers)
        # A server that echoes the Authorization header in its answers.
        return status, body.replace(b"bad key", headers.get("authorization", "").encode()), delay

    server.reply = reply
    llm = SecondOpinion(rule(server, api_key_env="QUNBOT_TEST_LLM_KEY", timeout_ms=300))
    try:
        assert await llm.ask("一", "a", NOW) is None
        assert await llm.ask("二", "b", NOW) is None
        assert await llm.ask("三", "c", NOW) == Opinion(False, "ok")
        assert await llm.ask("四", "d", NOW) is None
    finally:
        await llm.aclose()
    assert server.requests[0][0]["authorization"] == f"Bearer {KEY}"
    assert "gave no opinion" in caplog.text and "answers again" in caplog.text
    assert KEY not in caplog.text
    assert KEY not in repr(llm.rule) and KEY not in llm.rule.model_dump_json()


def test_the_key_setting_takes_a_variable_name_not_a_key() -> None:
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        LlmRule(api_key_env="sk-abc.def")


# --- which messages qualify ----------------------------------------------------------------


def checks_with(
    config: AntispamConfig,
    llm: SecondOpinion | None,
    score: float | None,
    text: str = "周末有空的话大家一起去看看那家新店",
) -> GroupSlowChecks:
    memo = ScoreMemo(TextModel({}, 0.0))
    memo.last = None if score is None else (text, score, "old", "text")
    return GroupSlowChecks(config, None, llm, memo)


def config(**llm: Any) -> AntispamConfig:
    return AntispamConfig(llm={"enabled": True, **llm})  # normal 0.80: established members' texts of 12+ characters


MSG = Message("周末有空的话大家一起去看看那家新店", group_id="g1", member_id="m", at=NOW)
RULE = CheckResult("ad_content", True, "得分 5", Action.WARN)
MODEL = CheckResult("classifier", True, "广告概率 0.990", Action.WARN)


@pytest.mark.parametrize(
    ("settings", "score", "verdict", "asked"),
    [
        ({"band": 0.3}, 0.60, CLEAN, "接近阈值"),  # within the band below the threshold
        ({"band": 0.3}, 0.40, CLEAN, ""),  # below the band
        ({"band": 0.3}, None, CLEAN, ""),  # the text model did not score it (too short, or off)
        ({"band": 0.3, "min_chars": 20}, 0.60, CLEAN, ""),  # too short for the language model
        ({"band": 0.3, "action": "remove"}, 0.99, Verdict((MODEL,)), "只有分类器"),  # model alone, a removal possible
        ({"band": 0.3, "action": "remove"}, 0.10, Verdict((RULE,)), "规则判为广告"),  # rules alone
        ({"band": 0.3, "action": "remove", "disputes": False}, 0.10, Verdict((RULE,)), ""),
        ({"band": 0.3}, 0.10, Verdict((RULE,)), ""),  # already a warning: a "warn" opinion changes nothing
        ({"band": 0.3, "action": "remove"}, 0.99, Verdict((RULE, MODEL)), ""),  # they agree
    ],
)
def test_which_messages_are_borderline(
    settings: dict[str, Any], score: float | None, verdict: Verdict, asked: str
) -> None:
    llm = object.__new__(SecondOpinion)  # never called here
    plan = checks_with(config(**settings), llm, score).plan(MSG, "m1", verdict)
    why = plan.llm if plan is not None else ""
    if asked:
        assert asked in why
    else:
        assert why == ""


async def test_the_verdict_gets_an_llm_result_with_its_own_action(server: FakeModelServer) -> None:
    cfg = config(url=server.url, band=0.3, action="remove")
    llm = SecondOpinion(cfg.llm)
    try:
        checks = checks_with(cfg, llm, 0.7)
        plan = checks.plan(MSG, "m1", CLEAN)
        verdict = await checks.run(plan, None, MSG, "m1", CLEAN, NOW)  # type: ignore[arg-type]
        (result,) = verdict.results
        assert (result.name, result.spam, result.action) == ("llm", True, Action.REMOVE)
        assert "兼职刷单引流" in result.details and verdict.rules == "疑似广告（语言模型）"
        server.reply = lambda request, headers: (200, completion("?"), 0)
        checks.memo.last = ("另一条消息的文字", 0.7, "old", "text")  # type: ignore[union-attr]
        verdict = await checks.run(plan, None, MSG, "m1", CLEAN, NOW)  # type: ignore[arg-type]
        assert not verdict.spam and "没有答复" in verdict.results[0].details
    finally:
        await llm.aclose()


# --- the full pipeline ----------------------------------------------------------------------


async def test_through_the_pipeline_a_borderline_message_is_warned_on_the_models_word(
    server: FakeModelServer, tmp_path: Path
) -> None:
    # band 0.99: every message the text model scores below the threshold is borderline here.
    path = write_config(
        tmp_path,
        f"""
        groups:
          - {{id: g1, name: 宝妈交流群}}
          - {{id: g2, name: 读书群}}
        plugins:
          antispam:
            llm: {{enabled: true, url: "{server.url}", band: 0.99, timeout_ms: 3000}}
            overrides:
              - groups: [g2]
                llm: {{enabled: false}}
    """,
    )
    async with chat(path) as bot:
        await bot.say("g2", "alice", "这周六的读书会改到下午三点了")
        bot.assert_silent()
        assert server.requests == []  # the language model is off in g2: nothing asked
        await bot.say("g1", "alice", "这周六的读书会改到下午三点了")
        warning = bot.assert_said("g1", contains="请勿发布广告")
        assert "疑似广告（语言模型）" in (warning.text or "") and warning.mentions == ["alice"]
        assert len(server.requests) == 1
        assert server.requests[0][1]["messages"][1]["content"] == "这周六的读书会改到下午三点了"
        server.reply = lambda request, headers: (200, completion('{"spam": false, "reason": "正常聊天"}'), 0)
        bot.new_actions()
        await bot.say("g1", "bob", "好的，收到，谢谢通知大家")
        bot.assert_silent()
        await bot.say("g1", "bob", "好的")  # too short for the text model: not borderline, not asked
        assert len(server.requests) == 2


def test_without_the_text_model_the_language_model_is_never_asked(caplog: pytest.LogCaptureFixture) -> None:
    from plugins.antispam.slowchecks import SlowChecks

    caplog.set_level(logging.WARNING, "qunbot.plugin.antispam")
    slow = SlowChecks([AntispamConfig(llm={"enabled": True}, classifier={"enabled": False})], TextModel({}, 0.0))
    assert slow.clients == {} and all(c.llm is None for c in slow.by_config.values())
    assert "the text model, which is off here" in caplog.text
