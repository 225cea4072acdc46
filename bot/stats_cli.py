"""`qunbot stats …`: activity statistics and retention (留存率) from the command line.

Readable tables by default (rich), `--json` or `--csv` for scripts, `--png FILE` for a chart.
Reports read the bot's database (`--db URL`, else $QUNBOT_DATABASE_URL, else the config's
`storage.url`); days are local calendar days in the config's timezone. Scope: `--group ID`
and `--set NAME` (repeatable), or every group when neither is given.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.clihelp import new_app
from bot.config.env import DATABASE_URL_HELP
from bot.config.errors import ConfigError

stats_app = new_app(
    name="stats",
    help="Activity statistics and retention (留存率): growth, activity, retention, members, heatmap, check-in "
    "and action rates. Tables by default; --json, --csv, or --png FILE for a chart.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")]
DbOpt = Annotated[str | None, typer.Option("--db", help=DATABASE_URL_HELP)]
GroupOpt = Annotated[list[str] | None, typer.Option("--group", "-g", help="A group id (repeatable).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="A group set from the config (repeatable).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (local).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (local; default today).")]
DaysOpt = Annotated[int | None, typer.Option("--days", "-d", help="The N days ending with --to (default 30).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Pretend it is this time (ISO); default now.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV.")]
PngOpt = Annotated[Path | None, typer.Option("--png", help="Draw a chart into this PNG file.")]

DEFAULT_CONFIG = Path("config/bot.yaml")
DEFAULT_DAYS = 30


class UsageError(Exception):
    pass


@dataclass
class Setup:
    config: Any  # BotConfig
    stats: Any  # StatsConfig
    db_url: str
    tz: ZoneInfo
    scope: Any  # Scope
    period: Any  # Period
    as_of: datetime
    asked_groups: tuple[str, ...] = ()  # the --group ids: each must be a group the bot knows
    config_path: Path = DEFAULT_CONFIG


def _load(
    config: Path,
    db: str | None,
    groups: list[str] | None,
    sets: list[str] | None,
    start: str | None,
    end: str | None,
    days: int | None,
    as_of: str | None,
    default_days: int = DEFAULT_DAYS,
) -> Setup:
    from bot.config import load_config
    from bot.core.clock import SystemClock
    from bot.core.loader import plugin_settings
    from bot.stats import Period, Scope
    from bot.storage.settings import normalize_url
    from plugins.stats.config import StatsConfig

    cfg, lines = load_config(config)
    stats_settings = plugin_settings(cfg, lines, "stats")
    tz = cfg.tz
    when = _parse_time(as_of, tz, "--as-of") if as_of else SystemClock(tz).now()
    today = when.astimezone(tz).date()
    last = _parse_day(end, "--to") if end else today
    if start and days:
        raise UsageError("give --from or --days, not both")
    first = _parse_day(start, "--from") if start else last - timedelta(days=(days or default_days) - 1)
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    exclude = (cfg.bot.id, *cfg.other_bots)
    wanted: list[str] = list(groups or [])
    for name in sets or []:
        key = name.removeprefix("set:")
        if key not in cfg.group_sets:
            known = ", ".join(sorted(cfg.group_sets)) or "none"
            raise UsageError(f"unknown group set {name!r} (sets in {config}: {known})")
        wanted.extend(cfg.group_sets[key])
    names = {g.id: g.name for g in cfg.groups if g.name}
    single = len(wanted) == 1 and not sets
    if not wanted:
        scope = Scope(None, "全部群", exclude)
    elif single:
        scope = Scope.one(wanted[0], names.get(wanted[0], wanted[0]), exclude)
    else:
        label = "、".join(f"群组 {s}" for s in sets or []) or "、".join(names.get(g, g) for g in wanted[:5])
        scope = Scope.many(wanted, label, exclude)
    # One group: its own settings (per-group overrides), as the chat command uses them.
    stats_cfg = StatsConfig() if stats_settings is None else stats_settings.for_group(wanted[0] if single else None)
    try:
        url = normalize_url(db) if db else cfg.storage.url
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Setup(cfg, stats_cfg, url, tz, scope, Period(first, last), when, tuple(groups or ()), config)


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: not a date: {text!r} (use YYYY-MM-DD)") from None


def _parse_time(text: str, tz: ZoneInfo, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option}: not a time: {text!r} (use e.g. 2026-12-01T20:00 or 2026-12-01)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


async def _with_db(setup: Setup, work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    from bot.storage.db import Database
    from bot.storage.settings import StorageSettings, sqlite_path

    path = sqlite_path(setup.db_url)
    if path is not None and not await asyncio.to_thread(path.exists):
        raise UsageError(f"no database at {path} (run the bot first, or pass --db URL)")
    db = await Database.open(StorageSettings(url=setup.db_url))
    try:
        await _check_groups(db, setup)
        console = _err_console()
        if not console.is_terminal:
            return await work(db, None)
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("computing"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} group chunks"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("stats", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await work(db, progress)
    finally:
        await db.close()


async def _check_groups(db: Any, setup: Setup) -> None:
    """Every --group must be a group the bot has recorded or the config names: a typo is an
    error, not an empty report. One group without a name in the config is shown by its topic."""
    import dataclasses

    import sqlalchemy as sa

    from bot.storage.models import Group

    if not setup.asked_groups:
        return
    g = Group.__table__.c
    async with db.engine.connect() as conn:
        topics = {gid: topic for gid, topic in await conn.execute(sa.select(g.id, g.topic))}
    configured = {c.id for c in setup.config.groups}
    unknown = [gid for gid in setup.asked_groups if gid not in topics and gid not in configured]
    if unknown:
        known = sorted(set(topics) | configured)
        shown = ", ".join(known[:20]) + (f" … ({len(known)} in all)" if len(known) > 20 else "") or "none"
        raise UsageError(
            f"unknown group{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}: "
            f"not in the database nor in {setup.config_path} (groups: {shown})"
        )
    scope = setup.scope
    if scope.groups is not None and len(scope.groups) == 1 and scope.label == scope.groups[0]:
        topic = topics.get(scope.groups[0])
        if topic:
            setup.scope = dataclasses.replace(scope, label=topic)


def _emit(
    report: Any,
    as_json: bool,
    as_csv: bool,
    png: Path | None,
    chart: Callable[[Any, Path], Path] | None,
    extra_tables: Callable[[Any], list[Any]] | None = None,
    csv_rows: Callable[[Any], tuple[list[str], list[Any]]] | None = None,
) -> None:
    from bot.stats.table import to_csv

    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other")
    if png is not None:
        if chart is None:
            raise UsageError("this report has no chart (charts: growth, activity, retention, heatmap)")
        path = chart(report, png)
        typer.echo(f"chart written to {path}", err=True)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    elif as_csv:
        if csv_rows is not None:
            columns, rows = csv_rows(report)
        else:
            table = report.table()
            columns, rows = table.columns, table.rows
        sys.stdout.write(to_csv(columns, rows))
    elif png is None:
        from rich.console import Console
        from rich.table import Table as RichTable

        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # piped to a file: no terminal width to respect
        for table in [report.table(), *(extra_tables(report) if extra_tables else [])]:
            rich = RichTable(title=table.title, title_justify="left", header_style="bold")
            for i, column in enumerate(table.columns):
                rich.add_column(column, justify="left" if i == 0 else "right")
            for row in table.rows:
                rich.add_row(*("" if v is None else str(v) for v in row))
            console.print(rich)
            for note in table.notes:
                console.print(f"[dim]{note}[/dim]")


def _run(
    build: Callable[[], Setup], work: Callable[[Any, Setup, Any], Awaitable[Any]], output: Callable[[Any, Setup], None]
) -> None:
    try:
        setup = build()
        report = asyncio.run(_with_db(setup, lambda db, progress: work(db, setup, progress)))
        output(report, setup)
    except ConfigError as err:
        for issue in err.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(2) from None
    except (UsageError, ValueError) as exc:
        typer.echo(f"qunbot stats: {exc}", err=True)
        raise typer.Exit(2) from None


def _charts() -> Any:
    from bot.stats import charts

    return charts


@stats_app.command()
def growth(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    png: PngOpt = None,
) -> None:
    """Members over time: joins, leaves, removals and net growth per day."""
    from bot import stats

    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of),
        lambda d, s, p: stats.growth(d, s.tz, s.scope, s.period, progress=p),
        lambda r, s: _emit(r, as_json, as_csv, png, _charts().growth_chart),
    )


@stats_app.command()
def activity(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    png: PngOpt = None,
) -> None:
    """Active members per day (DAU), week and month, messages per day, active ratio."""
    from bot import stats

    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of),
        lambda d, s, p: stats.activity(d, s.tz, s.scope, s.period, progress=p),
        lambda r, s: _emit(
            r, as_json, as_csv, png, _charts().activity_chart, extra_tables=lambda rep: [rep.bucket_table()]
        ),
    )


def _int_list(text: str | None, default: list[int]) -> list[int]:
    if not text:
        return default
    try:
        return sorted({int(x) for x in text.replace("，", ",").split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"--at: not a list of days: {text!r} (e.g. 1,7,30)") from None


@stats_app.command()
def retention(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    by: Annotated[str, typer.Option(help="Cohorts by join day, week, source or inviter.")] = "week",
    at: Annotated[str | None, typer.Option("--at", help="Days after joining, e.g. 1,7,30 (default: config).")] = None,
    window: Annotated[int | None, typer.Option(help="Days from day N in which a post counts as active.")] = None,
    from_events: Annotated[bool, typer.Option("--from-events", help="Compute from the raw event log (check).")] = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    png: PngOpt = None,
) -> None:
    """Retention by join cohort: share still in the group, and still active, N days after joining.

    The period (--from/--to/--days, default the last 60 days) selects the joins; figures use
    all data up to --as-of. See README "Statistics" for the exact definitions."""
    from bot import stats

    def work(d: Any, s: Setup, p: Any) -> Awaitable[Any]:
        fn = stats.retention_from_events if from_events else stats.retention
        return fn(
            d,
            s.tz,
            s.scope,
            s.period,
            as_of=s.as_of,
            by=by,
            progress=p,
            days=_int_list(at, s.stats.retention_days),
            window=window or s.stats.active_window_days,
        )

    async def work_with_names(d: Any, s: Setup, p: Any) -> Any:
        report = await work(d, s, p)
        if by == "inviter":
            report.labels = {
                k: f"{v} ({k})" for k, v in (await stats.names(d, [r.key for r in report.rows])).items() if v
            }
        return report

    def csv_rows(report: Any) -> tuple[list[str], list[Any]]:
        rows = report.as_rows()
        return (list(rows[0]) if rows else ["cohort"]), rows

    if by not in stats.COHORT_BY:
        typer.echo(f"qunbot stats: --by must be one of {', '.join(stats.COHORT_BY)}", err=True)
        raise typer.Exit(2)
    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of, default_days=60),
        work_with_names,
        lambda r, s: _emit(r, as_json, as_csv, png, _charts().retention_chart, csv_rows=csv_rows),
    )


@stats_app.command()
def members(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    lurk_days: Annotated[int | None, typer.Option(help="No message in this many days = lurker.")] = None,
    core_share: Annotated[float | None, typer.Option(help="The core sends this share of messages.")] = None,
    top: Annotated[int, typer.Option(help="Top posters to list.")] = 10,
    sample: Annotated[int, typer.Option(help="Lurkers to list (all are counted).")] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Top posters, the active core, lurkers and removals."""
    from bot import stats

    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of),
        lambda d, s, p: stats.members(
            d,
            s.tz,
            s.scope,
            s.period,
            lurk_days=lurk_days or s.stats.lurk_days,
            core_share=core_share or s.stats.core_share,
            top=top,
            sample=sample,
            progress=p,
        ),
        lambda r, s: _emit(r, as_json, as_csv, None, None),
    )


@stats_app.command()
def heatmap(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    png: PngOpt = None,
) -> None:
    """Messages by local hour and weekday (reads the event log)."""
    from bot import stats

    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of),
        lambda d, s, p: stats.heatmap(d, s.tz, s.scope, s.period, progress=p),
        lambda r, s: _emit(r, as_json, as_csv, png, _charts().heatmap_chart),
    )


@stats_app.command()
def checkin(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Check-in rate per day: from the check-in plugin's records, or messages with the check-in words."""
    from bot import stats

    _run(
        lambda: _load(config, db, group, set_, start, end, days, as_of),
        lambda d, s, p: stats.checkin_rate(
            d, s.tz, s.scope, s.period, fallback_keywords=s.stats.checkin_words, progress=p
        ),
        lambda r, s: _emit(r, as_json, as_csv, None, None),
    )


@stats_app.command()
def action(
    keyword: Annotated[list[str], typer.Option("--keyword", "-k", help="What members were asked to post.")],
    since: Annotated[str, typer.Option(help="Window start (ISO time, local if no offset).")],
    until: Annotated[str | None, typer.Option(help="Window end (default: --hours after --since).")] = None,
    hours: Annotated[float, typer.Option(help="Window length when --until is not given.")] = 24.0,
    match: Annotated[str, typer.Option(help="exact or contains.")] = "contains",
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Action rate: the share of members who posted a keyword within a window (e.g. after a broadcast)."""
    from bot import stats

    def work(d: Any, s: Setup, p: Any) -> Awaitable[Any]:
        begin = _parse_time(since, s.tz, "--since")
        finish = _parse_time(until, s.tz, "--until") if until else begin + timedelta(hours=hours)
        return stats.action_rate(d, s.scope, begin, finish, keyword, match=match, progress=p)

    _run(
        lambda: _load(config, db, group, set_, None, None, None, None),
        work,
        lambda r, s: _emit(r, as_json, as_csv, None, None),
    )


@stats_app.command()
def summary(
    config: ConfigOpt = DEFAULT_CONFIG,
    db: DbOpt = None,
    group: GroupOpt = None,
    set_: SetOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    days: DaysOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The text summary admins get in chat (群数据), for any scope and period."""
    from bot import stats

    async def work(d: Any, s: Setup, p: Any) -> Any:
        # The service the chat command `群数据` calls: the same figures and text.
        return await stats.summary_report(
            d, s.tz, s.scope, s.period, as_of=s.as_of, options=stats.SummaryOptions.of(s.stats)
        )

    def output(report: Any, s: Setup) -> None:
        summary, text = report
        if as_json:
            typer.echo(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
        else:
            typer.echo(text)

    _run(lambda: _load(config, db, group, set_, start, end, days, as_of, default_days=7), work, output)
