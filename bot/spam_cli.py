"""`qunbot spam-check` (DESIGN §7) and `qunbot spam-replay`: the anti-spam rules of a config
file, applied to a file of messages or replayed over a database's history."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from bot.config.errors import ConfigError

DEFAULT_CONFIG = Path("config/bot.yaml")
EXIT_USAGE = 2


def _problems(err: ConfigError) -> typer.Exit:
    for issue in err.issues:
        typer.echo(str(issue), err=True)
    return typer.Exit(EXIT_USAGE)


def spam_check(
    source: Annotated[str, typer.Argument(metavar="[FILE|-]", help="JSON lines to check; - or nothing: stdin.")] = "-",
    config: Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")] = DEFAULT_CONFIG,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="Apply this group's overrides (default: the defaults).")
    ] = None,
) -> None:
    """Check messages against the anti-spam rules: one JSON message per input line
    ({"id", "text", "kind"?, "url"?, "member_days"?, "member_messages"?}), one verdict per
    output line ({"id", "spam", "action", "checks"}). Absent member fields mean an
    established member. A bad line gives a verdict with "error" (and a note on stderr);
    the exit code is then 1."""
    from plugins.antispam.detector import Detector
    from plugins.antispam.spamcheck import check_lines, load_antispam_config, model_for

    try:
        settings = load_antispam_config(config, group)
    except ConfigError as err:
        raise _problems(err) from None
    detector = Detector(settings, stateful=False, classifier=model_for(settings))
    if source == "-":
        stream = sys.stdin
    else:
        path = Path(source)
        if not path.is_file():
            typer.echo(f"qunbot spam-check: no such file: {source}", err=True)
            raise typer.Exit(EXIT_USAGE)
        stream = path.open(encoding="utf-8", errors="replace")
    failed = 0
    out = sys.stdout
    try:
        for verdict, error in check_lines(stream, detector):
            if error is not None:
                failed += 1
                typer.echo(f"qunbot spam-check: {error}", err=True)
            out.write(json.dumps(verdict, ensure_ascii=False) + "\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    out.flush()
    if failed:
        raise typer.Exit(1)


def spam_replay(
    config: Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")] = DEFAULT_CONFIG,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: the config's storage.url).")] = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=365, help="How far back to replay.")] = 7,
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Only these groups (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per member.")] = False,
    until: Annotated[
        datetime | None, typer.Option("--until", formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"],
                                      help="End of the window (default: now), e.g. 2026-12-01T00:00:00+08:00.")
    ] = None,
) -> None:
    """Replay the current anti-spam rules over the stored history: who would they have
    warned or removed in the last N days? Nothing is sent or written. Owners and admins
    known from the config and the database are skipped."""
    from bot.app import load_everything

    try:
        loaded = load_everything(config)
    except ConfigError as err:
        raise _problems(err) from None
    try:
        lines = asyncio.run(_replay(loaded, db, days, group or None, as_json, until))
    except Exception as exc:
        typer.echo(f"qunbot spam-replay: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


async def _replay(
    loaded: object, db_url: str | None, days: int, groups: list[str] | None, as_json: bool, until: datetime | None
) -> list[str]:
    from sqlmodel import select

    from bot.core.clock import SystemClock
    from bot.storage.db import Database
    from bot.storage.models import Group
    from bot.storage.settings import normalize_url
    from plugins.antispam.config import AntispamConfig
    from plugins.antispam.replay import replay
    from plugins.antispam.spamcheck import antispam_config_of

    config = loaded.config  # type: ignore[attr-defined]
    settings = next((s for s in loaded.plugins if s.name == "antispam"), None)  # type: ignore[attr-defined]

    def config_for(group_id: str) -> AntispamConfig:
        if settings is not None:
            return settings.for_group(group_id)  # type: ignore[no-any-return]
        return antispam_config_of(config, loaded.lines, group_id)  # type: ignore[attr-defined]

    storage = config.storage.model_copy(update={"url": normalize_url(db_url)}) if db_url else config.storage
    database = await Database.open(storage)
    try:
        async with database.session() as s:
            owners = {g.id: g.owner_id for g in (await s.exec(select(Group))).all()}
        admins = {g.id: set(g.admins) for g in config.groups}

        async def protected(group_id: str, member_id: str) -> bool:
            return (member_id in config.bot_admins or member_id == owners.get(group_id)
                    or member_id in admins.get(group_id, ()) or member_id in config_for(group_id).allow_members
                    or member_id in config.other_bots or member_id == config.bot.id)

        now = SystemClock(config.tz).now() if until is None else until
        if now.tzinfo is None:
            now = now.replace(tzinfo=config.tz)
        report = await replay(database, config_for, since=now - timedelta(days=days), until=now, tz=config.tz,
                              groups=groups, protected=protected)
    finally:
        await database.close()
    if not as_json:
        return [report.summary(config.tz, limit=200)]
    return [
        json.dumps({"group": s.group_id, "member": s.member_id, "name": s.name, "outcome": s.outcome,
                    "warnings": s.warnings, "rules": s.rules, "sample": s.sample,
                    "first_at": s.first_at.isoformat() if s.first_at else None}, ensure_ascii=False)
        for s in report.suspects
    ]


def register(app: typer.Typer) -> None:
    app.command("spam-check")(spam_check)
    app.command("spam-replay")(spam_replay)
