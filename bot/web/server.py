"""The console's FastAPI app and the uvicorn server `qunbot run` / `qunbot web` start.

`WebConsole` is what every page and API call reaches the bot through: the running `BotApp`
(its services, the loaded plugins' states, the config reload) and the web's own store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from bot.stats.localtime import local_day
from bot.stats.overview import GroupLine, History, history, overview
from bot.web.auth import LoginLimiter, LoginRequired, csrf_token, session_user
from bot.web.settings import SECRET_ENV, WebSettings
from bot.web.store import WebStore

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.core.context import PluginHost, Services
    from bot.core.dispatcher import Runtime
    from bot.core.platform import GroupInfo

log = logging.getLogger("qunbot.web")
HERE = Path(__file__).parent
LIVE_TTL = 300.0
LIVE_WAIT = 5.0


class WebConsole:
    def __init__(self, bot: BotApp, settings: WebSettings) -> None:
        self.bot = bot
        self.settings = settings
        assert bot.db is not None, "start the bot first"
        self.store = WebStore(bot.db)
        self.limiter = LoginLimiter(settings.login_attempts_per_minute)
        self._past: History | None = None
        self._past_lock = asyncio.Lock()
        self._live: dict[str, GroupInfo] | None = None
        self._live_at = 0.0
        self._live_task: asyncio.Task[dict[str, GroupInfo]] | None = None

    @property
    def services(self) -> Services:
        assert self.bot.services is not None
        return self.bot.services

    def now(self) -> datetime:
        return self.services.clock.now()

    def excluded_members(self) -> tuple[str, ...]:
        """Accounts never counted as members: the bot itself and the other bots."""
        return (self.services.bot.id, *self.services.config.other_bots)

    async def past(self) -> History:
        """The overview's figures of complete days, computed once a day (the heavy part: two
        weeks of daily activity of every group)."""
        services = self.services
        assert services.db is not None
        today = local_day(self.now(), services.config.tz)
        if self._past is None or self._past.day != today:
            async with self._past_lock:
                if self._past is None or self._past.day != today:
                    self._past = await history(services.db, services.config.tz, self.now(), self.excluded_members())
        return self._past

    async def overview(self, groups: frozenset[str] | None) -> list[GroupLine]:
        services = self.services
        assert services.db is not None
        return await overview(
            services.db,
            services.config.tz,
            self.now(),
            sorted(groups) if groups is not None else None,
            self.excluded_members(),
            await self.past(),
        )

    async def live_groups(self) -> dict[str, GroupInfo]:
        """The platform's own group list (member counts, topics), kept LIVE_TTL seconds: on
        WeChat it is one call per group. Stale figures are served while a refresh runs; the
        first request waits at most LIVE_WAIT seconds for it, and an error gives {}."""
        fresh = time.monotonic() - self._live_at < LIVE_TTL
        if self._live is not None and fresh:
            return self._live
        if self._live_task is None or self._live_task.done():
            self._live_task = asyncio.create_task(self._fetch_live(), name="web-live-groups")
        if self._live is not None:
            return self._live
        try:
            return await asyncio.wait_for(asyncio.shield(self._live_task), LIVE_WAIT)
        except Exception:
            return {}

    async def _fetch_live(self) -> dict[str, GroupInfo]:
        try:
            live = {info.id: info for info in await self.services.platform.groups()}
        except Exception:
            log.warning("web: could not list the groups from the platform", exc_info=True)
            live = self._live or {}
        self._live, self._live_at = live, time.monotonic()
        return live

    @property
    def runtime(self) -> Runtime:
        """The running bot's plugins and command tables."""
        assert self.bot.dispatcher is not None, "start the bot first"
        return self.bot.dispatcher.runtime

    def host(self, name: str) -> PluginHost | None:
        """A loaded plugin (its state is the service its chat commands use), or None when off."""
        dispatcher = self.bot.dispatcher
        return dispatcher.runtime.hosts.get(name) if dispatcher is not None else None

    def state(self, name: str) -> Any:
        host = self.host(name)
        return host.state if host is not None else None

    def group_name(self, group_id: str, topic: str = "") -> str:
        return self.services.groups.display_name(group_id, topic)

    async def audit(self, user_id: str, action: str, target: str = "", group_id: str | None = None, **detail: Any):
        await self.store.audit(self.now(), user_id, action, target, group_id, detail or None)


def secret_key(settings: WebSettings, services: Services) -> str:
    """The cookie-signing key: configured, from the environment, or made once and kept in
    the data folder (so sessions survive a restart)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if services.data_file is None:
        return secrets.token_urlsafe(32)
    path = services.data_file("web-secret")
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key)
    return key


def create_app(bot: BotApp, settings: WebSettings | None = None) -> FastAPI:
    settings = settings or bot.config.web or WebSettings()
    console = WebConsole(bot, settings)
    app = FastAPI(
        title="qunbot API",
        description="qunbot 管理后台的 HTTP API。令牌在后台“API 令牌”页创建，放在 `Authorization: Bearer <令牌>`。",
        version="1",
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings, console.services),
        session_cookie="qunbot_session",
        max_age=int(settings.session_hours * 3600),
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["csrf_token"] = csrf_token
    templates.env.globals["current_user"] = session_user
    templates.env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.0f}%"
    templates.env.filters["local"] = lambda at, fmt="%Y-%m-%d %H:%M": (
        at.astimezone(console.services.config.tz).strftime(fmt) if at else ""
    )
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return Response(
                content=f'{{"detail": {_json(exc.detail)}}}',
                status_code=exc.status_code,
                media_type="application/json",
                headers=exc.headers,
            )
        if request.headers.get("hx-request"):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        return templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
        )

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # the login link never leaks onwards
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from bot.web import api, pages

    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> HTMLResponse:
        return HTMLResponse("ok")

    return app


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


async def serve(bot: BotApp, stop: asyncio.Event) -> None:
    """Serve until `stop` is set. Uvicorn's access log is off: the one-time links carry
    their token in the path, and tokens never go to a log."""
    import uvicorn

    settings = bot.config.web or WebSettings()
    app = create_app(bot, settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, access_log=False, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment]  # the bot owns the signals
    services = bot.services
    assert services is not None, "start the bot first"  # as `create_app` needs it
    webhooks = None
    if settings.webhooks:
        from bot.web.webhooks import WebhookSender

        webhooks = WebhookSender(settings.webhooks)
        webhooks.start()
        services.listeners.append(webhooks.publish)
    task = asyncio.create_task(server.serve(), name="web")
    warm = asyncio.create_task(app.state.console.past(), name="web-overview-warm")  # the first page is then fast
    log.info("web console on %s (listening on %s:%d)", settings.base_url, settings.host, settings.port)
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        warm.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
        if webhooks is not None:
            services.listeners.remove(webhooks.publish)
            await webhooks.aclose()
