"""Configuration of 群活互动: one section per game, each with its Chinese texts (templates with
whitelisted placeholders, checked when the config loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, TypeAdapter, ValidationError, field_validator, model_validator

from bot.config.errors import ConfigError
from bot.config.yamlio import load_yaml
from bot.core.plugin import PluginConfig
from bot.core.templates import template_type

# --- placeholders per text ---------------------------------------------------------------
LOTTERY_STARTED = ("id", "prize", "winners", "keyword", "end", "creator")
LOTTERY_JOINED = ("members", "count", "prize", "keyword")
LOTTERY_ALREADY = ("member", "count", "prize")
LOTTERY_RESULT = ("id", "prize", "count", "winners", "names", "seed")
LOTTERY_EMPTY = ("id", "prize")
LOTTERY_CANCELLED = ("id", "prize", "count")
POLL_STARTED = ("id", "title", "options", "end", "how")
POLL_VOTED = ("member", "number", "option")
POLL_LOCKED = ("member", "number", "option")
POLL_RESULT = ("id", "title", "results", "total", "status")
QUIZ_QUESTION = ("number", "total", "question", "seconds")
QUIZ_CORRECT = ("member", "answer", "points", "total")
QUIZ_TIMEOUT = ("answer",)
QUIZ_HINT = ("hint",)
GUESS_STARTED = ("low", "high", "minutes")
GUESS_HINT = ("member", "guess", "direction", "low", "high")
GUESS_CORRECT = ("member", "number", "tries", "points", "total")
GUESS_TIMEOUT = ("number",)
DICE_ROLLED = ("member", "dice", "sum")
COOLDOWN = ("seconds",)


T_LOTTERY_STARTED = template_type(*LOTTERY_STARTED)
T_LOTTERY_JOINED = template_type(*LOTTERY_JOINED)
T_LOTTERY_ALREADY = template_type(*LOTTERY_ALREADY)
T_LOTTERY_RESULT = template_type(*LOTTERY_RESULT)
T_LOTTERY_EMPTY = template_type(*LOTTERY_EMPTY)
T_LOTTERY_CANCELLED = template_type(*LOTTERY_CANCELLED)
T_POLL_STARTED = template_type(*POLL_STARTED)
T_POLL_VOTED = template_type(*POLL_VOTED)
T_POLL_LOCKED = template_type(*POLL_LOCKED)
T_POLL_RESULT = template_type(*POLL_RESULT)
T_QUIZ_QUESTION = template_type(*QUIZ_QUESTION)
T_QUIZ_CORRECT = template_type(*QUIZ_CORRECT)
T_QUIZ_TIMEOUT = template_type(*QUIZ_TIMEOUT)
T_QUIZ_HINT = template_type(*QUIZ_HINT)
T_GUESS_STARTED = template_type(*GUESS_STARTED)
T_GUESS_HINT = template_type(*GUESS_HINT)
T_GUESS_CORRECT = template_type(*GUESS_CORRECT)
T_GUESS_TIMEOUT = template_type(*GUESS_TIMEOUT)
T_DICE_ROLLED = template_type(*DICE_ROLLED)
T_COOLDOWN = template_type(*COOLDOWN)


class LotteryTexts(PluginConfig):
    started: T_LOTTERY_STARTED = (
        "🎁 抽奖开始啦！（#{id}）\n奖品：{prize}\n名额：{winners} 人\n参与方式：在群里发送“{keyword}”\n开奖：{end}"
    )
    joined: T_LOTTERY_JOINED = "{members} 参与抽奖成功 ✅ 当前 {count} 人"
    already: T_LOTTERY_ALREADY = "你已经参加过了，请耐心等待开奖（当前 {count} 人）"
    result: T_LOTTERY_RESULT = "🎉 抽奖「{prize}」开奖啦！共 {count} 人参与。\n恭喜 {winners} 中奖！请联系群主领奖～"
    empty: T_LOTTERY_EMPTY = "抽奖「{prize}」没有人参加，已结束。"
    cancelled: T_LOTTERY_CANCELLED = "抽奖「{prize}」已取消。"


class LotteryConfig(PluginConfig):
    enabled: bool = True
    default_keyword: str = Field("参与抽奖", min_length=1, max_length=20)
    default_winners: int = Field(1, ge=1)
    # Used when the admin gives neither an end time nor a participant count.
    default_minutes: int = Field(60, ge=1)
    max_days: int = Field(30, ge=1, le=366)
    max_winners: int = Field(100, ge=1)
    max_open: int = Field(3, ge=1, le=20)  # open lotteries per group
    # each: one reply per join; merged: one reply per `merge_seconds` listing the newcomers
    # (WeChat punishes bursts); silent: count without replying.
    join_reply: Literal["each", "merged", "silent"] = "merged"
    merge_seconds: float = Field(10, ge=1, le=600)
    max_mentions: int = Field(30, ge=1, le=100)
    texts: LotteryTexts = Field(default_factory=LotteryTexts)


class PollTexts(PluginConfig):
    started: T_POLL_STARTED = "📊 投票（#{id}）：{title}\n{options}\n{how}\n截止：{end}"
    voted: T_POLL_VOTED = "已投给 {number}. {option}"
    changed: T_POLL_VOTED = "已改投 {number}. {option}"
    locked: T_POLL_LOCKED = "你已经投给了 {number}. {option}，本次投票不能改票"
    result: T_POLL_RESULT = "📊 投票{status}：{title}\n{results}\n共 {total} 人投票"


class PollConfig(PluginConfig):
    enabled: bool = True
    # A member may change their vote until the deadline (false: the first vote stands).
    allow_change: bool = True
    # While a poll is open, a message that is only a valid option number ("2") is a vote.
    # Anything else ("2点见", "22" with 3 options) stays ordinary chat.
    bare_number: bool = True
    # Bare-number votes are counted silently (a reply per vote would flood the group);
    # `投 2` always gets a confirmation.
    confirm_bare: bool = False
    default_minutes: int = Field(60, ge=1)
    max_days: int = Field(30, ge=1, le=366)
    max_options: int = Field(10, ge=2, le=20)
    texts: PollTexts = Field(default_factory=PollTexts)


class Question(PluginConfig):
    question: str = Field(min_length=1)
    answers: list[str] = Field(min_length=1)
    hint: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_answer(cls, data: Any) -> Any:
        # Forgiving: `answer: 北京` is taken as `answers: [北京]`.
        if isinstance(data, dict) and "answer" in data and "answers" not in data:
            data = dict(data)
            value = data.pop("answer")
            data["answers"] = value if isinstance(value, list) else [value]
        return data

    @field_validator("answers")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        answers = [str(a).strip() for a in value if str(a).strip()]
        if not answers:
            raise ValueError("needs at least one non-empty answer")
        return answers


_BANK = TypeAdapter(list[Question])


def load_bank_file(path: str | Path) -> list[Question]:
    """Questions from a YAML file: a list of {question, answers, hint?}, or {questions: [...]}."""
    p = Path(path)
    try:
        data, _lines = load_yaml(p)  # the one YAML reader: 1.2 rules, duplicate keys refused
    except ConfigError as exc:
        first = exc.issues[0]
        if first.line is None:  # the file itself: missing or unreadable
            raise ValueError(f"cannot read question bank {p}: {first.problem}") from None
        where = "; ".join(f"line {i.line}: {i.path + ': ' if i.path else ''}{i.problem}" for i in exc.issues)
        raise ValueError(f"question bank {p} is not valid YAML: {where}") from None
    if isinstance(data, dict) and "questions" in data:
        data = data["questions"]
    try:
        return _BANK.validate_python(data or [])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"question bank {p}: [{where}]: {first['msg']}") from None


class QuizTexts(PluginConfig):
    question: T_QUIZ_QUESTION = "📝 第 {number}/{total} 题（{seconds} 秒内作答）：\n{question}"
    correct: T_QUIZ_CORRECT = "🎉 答对了！答案：{answer}，奖励 {points} 积分（共 {total} 分）"
    timeout: T_QUIZ_TIMEOUT = "⏰ 时间到，没人答对。答案是：{answer}"
    hint: T_QUIZ_HINT = "💡 提示：{hint}"
    finished: str = "答题结束，谢谢大家参与！"


class QuizConfig(PluginConfig):
    enabled: bool = True
    # The question bank: inline entries and/or YAML files (paths relative to the directory
    # qunbot runs in); each entry is {question, answers: [...], hint?}.
    bank: list[Question] = Field(default_factory=list)
    bank_files: list[str] = Field(default_factory=list)
    points: int = Field(10, ge=0)
    timeout_seconds: int = Field(60, ge=5, le=3600)
    default_questions: int = Field(5, ge=1, le=100)  # 开始答题 without a number
    max_questions: int = Field(20, ge=1, le=100)  # per 开始答题 N
    texts: QuizTexts = Field(default_factory=QuizTexts)

    _questions: list[Question] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load_files(self) -> QuizConfig:
        # Read at config load (itself synchronous), so a bad file is a config error with a
        # line, never a surprise in the middle of a game.
        loaded = list(self.bank)
        for path in self.bank_files:
            loaded.extend(load_bank_file(path))
        self._questions = loaded
        return self

    @property
    def questions(self) -> list[Question]:
        return self._questions


class GuessTexts(PluginConfig):
    started: T_GUESS_STARTED = (
        "🔢 猜数字开始！我想了一个 {low}~{high} 之间的整数，发送“猜 数字”来猜，{minutes} 分钟内有效。"
    )
    hint: T_GUESS_HINT = "{member} 猜 {guess}：{direction}了！范围 {low}~{high}"
    correct: T_GUESS_CORRECT = "🎉 猜中了！就是 {number}（全群共猜了 {tries} 次），奖励 {points} 积分（共 {total} 分）"
    timeout: T_GUESS_TIMEOUT = "⏰ 猜数字时间到，答案是 {number}。"


class GuessConfig(PluginConfig):
    enabled: bool = True
    low: int = 1
    high: int = 100
    points: int = Field(5, ge=0)
    timeout_minutes: int = Field(10, ge=1, le=1440)
    # Per member, between two guesses: stops one person from brute-forcing the range.
    cooldown_seconds: float = Field(5, ge=0, le=3600)
    texts: GuessTexts = Field(default_factory=GuessTexts)

    @model_validator(mode="after")
    def _range(self) -> GuessConfig:
        if self.high - self.low < 2:
            raise ValueError("high must be at least low + 2")
        return self


class DiceTexts(PluginConfig):
    rolled: T_DICE_ROLLED = "🎲 {member} 掷出了 {dice}"
    cooldown: T_COOLDOWN = "骰子还在转，{seconds} 秒后再来～"


class DiceConfig(PluginConfig):
    enabled: bool = True
    max_dice: int = Field(3, ge=1, le=10)
    cooldown_seconds: float = Field(30, ge=0, le=86400)
    texts: DiceTexts = Field(default_factory=DiceTexts)


class GamesConfig(PluginConfig):
    lottery: LotteryConfig = Field(default_factory=LotteryConfig)
    poll: PollConfig = Field(default_factory=PollConfig)
    quiz: QuizConfig = Field(default_factory=QuizConfig)
    guess: GuessConfig = Field(default_factory=GuessConfig)
    dice: DiceConfig = Field(default_factory=DiceConfig)
    # Shown when a member uses a game an admin switched off for this group.
    off_text: str = "本群没有开启这个游戏。"
