"""The `qunbot` command line. A user error is one readable line and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot import spam_cli
from bot.clihelp import new_app
from bot.config.errors import ConfigError
from bot.stats_cli import stats_app

if TYPE_CHECKING:
    from bot.app import LoadedConfig
    from bot.core.platform import ActionRecord
    from bot.storage.settings import StorageSettings

app = new_app(
    name="qunbot",
    help="qunbot — 社群助手: a group-management bot for WeChat-style group chats.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(stats_app, name="stats")
spam_cli.register(app)  # spam-check, spam-replay

DEFAULT_CONFIG = Path("config/bot.yaml")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The bot's YAML configuration.")]
EXIT_USAGE = 2


def _setup_logging(verbose: bool, default: str = "WARNING") -> None:
    from bot.config.env import environment

    try:
        named = environment().log or default
    except ConfigError as err:
        raise _config_problem(err) from None
    level = logging.DEBUG if verbose else getattr(logging, named)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Migration chatter is noise at start-up; problems still show as warnings.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _config_problem(err: ConfigError) -> typer.Exit:
    for issue in err.issues:
        typer.echo(str(issue), err=True)
    return typer.Exit(EXIT_USAGE)


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the bot with the adapter named in the config (default: the console simulator).

    With the console adapter, type chat lines such as `g1 alice: 签到`, `+g1 carol < alice`
    or `pm alice: 进群`; with piped input the bot exits at the end of input.
    """
    _run(config, verbose)


def _run(config: Path, verbose: bool, *, web: bool = False) -> None:
    _setup_logging(verbose, default="INFO")
    from bot.cluster import ClusterUnavailable
    from bot.runner import run_bot
    from bot.storage.db import DatabaseUnavailable

    try:
        code = asyncio.run(run_bot(config, web=web))
    except ConfigError as err:
        raise _config_problem(err) from None
    except (DatabaseUnavailable, ClusterUnavailable) as exc:
        raise _fail(f"qunbot: {exc}") from None
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            raise _fail(exc.code) from None
        raise
    except Exception as exc:  # the traceback is in the log with -v; the user gets one line
        logging.getLogger("qunbot").debug("fatal", exc_info=True)
        raise _fail(f"qunbot: {type(exc).__name__}: {exc}") from None
    raise typer.Exit(code)


@app.command()
def web(
    config: ConfigOption = DEFAULT_CONFIG,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the bot with the web console (管理后台) on, with default settings when the config
    has no `web:` section (http://127.0.0.1:8080). `qunbot run` serves it too when `web:` is set.
    Log in by sending `后台` to the bot privately."""
    try:
        import bot.web.server  # noqa: F401
    except ImportError as exc:
        raise _fail(f"qunbot: the web console needs the web extra: {exc} (pip install 'qunbot[web]')") from None
    _run(config, verbose, web=True)


@app.command("web-password")
def web_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print the argon2 hash of an admin password, for `web.password_hash` or QUNBOT_WEB_PASSWORD_HASH."""
    from bot.web.auth import hash_password

    typer.echo(hash_password(password))


@app.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="Config file to check.")] = DEFAULT_CONFIG,
    show_diff: Annotated[
        bool,
        typer.Option(
            "--diff",
            help="Also show what a reload would change, against the config the running bot last applied "
            "(its copy .NAME.applied beside the file) or --against.",
        ),
    ] = False,
    against: Annotated[
        Path | None, typer.Option("--against", help="The config to compare with (implies --diff).", metavar="OLD.yaml")
    ] = None,
) -> None:
    """Validate a config file: exit 0 with a summary, or 2 with every problem as FILE:LINE: key.path: problem.

    Warnings (a group id that is in no group list or set) are printed too, and do not change the exit code.
    """
    _setup_logging(False)
    from bot.app import load_everything

    try:
        loaded = load_everything(path)
    except ConfigError as err:
        raise _config_problem(err) from None
    if not show_diff and against is None:
        _print_summary(path, loaded)
        _print_unreachable(loaded)
        return
    from bot.config.diff import applied_snapshot, check_replacement, diff

    old_path = against or applied_snapshot(path)
    if not old_path.exists():
        raise _fail(
            f"{old_path}: not found (the bot writes it when it starts; or compare with --against OLD.yaml)", EXIT_USAGE
        )
    try:
        running = load_everything(old_path)
        check_replacement(running.lines, loaded.lines)  # what a reload refuses, this refuses
    except ConfigError as err:
        raise _config_problem(err) from None
    _print_summary(path, loaded)
    _print_unreachable(loaded)
    changes = diff(running.config, loaded.config)
    label = "the running bot's config" if against is None else str(old_path)
    if not changes:
        typer.echo(f"  a reload changes nothing (against {label})")
        return
    typer.echo(f"  a reload would change ({len(changes)}, against {label}):")
    for change in changes:
        typer.echo(f"    {change}")


def _print_summary(path: Path, loaded: LoadedConfig) -> None:
    cfg = loaded.config
    typer.echo(f"{path}: OK")
    typer.echo(f"  adapter: {cfg.adapter}   timezone: {cfg.timezone}   storage: {_safe_url(cfg.storage.url)}")
    typer.echo(
        f"  groups: {len(cfg.groups)}   group sets: {', '.join(cfg.group_sets) or '-'}   "
        f"bot admins: {len(cfg.bot_admins)}"
    )
    names = [f"{s.name}({s.priority})" for s in sorted(loaded.plugins, key=lambda s: s.priority)]
    typer.echo(f"  plugins (priority): {', '.join(names)}")
    for warning in loaded.warnings:
        typer.echo(str(warning), err=True)


def _print_unreachable(loaded: LoadedConfig) -> None:
    """Relay and broadcast targets the bot is not in, against the groups the database knows
    it is in (the bot records them as it runs). A warning: the config is still valid."""
    from bot.core import reach

    if not reach.configured_targets(loaded.plugins, loaded.config):
        return
    known = asyncio.run(_known_groups(loaded.config.storage))
    if known is None:
        typer.echo("  relay/broadcast targets: not checked (the database does not list the bot's groups yet)")
        return
    missing = reach.unreachable(loaded.plugins, loaded.config, known)
    if not missing:
        typer.echo(f"  relay/broadcast targets: the bot is in all of them ({len(known)} groups, from the database)")
        return
    typer.echo(
        f"  warning: the bot is not in these relay/broadcast targets (it is in {len(known)} groups, "
        "from the database); nothing will be sent there:"
    )
    for line in reach.describe(missing):
        typer.echo(f"    {line}")


async def _known_groups(storage: StorageSettings) -> set[str] | None:
    """The groups the database records the bot as being in, or None when there is no such
    record: no database yet (nothing is created here), unreachable, or no group in it."""
    from bot.storage.db import Database
    from bot.storage.repo import GroupRepo

    if storage.dialect == "sqlite" and (storage.sqlite_path is None or not storage.sqlite_path.exists()):
        return None
    try:
        db = await Database.open(storage.model_copy(update={"connect_retry_seconds": 0}), migrate=False)
    except Exception:
        return None
    try:
        groups = await GroupRepo(db).list(active_only=True)
    except Exception:  # an empty or older database: no groups table yet
        return None
    finally:
        await db.close()
    return {g.id for g in groups} or None


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    from bot.storage.health import masked_url

    return masked_url(url)


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (see README: Scenario files).")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per action line.")] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL to use and keep (default: a fresh temporary one).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (jitter, random replies): same seed, same output.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Replay a scenario through the real bot on a virtual clock and print its actions."""
    _setup_logging(verbose)
    from bot.adapters.console import format_action
    from bot.adapters.simulator import ScenarioError, Simulation, load_scenario
    from bot.adapters.world import World
    from bot.app import load_everything
    from bot.core.events import Member

    try:
        loaded = load_everything(config)
        sc, lines = load_scenario(scenario)
    except ConfigError as err:
        raise _config_problem(err) from None

    topic_world = World(Member(sc.bot.id, sc.bot.name))
    for g in sc.groups:
        topic_world.add_group(g.id, g.topic)

    def emit(record: ActionRecord) -> None:
        line = json.dumps(record.as_json(), ensure_ascii=False) if as_json else format_action(record, topic_world)
        try:
            typer.echo(line)
        except BrokenPipeError:
            # The reader went away (`| head`): finish quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    sim = Simulation(sc, lines, loaded, db_url=db, seed=seed, on_action=emit)
    try:
        asyncio.run(sim.run())
    except ScenarioError as err:
        raise _fail(str(err), EXIT_USAGE) from None
    except ConfigError as err:
        raise _config_problem(err) from None
    except Exception as exc:
        logging.getLogger("qunbot").debug("simulation failed", exc_info=True)
        raise _fail(f"qunbot simulate: {type(exc).__name__}: {exc}") from None


deadletter_app = new_app(
    help="Events the database refused, set aside under the data directory: list them, or write them again.",
    no_args_is_help=True,
)
app.add_typer(deadletter_app, name="deadletter")
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $QUNBOT_DATABASE_URL, else the config's storage.url)."),
]


def _storage_for(config: Path, db: str | None) -> tuple[StorageSettings, Path]:
    """The storage settings (URL from --db, else $QUNBOT_DATABASE_URL or the config's, as
    load_config applies them) and the set-aside file they use."""
    from bot.config import load_config
    from bot.storage.recorder import default_dead_letter_path
    from bot.storage.settings import StorageSettings

    try:
        cfg, _lines = load_config(config)
    except ConfigError as err:
        raise _config_problem(err) from None
    storage = cfg.storage
    if db:
        try:
            storage = StorageSettings.model_validate({**storage.model_dump(), "url": db})
        except ValueError:
            raise _fail("qunbot deadletter: not a usable database URL", EXIT_USAGE) from None
    return storage, default_dead_letter_path(storage, config)


@deadletter_app.command("list")
def deadletter_list(config: ConfigOption = DEFAULT_CONFIG, db: DbOption = None) -> None:
    """Show the set-aside events: when, what, who, and why the database refused them."""
    _setup_logging(False)
    _storage, path = _storage_for(config, db)
    if not path.exists():
        typer.echo(f"no set-aside events ({path} does not exist)")
        return
    reasons: dict[str, int] = {}
    count = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            event = entry["event"]
        except (ValueError, KeyError, TypeError):
            typer.echo(f"{path}:{number}: not a set-aside event", err=True)
            continue
        count += 1
        reason = str(entry.get("error", ""))
        reasons[reason] = reasons.get(reason, 0) + 1
        who = (event.get("sender") or event.get("contact") or {}).get("id", "")
        # JSON-quoted ids: an unprintable character (the usual reason) shows as \u0000.
        typer.echo(
            f"{event.get('at', '?')}  {event.get('type', '?')}  "
            f"group={json.dumps(event.get('group_id'), ensure_ascii=False)}  "
            f"member={json.dumps(who, ensure_ascii=False)}  {reason}"
        )
    typer.echo(f"{count} set-aside events in {path}")
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {n} × {reason}")


@deadletter_app.command("replay")
def deadletter_replay(config: ConfigOption = DEFAULT_CONFIG, db: DbOption = None) -> None:
    """Write the set-aside events again (the bot also does this at every start). Events the
    database refuses again go back to the file; exit 1 if there were any."""
    _setup_logging(False)
    storage, path = _storage_for(config, db)

    async def replay() -> tuple[int, int]:
        from bot.config import load_config
        from bot.storage.db import Database
        from bot.storage.recorder import Recorder

        cfg, _lines = load_config(config)
        database = await Database.open(storage)
        try:
            recorder = Recorder(database, cfg.tz, storage, dead_letter_path=path)
            queued = await recorder.replay_dead_letter()
            await recorder.stop()
            return queued, recorder.dead_lettered
        finally:
            await database.close()

    from bot.storage.db import DatabaseUnavailable

    try:
        queued, refused = asyncio.run(replay())
    except DatabaseUnavailable as exc:
        raise _fail(f"qunbot deadletter: {exc}") from None
    except ValueError as exc:  # a malformed line: nothing was changed
        raise _fail(f"qunbot deadletter: {exc}") from None
    typer.echo(f"replayed {queued} set-aside events from {path}: {queued - refused} written, {refused} refused again")
    if refused:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
