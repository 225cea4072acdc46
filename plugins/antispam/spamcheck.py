"""`qunbot spam-check`'s core (DESIGN §7), kept here so tests and the CLI share one path.

Input: one JSON object per line, ``{"id", "text", "kind"?, "url"?, "member_days"?,
"member_messages"?}``; other keys are ignored (a labelled corpus can be fed as is). An absent
or null member field means "unknown", and unknown history counts as an established member.
Output: one verdict per non-blank input line, ``{"id", "spam", "action", "checks"}``; a line
that cannot be read gives ``{"id", "spam": false, "action": "none", "checks": [], "error"}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config import BotConfig, load_config
from bot.config.errors import ConfigError, LineMap
from bot.core.events import MessageKind
from bot.core.loader import RESERVED

from .checks import Message
from .classifier import TextModel
from .config import AntispamConfig
from .detector import Detector
from .slowchecks import GroupSlowChecks
from .teaching import deployment_model

QR_KINDS = frozenset({"qr", "qrcode", "qr_code", "qr-code"})


class InputError(ValueError):
    """A line that cannot be checked; the message says what to fix."""


def message_from_json(obj: Any) -> tuple[Any, Message]:
    """(id, Message) from one decoded input line."""
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}")
    if "id" not in obj:
        raise InputError('missing "id"')
    ident = obj["id"]
    if isinstance(ident, (dict, list)):
        raise InputError('"id" must be a string or a number')
    if "text" not in obj:
        raise InputError('missing "text"')
    text = obj["text"]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f'"text" must be a string, not {type(text).__name__}')
    raw_kind = obj.get("kind")
    if raw_kind is not None and not isinstance(raw_kind, str):
        raise InputError('"kind" must be a string')
    qr = isinstance(raw_kind, str) and raw_kind.strip().lower() in QR_KINDS
    kind = MessageKind.IMAGE if qr else MessageKind.parse(raw_kind)
    url = obj.get("url")
    if url is not None and not isinstance(url, str):
        raise InputError('"url" must be a string or null')
    if url and kind is MessageKind.TEXT and "kind" not in obj:
        kind = MessageKind.URL
    days = _number(obj, "member_days")
    sent = _number(obj, "member_messages")
    mentions = _number(obj, "mentions")
    return ident, Message(
        text=text,
        kind=kind,
        url=url or None,
        qr=qr,
        member_age=timedelta(days=days) if days is not None else None,
        member_messages=int(sent) if sent is not None else None,
        mentions=int(mentions or 0),
    )


def _number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f'"{key}" must be a number or null, not {json.dumps(value, ensure_ascii=False)}')
    if value < 0:
        raise InputError(f'"{key}" must not be negative')
    return float(value)


def check_lines(lines: Iterable[str], detector: Detector) -> Iterator[tuple[dict[str, Any], str | None]]:
    """One (verdict JSON, error or None) per non-blank line; a bad line never stops the rest.
    A line's QR code, when its content is given, is judged as the running bot's QR reader
    judges what it decodes."""
    codes = GroupSlowChecks(detector.config, None, None, None)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ident: Any = None
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int, float)):
                ident = obj["id"]
            ident, message = message_from_json(obj)
        except InputError as exc:
            error = f"line {number}: {exc}"
            yield {"id": ident, "spam": False, "action": "none", "checks": [], "error": error}, error
            continue
        yield codes.with_known_code(message, detector.check(message)).as_json(ident), None


def load_antispam_config(path: str | Path, group: str | None = None) -> AntispamConfig:
    """The antispam settings of a bot config file (its defaults when the file has no
    antispam section), with a group's overrides applied when `group` is given. Raises
    ConfigError with file:line problems."""
    config, lines = load_config(path)
    return antispam_config_of(config, lines, group)


def antispam_config_of(config: BotConfig, lines: LineMap, group: str | None = None) -> AntispamConfig:
    raw = config.plugins.get("antispam") or {}
    loc = ("plugins", "antispam")
    data = {k: v for k, v in raw.items() if k not in RESERVED}
    if group is not None:
        for entry in raw.get("overrides") or []:
            if isinstance(entry, dict) and group in config.groups_in(list(entry.get("groups") or [])):
                data.update({k: v for k, v in entry.items() if k not in ("groups", "enabled")})
    try:
        return AntispamConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(lines.from_validation(err, loc)) from None


def model_for(config: AntispamConfig) -> TextModel | None:
    """The text model a stateless check of `config` uses, as the deployment runs it (the
    active model file of `teaching.model_dir`, else the shipped one); None when the classifier
    is off. A model file that cannot be read is reported by `model_and_problem`."""
    return model_and_problem(config)[0]


def model_and_problem(config: AntispamConfig) -> tuple[TextModel | None, str | None]:
    if not (config.classifier.enabled and config.classifier.action != "ignore"):
        return None, None
    model, _source, problem = deployment_model(config.teaching.model_dir)
    return model, problem
