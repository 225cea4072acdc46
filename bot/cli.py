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
from bot.config.errors import ConfigError
from bot.stats_cli import stats_app

if TYPE_CHECKING:
    from bot.app import LoadedConfig

app = typer.Typer(
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


def _setup_logging(verbose: bool) -> None:
    named = os.environ.get("QUNBOT_LOG", "WARNING").upper()
    level = logging.DEBUG if verbose else getattr(logging, named, logging.WARNING)
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
    if not verbose and "QUNBOT_LOG" not in os.environ:
        os.environ["QUNBOT_LOG"] = "INFO"
    _setup_logging(verbose)
    from bot.runner import run_bot

    try:
        code = asyncio.run(run_bot(config))
    except ConfigError as err:
        raise _config_problem(err) from None
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


@app.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="Config file to check.")] = DEFAULT_CONFIG,
    show_diff: Annotated[bool, typer.Option(
        "--diff", help="Also show what a reload would change, against the config the running bot last applied "
                       "(its copy .NAME.applied beside the file) or --against.")] = False,
    against: Annotated[Path | None, typer.Option(
        "--against", help="The config to compare with (implies --diff).", metavar="OLD.yaml")] = None,
) -> None:
    """Validate a config file: exit 0 with a summary, or 2 with FILE:LINE: key.path: problem."""
    _setup_logging(False)
    from bot.app import load_everything

    try:
        loaded = load_everything(path)
    except ConfigError as err:
        raise _config_problem(err) from None
    if not show_diff and against is None:
        _print_summary(path, loaded)
        return
    from bot.config.diff import applied_snapshot, check_replacement, diff

    old_path = against or applied_snapshot(path)
    if not old_path.exists():
        raise _fail(f"{old_path}: not found (the bot writes it when it starts; or compare with --against OLD.yaml)",
                    EXIT_USAGE)
    try:
        running = load_everything(old_path)
        check_replacement(running.lines, loaded.lines)  # what a reload refuses, this refuses
    except ConfigError as err:
        raise _config_problem(err) from None
    _print_summary(path, loaded)
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
    typer.echo(f"  groups: {len(cfg.groups)}   group sets: {', '.join(cfg.group_sets) or '-'}   "
               f"bot admins: {len(cfg.bot_admins)}")
    names = [f"{s.name}({s.priority})" for s in sorted(loaded.plugins, key=lambda s: s.priority)]
    typer.echo(f"  plugins (priority): {', '.join(names)}")


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


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

    def emit(record: object) -> None:
        line = (
            json.dumps(record.as_json(), ensure_ascii=False)  # type: ignore[attr-defined]
            if as_json
            else format_action(record, topic_world)  # type: ignore[arg-type]
        )
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
