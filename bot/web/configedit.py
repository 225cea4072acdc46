"""配置: the YAML edited in the browser. Checked exactly as `qunbot check-config --diff` checks
it (the same loader, the same reload rules), saved atomically with the previous version kept
beside it, then applied by the bot's own hot reload."""

from __future__ import annotations

import asyncio
import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config.errors import ConfigError

if TYPE_CHECKING:
    from bot.web.server import WebConsole

MAX_BYTES = 1_000_000


@dataclass
class Problem:
    line: int | None
    path: str
    problem: str


@dataclass
class Check:
    problems: list[Problem] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what a reload would change, as check-config says it
    diff: list[str] = field(default_factory=list)  # the text's unified diff

    @property
    def lines_with_problems(self) -> set[int]:
        return {p.line for p in self.problems if p.line is not None}


def config_path(console: WebConsole) -> Path:
    path = console.bot.loaded.path
    if path is None:
        raise RuntimeError("the bot was started without a config file")
    return path


def previous_path(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


async def check(console: WebConsole, text: str) -> Check:
    return await asyncio.to_thread(_check, console, text)


def _check(console: WebConsole, text: str) -> Check:
    from bot.app import load_everything
    from bot.config.diff import check_replacement, diff

    path = config_path(console)
    if len(text.encode()) > MAX_BYTES:
        return Check([Problem(None, "", f"配置文件超过 {MAX_BYTES // 1000} KB")])
    current = path.read_text(encoding="utf-8")
    out = Check(
        diff=list(difflib.unified_diff(current.splitlines(), text.splitlines(), "当前", "修改后", lineterm="", n=2))
    )
    # Beside the real file, so relative paths in it (data folder, model files) mean the same.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        loaded = load_everything(tmp, web_default=console.bot.loaded.web_default)
        check_replacement(console.bot.loaded.lines, loaded.lines)
    except ConfigError as err:
        out.problems = [Problem(i.line, i.path, i.problem) for i in err.issues]
        return out
    finally:
        Path(tmp).unlink(missing_ok=True)
    out.changes = [str(c) for c in diff(console.bot.config, loaded.config)]
    return out


async def save_and_reload(console: WebConsole, text: str) -> bool:
    path = config_path(console)
    await asyncio.to_thread(_save, path, text)
    return await console.bot.reload(path)


def _save(path: Path, text: str) -> None:
    """The previous version goes to NAME.prev; the new one is written to a temporary file
    and renamed over the old, so a crash leaves one or the other, never half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            previous_path(path).write_bytes(path.read_bytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
