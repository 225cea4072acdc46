"""`qunbot run` with `adapter: wechaty`: connect to the puppet service and run the bot."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.adapters.wechaty import library as wechaty_library
from bot.adapters.wechaty import redact
from bot.adapters.wechaty.connection import PuppetClient, PuppetConnection
from bot.adapters.wechaty.platform import WechatyPlatform
from bot.app import BotApp, LoadedConfig
from bot.config.errors import ConfigError
from bot.config.models import WechatySettings
from bot.core.clock import SystemClock
from bot.core.events import Member
from bot.runner import remove_signal_handlers, start_background, stop_background, stop_on_signals

log = logging.getLogger("qunbot.wechaty")


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    token: str
    source: str  # where they came from, for the start-up log line (never the token itself)
    token_from_env: bool = False


def resolve_credentials(settings: WechatySettings, environ: Mapping[str, str] | None = None) -> Credentials:
    """Endpoint and token: the config's values, else the environment's. SystemExit with what to
    set when one is missing (the message never contains the token)."""
    env = os.environ if environ is None else environ
    endpoint = settings.endpoint or env.get(wechaty_library.ENDPOINT_ENV, "").strip()
    token = settings.token.get_secret_value() if settings.token is not None else env.get(wechaty_library.TOKEN_ENV, "")
    token = token.strip()
    problems = []
    if not endpoint:
        problems.append(f"no endpoint: set wechaty.endpoint (host:port) or {wechaty_library.ENDPOINT_ENV}")
    elif settings.endpoint is None:
        # The environment's value gets the same check as the config's.
        try:
            WechatySettings(endpoint=endpoint)
        except ValueError:
            problems.append(f"{wechaty_library.ENDPOINT_ENV} must be host:port, e.g. 127.0.0.1:8788")
    if not token:
        problems.append(f"no token: set wechaty.token or {wechaty_library.TOKEN_ENV}")
    if problems:
        raise SystemExit("wechaty adapter: " + "; ".join(problems))
    source = ", ".join(
        [
            "endpoint from " + ("config" if settings.endpoint else wechaty_library.ENDPOINT_ENV),
            "token from " + ("config" if settings.token is not None else wechaty_library.TOKEN_ENV),
        ]
    )
    from_env = settings.token is None and env.get(wechaty_library.TOKEN_ENV, "") == token
    return Credentials(endpoint, token, source, from_env)


async def run_wechaty(loaded: LoadedConfig) -> int:
    creds = resolve_credentials(loaded.config.wechaty)
    redactor = redact.SecretRedactor([creds.token])
    try:
        return await _run(loaded, creds, redactor)
    except ConfigError:
        raise  # already FILE:LINE: key: problem lines, which never echo a secret
    except Exception as exc:
        # `qunbot run` prints a fatal error's message as is: make sure it cannot carry the token.
        raise RuntimeError(redactor.redact(f"{type(exc).__name__}: {exc}")) from exc


async def _run(loaded: LoadedConfig, creds: Credentials, redactor: redact.SecretRedactor) -> int:
    config = loaded.config
    settings = config.wechaty
    redact.install(redactor)  # before the library is imported: it logs the token on every connect
    library = wechaty_library.load(creds.endpoint)
    redact.install(redactor, library.logger_names, level=logging.getLevelName(settings.library_log_level))
    log.info("wechaty: puppet service %s (%s)", creds.endpoint, creds.source)

    # The client reads the endpoint (set by `load`) and an environment token itself; whatever
    # is also passed in its options makes it warn about "two endpoints/tokens" on every connect.
    token_option = None if creds.token_from_env else creds.token

    def new_client() -> PuppetClient:
        return library.puppet_class(library.options_class(token=token_option))  # type: ignore[no-any-return]

    clock = SystemClock(config.tz)
    connection = PuppetConnection(settings, creds.endpoint, new_client, redact=redactor.redact)
    platform = WechatyPlatform(
        connection,
        settings,
        clock,
        Member(config.bot.id, config.bot.name),
        redact=redactor.redact,
        url_link_payload=functools.partial(wechaty_library.url_link_payload, library),
    )
    # QUNBOT_DATABASE_URL, when set, is already the config's storage.url (bot.config.env).
    app = BotApp(loaded, platform, clock)
    stop = asyncio.Event()
    handled = stop_on_signals(stop)
    ok = False
    # Connect while the app starts; events that arrive first wait for `attach`.
    connecting = asyncio.create_task(connection.run(), name="wechaty-connection")
    try:
        await app.start()
        # Members from before the bot, read when the account is ready (and at every log-in).
        platform.on_ready = app.refresh_members
        platform.attach(app.handle)
        background = start_background(app)
        try:
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({stopping, connecting}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if connecting.done() and not stop.is_set():
                connecting.result()  # re-raise whatever ended the connection loop
                raise RuntimeError("the wechaty connection loop ended unexpectedly")
            log.info("wechaty: shutting down")
        finally:
            # No new events; queued sends still go out over the live connection, and
            # `app.stop` lets the event being handled finish before it flushes.
            connection.deliver = False
            await stop_background(background)
            ok = await app.stop()
    finally:
        await connection.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connecting, timeout=10)
        await platform.aclose()
        remove_signal_handlers(handled)
    return 0 if ok else 1
