"""`qunbot spam-check` (DESIGN §7) and `qunbot spam-replay`: the anti-spam rules of a config
file, applied to a file of messages or replayed over a database's history."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from bot.config.env import DATABASE_URL_HELP
from bot.config.errors import ConfigError

if TYPE_CHECKING:
    from bot.app import LoadedConfig
    from plugins.antispam.classifier import TextModel
    from plugins.antispam.config import AntispamConfig

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
    """Check messages against the anti-spam rules, one JSON line each.

    One JSON message per input line ({"id", "text", "kind"?, "url"?, "member_days"?,
    "member_messages"?}), one verdict per
    output line ({"id", "spam", "action", "checks"}). Absent member fields mean an
    established member. A bad line gives a verdict with "error" (and a note on stderr);
    the exit code is then 1."""
    from plugins.antispam.detector import Detector
    from plugins.antispam.spamcheck import check_lines

    settings = _settings(config, group)
    detector = Detector(settings, stateful=False, classifier=_model(settings, None, "spam-check"))
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


def _settings(config: Path, group: str | None) -> AntispamConfig:
    from plugins.antispam.spamcheck import load_antispam_config

    try:
        return load_antispam_config(config, group)
    except ConfigError as err:
        raise _problems(err) from None


def _model(settings: AntispamConfig, path: Path | None, command: str) -> TextModel | None:
    """The text model to judge with: the file given (an error when it cannot be used), else
    the deployment's (its active model file, or the shipped model when that file cannot be
    read: said on stderr, the rules still run)."""
    from plugins.antispam.classifier import ModelError, TextModel
    from plugins.antispam.spamcheck import model_and_problem

    if path is not None:
        try:
            return TextModel.load(path)
        except ModelError as err:
            typer.echo(f"qunbot {command}: {err}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    model, problem = model_and_problem(settings)
    if problem is not None:
        typer.echo(f"qunbot {command}: {problem}; using the shipped model", err=True)
    return model


def spam_eval(
    source: Annotated[Path, typer.Argument(metavar="FILE", help="Labelled JSON lines (the corpus format).")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")] = DEFAULT_CONFIG,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="Apply this group's overrides (default: the defaults).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="Judge with this model file (default: the deployment's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON summary instead of the report.")] = False,
) -> None:
    """Measure the anti-spam rules on a labelled file: recall, false positives.

    The file has lines of {"id", "text", "kind", "url", "member_days", "member_messages",
    "spam", "family"?}. The report gives recall, false-positive rate and precision overall,
    per kind, per sender (new, recent, old) and per family, and the ids they got wrong.
    Every line is judged exactly as
    `qunbot spam-check` judges it."""
    from plugins.antispam.detector import Detector
    from plugins.antispam.evaluate import evaluate

    settings = _settings(config, group)
    detector = Detector(settings, stateful=False, classifier=_model(settings, model, "spam-eval"))
    if not source.is_file():
        typer.echo(f"qunbot spam-eval: no such file: {source}", err=True)
        raise typer.Exit(EXIT_USAGE)
    with source.open(encoding="utf-8", errors="replace") as stream:
        result = evaluate(stream, detector)
    for error in result.errors:
        typer.echo(f"qunbot spam-eval: {error}", err=True)
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        for line in result.report():
            typer.echo(line)
    if result.errors:
        raise typer.Exit(1)


def spam_train(
    config: Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")] = DEFAULT_CONFIG,
    db: Annotated[str | None, typer.Option("--db", help=DATABASE_URL_HELP)] = None,
    activate: Annotated[
        bool, typer.Option("--activate", help="Switch the candidate built before on (the running bot follows).")
    ] = False,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="Cross-validation folds.")] = 5,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            exists=True,
            file_okay=False,
            help="Train on the *.jsonl files of this folder (corpus format) instead of the shipped corpus.",
        ),
    ] = None,
) -> None:
    """Build a candidate text model from the corpus and this deployment's samples.

    The samples are what admins taught in chat (广告 / 误判) and the removals that stood or
    were pardoned. The candidate is written to `<teaching.model_dir>/candidate.json`, with its
    cross-validated figures printed. Nothing
    changes until it is switched on: try it with `qunbot spam-replay --model …`, then
    `qunbot spam-train --activate` (or 启用新模型 in chat)."""
    from plugins.antispam.classifier import ModelError
    from plugins.antispam.teaching import activate as switch_on
    from plugins.antispam.teaching import active_path

    settings = _settings(config, None)
    model_dir = settings.teaching.model_dir
    if activate:
        try:
            model = switch_on(model_dir)
        except (ModelError, OSError) as err:
            typer.echo(f"qunbot spam-train: not switched on: {err}", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            f"switched on: {active_path(model_dir)} ({model.info.get('spam')} ads, "
            f"{model.info.get('normal')} normal lines); the running bot uses it within a minute."
        )
        return
    from bot.app import load_everything

    try:
        loaded = load_everything(config)
    except ConfigError as err:
        raise _problems(err) from None
    try:
        option = "" if config == DEFAULT_CONFIG else f" --config {config}"
        lines = asyncio.run(_train(loaded, settings, db, folds, corpus, option))
    except ModelError as err:
        typer.echo(f"qunbot spam-train: {err}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


async def _train(
    loaded: LoadedConfig,
    settings: AntispamConfig,
    db_url: str | None,
    folds: int,
    corpus_dir: Path | None,
    config_option: str,
) -> list[str]:
    from bot.storage.db import Database
    from bot.storage.settings import normalize_url
    from plugins.antispam.classifier import (
        NEW,
        OLD,
        Example,
        TextModel,
        corpus_samples,
        read_corpus,
        training_examples,
    )
    from plugins.antispam.evaluate import cross_validate, score_with
    from plugins.antispam.spamcheck import model_and_problem
    from plugins.antispam.store import AntispamStore
    from plugins.antispam.teaching import candidate_path

    config = loaded.config
    storage = config.storage.model_copy(update={"url": normalize_url(db_url)}) if db_url else config.storage
    database = await Database.open(storage)
    try:
        store = AntispamStore(database)
        taught, problems = await store.samples()
        decided = await store.labelled()
    finally:
        await database.close()
    shipped = corpus_samples() if corpus_dir is None else read_corpus(corpus_dir, str(corpus_dir))
    corpus: list[Example] = list(training_examples(shipped))
    own: list[Example] = [(text, spam) for _key, text, spam in taught]
    seen = {example[0] for example in own}
    own += [(text, spam) for text, spam in decided if text not in seen]  # a taught line counts once
    samples = corpus + own
    rule = settings.classifier
    thresholds = rule.by_standing(settings.strictness)
    out = [f"skipped: {p}" for p in problems]
    # The folds train in worker processes while this one trains the model itself: on a
    # two-core host the whole command takes about half as long.
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    validated = asyncio.to_thread(
        cross_validate, samples, thresholds, rule.min_chars, folds, [False] * len(corpus) + [True] * len(own), workers
    )
    (all_lines, own_lines), model = await asyncio.gather(validated, asyncio.to_thread(TextModel.train, samples))
    path = candidate_path(settings.teaching.model_dir)
    await asyncio.to_thread(model.save, path)
    current, _problem = model_and_problem(settings)
    out += [
        f"trained on {len(corpus)} corpus lines{f' ({corpus_dir})' if corpus_dir else ''} "
        f"+ {len(own)} of this deployment's "
        f"({sum(e[1] for e in own)} ads, {len(own) - sum(e[1] for e in own)} normal); "
        f"thresholds {thresholds[OLD]} / newcomers {thresholds[NEW]} ({settings.strictness})",
        f"cross-validated ({folds} folds), text model alone:",
        f"  {all_lines.line('all lines')}",
    ]
    if own:
        out.append(f"  {own_lines.line('own samples')}")
        if current is not None:
            out.append(
                f"  {score_with(current, own, thresholds, rule.min_chars).line('current model')}"
                "   (on the same own samples, for comparison)"
            )
    out += [
        f"candidate written: {path}",
        "nothing changes until you switch it on. First see what it would have done:",
        f"  qunbot spam-replay{config_option} --days 30 --model {path}",
        "then switch it on (the running bot follows within a minute, no restart):",
        f"  qunbot spam-train{config_option} --activate   (or send 启用新模型 to the bot as a bot admin)",
    ]
    return out


def spam_replay(
    config: Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")] = DEFAULT_CONFIG,
    db: Annotated[str | None, typer.Option("--db", help=DATABASE_URL_HELP)] = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=365, help="How far back to replay.")] = 7,
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Only these groups (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per member.")] = False,
    model: Annotated[
        Path | None, typer.Option("--model", help="Judge with this model file, e.g. the candidate of spam-train.")
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"],
            help="End of the window (default: now), e.g. 2026-12-01T00:00:00+08:00.",
        ),
    ] = None,
) -> None:
    """Replay the anti-spam rules over the stored history: who would have been caught.

    Who would the current rules have warned or removed in the last N days? Nothing is sent or written. Owners and admins
    known from the config and the database are skipped."""
    from bot.app import load_everything

    try:
        loaded = load_everything(config)
    except ConfigError as err:
        raise _problems(err) from None
    candidate = _model(_settings(config, None), model, "spam-replay") if model is not None else None
    try:
        lines = asyncio.run(_replay(loaded, db, days, group or None, as_json, until, candidate))
    except Exception as exc:
        typer.echo(f"qunbot spam-replay: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


async def _replay(
    loaded: LoadedConfig,
    db_url: str | None,
    days: int,
    groups: list[str] | None,
    as_json: bool,
    until: datetime | None,
    candidate: TextModel | None = None,
) -> list[str]:
    from sqlmodel import select

    from bot.core.clock import SystemClock
    from bot.storage.db import Database
    from bot.storage.models import Group
    from bot.storage.settings import normalize_url
    from plugins.antispam.replay import replay
    from plugins.antispam.spamcheck import antispam_config_of, model_and_problem
    from plugins.antispam.store import AntispamStore
    from plugins.antispam.teaching import TaughtSamples, WithTaught

    config = loaded.config
    settings = next((s for s in loaded.plugins if s.name == "antispam"), None)

    def config_for(group_id: str) -> AntispamConfig:
        if settings is not None:
            return cast("AntispamConfig", settings.for_group(group_id))  # the loader validated it with AntispamConfig
        return antispam_config_of(config, loaded.lines, group_id)

    storage = config.storage.model_copy(update={"url": normalize_url(db_url)}) if db_url else config.storage
    database = await Database.open(storage)
    try:
        async with database.session() as s:
            owners = {g.id: g.owner_id for g in (await s.exec(select(Group))).all()}
        admins = {g.id: set(g.admins) for g in config.groups}

        async def protected(group_id: str, member_id: str) -> bool:
            return (
                member_id in config.bot_admins
                or member_id == owners.get(group_id)
                or member_id in admins.get(group_id, ())
                or member_id in config_for(group_id).allow_members
                or member_id in config.other_bots
                or member_id == config.bot.id
            )

        # The deployment's text model (or the candidate given) and taught samples, as the bot runs.
        defaults = antispam_config_of(config, loaded.lines, None)
        teaching = defaults.teaching
        taught = TaughtSamples(teaching.similarity, teaching.min_chars)
        for key, text, spam in (await AntispamStore(database).samples())[0]:
            taught.add(key, text, spam)
        model = candidate if candidate is not None else model_and_problem(defaults)[0]
        classifier = WithTaught(model, taught) if model is not None else None
        now = SystemClock(config.tz).now() if until is None else until
        if now.tzinfo is None:
            now = now.replace(tzinfo=config.tz)
        report = await replay(
            database,
            config_for,
            since=now - timedelta(days=days),
            until=now,
            tz=config.tz,
            groups=groups,
            protected=protected,
            classifier=classifier,
            taught=taught,
            judged_by="当前规则和新模型" if candidate is not None else "当前规则",
        )
    finally:
        await database.close()
    if not as_json:
        return [report.summary(config.tz, limit=200)]
    return [
        json.dumps(
            {
                "group": s.group_id,
                "member": s.member_id,
                "name": s.name,
                "outcome": s.outcome,
                "warnings": s.warnings,
                "rules": s.rules,
                "sample": s.sample,
                "first_at": s.first_at.isoformat() if s.first_at else None,
            },
            ensure_ascii=False,
        )
        for s in report.suspects
    ]


def register(app: typer.Typer) -> None:
    app.command("spam-check")(spam_check)
    app.command("spam-replay")(spam_replay)
    app.command("spam-eval")(spam_eval)
    app.command("spam-train")(spam_train)
