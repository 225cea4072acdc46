"""The dead-letter file: events the database refused (or could not take at shutdown), one
JSON line each with the reason, under the data directory; and reading them back for replay."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import types
import typing
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.core import events as ev
from bot.core.events import Event, Member
from bot.storage.recorder.fold import RECORDED_TYPES
from bot.storage.settings import StorageSettings

log = logging.getLogger("bot.storage.recorder")


def data_path(settings: StorageSettings, config_path: Path | None, kind: str) -> Path:
    """`<data dir>/<database>.<kind>`: a file of the bot's own, as an absolute path, named
    after the database (SQLite: the file's name; PostgreSQL: `<db>-<host>-<port>`) so that two
    databases sharing a data directory (the examples' SQLite files in data/) never read each
    other's files."""
    db_file = settings.sqlite_path
    if db_file is not None:
        name = db_file.stem
    else:
        # Server, port and database: two bots on different servers (or test servers on free
        # ports) whose configs share a folder never share these files.
        url = make_url(settings.url)
        name = "-".join(str(part) for part in (url.database or "qunbot", url.host or "local", url.port or 5432))
        name = re.sub(r"[^\w.@-]", "_", name)
    return settings.resolved_data_dir(config_path) / f"{name}.{kind}"


def default_dead_letter_path(settings: StorageSettings, config_path: Path | None = None) -> Path:
    return data_path(settings, config_path, "deadletter.jsonl")


async def set_aside(path: Path, events: list[Event], reason: str) -> bool:
    """Append `events` to the dead-letter file at `path` with `reason`. False (logged) when
    the file cannot be written: the caller keeps the events."""
    lines = [
        json.dumps({"error": reason[:1000], "event": event_to_json(event)}, ensure_ascii=False) + "\n"
        for event in events
    ]
    try:
        await asyncio.to_thread(_append_lines, path, lines)
    except OSError as exc:
        log.error("recorder: cannot write the dead-letter file %s (%s); the events stay buffered", path, exc)
        return False
    return True


async def take_events(path: Path) -> list[Event] | None:
    """The events of the dead-letter file at `path`, cleaned as at the edge (`storable`: rows
    set aside for a NUL before it was cleaned there now go in); the file is renamed to
    `*.replayed`. None when there is no file. A malformed line raises ValueError (with its
    number) and changes nothing."""
    if not await asyncio.to_thread(path.exists):
        return None
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(ev.storable(event_from_json(json.loads(line)["event"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a dead-letter event: {exc}") from exc
    await asyncio.to_thread(path.replace, path.with_name(path.name + ".replayed"))
    return events


def _append_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)


# -- event (de)serialisation for the dead-letter file ------------------------------------------

_EVENT_CLASSES: dict[str, type[Event]] = {cls.__name__: cls for cls in RECORDED_TYPES}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Member):
        return {"id": value.id, "name": value.name}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def event_to_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        out[f.name] = _jsonable(getattr(event, f.name))
    return out


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        (inner, *_rest) = typing.get_args(hint) or (Any,)
        return tuple(_convert(inner, v) for v in value)
    if hint is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}")
        return parsed
    if hint is Member:
        return Member(id=value["id"], name=value.get("name", ""))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event written by `event_to_json`."""
    data = dict(data)
    cls = _EVENT_CLASSES.get(data.pop("type", None))
    if cls is None:
        raise ValueError("unknown event type")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})
