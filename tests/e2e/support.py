"""Processes for the end-to-end tests: the offline puppet-service gateway (Node, in
tests/wechaty_gateway) and a real `qunbot run` process, both on free loopback ports, both
stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_DIR = ROOT / "tests" / "wechaty_gateway"
TOKEN_ENV = "WECHATY_PUPPET_SERVICE_TOKEN"
ENDPOINT_ENV = "WECHATY_PUPPET_SERVICE_ENDPOINT"


def missing_requirement() -> str | None:
    """Why the end-to-end tests cannot run here, or None. `.ci/run` installs all three."""
    if shutil.which("node") is None:
        return "node is not installed (the puppet-service gateway needs Node 18+)"
    if not (GATEWAY_DIR / "node_modules" / "wechaty-puppet-service").is_dir():
        return "the gateway's Node packages are missing: run `npm ci` in tests/wechaty_gateway"
    try:
        from bot.adapters.wechaty.library import check_available

        check_available()
    except ImportError as exc:
        return f"the wechaty extra is not usable: {exc} (pip install -e '.[wechaty]')"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(every)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 10.0) -> int | None:
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc is not None else None
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(5)


class Gateway:
    """The Node gateway: gRPC puppet service + HTTP control API (see its README)."""

    def __init__(
        self, workdir: Path, token: str, *, world: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.token = token
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.world_file: Path | None = None
        if world is not None:
            self.world_file = workdir / "world.json"
            self.world_file.write_text(json.dumps(world, ensure_ascii=False), encoding="utf-8")
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=40.0)
        self.starts = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    def start(self) -> Gateway:
        env = {
            **os.environ,
            "GRPC_PORT": str(self.grpc_port),
            "HTTP_PORT": str(self.http_port),
            "TOKEN": self.token,
            **self.extra_env,
        }
        if self.world_file is not None:
            env["WORLD_FILE"] = str(self.world_file)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["node", "gateway.mjs"], cwd=GATEWAY_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.starts += 1
        wait_until(self._ready, 60, "the gateway to start")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{self.log_path.read_text(errors='replace')[-3000:]}")
        try:
            return self.http.get("/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye on the gRPC stream."""
        _stop(self.proc, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the TCP connection stays open but nothing answers (a half-dead link)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
        self.stop()
        self.http.close()

    # --- control API ---------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {})
        if response.status_code >= 400:
            raise AssertionError(f"POST {path} {body}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self.get("/health")  # type: ignore[no-any-return]

    def seq(self) -> int:
        """The latest log sequence number: pass it as `since` to see only what follows."""
        entries = self.get("/log")
        return max((e["seq"] for e in entries), default=0)

    def say(self, room: str, sender: str, text: str, **extra: Any) -> str:
        return str(self.post(f"/rooms/{room}/messages", {"from": sender, "text": text, **extra})["messageId"])

    def private(self, contact: str, text: str, **extra: Any) -> str:
        return str(self.post(f"/contacts/{contact}/messages", {"text": text, **extra})["messageId"])

    def join(self, room: str, contacts: list[str], inviter: str) -> None:
        self.post(f"/rooms/{room}/join", {"contactIds": contacts, "inviter": inviter})

    def room(self, room: str) -> dict[str, Any]:
        return self.get(f"/rooms/{room}")  # type: ignore[no-any-return]

    def sent(self, since: int, **filters: Any) -> list[dict[str, Any]]:
        return self.get("/sent", since=since, **filters)  # type: ignore[no-any-return]

    def actions(self, since: int, **filters: Any) -> list[dict[str, Any]]:
        return self.get("/actions", since=since, **filters)  # type: ignore[no-any-return]

    def wait_sent(
        self,
        since: int,
        *,
        count: int = 1,
        seconds: float = 15.0,
        match: Callable[[dict[str, Any]], bool] = lambda e: True,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """Block until at least `count` messages sent after `since` match (long-polling the gateway)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            wait = {"wait": int(left * 1000)} if left > 0 else {}
            entries = self.get("/sent", since=since, **wait, **filters)
            found = [e for e in entries if match(e)]
            if len(found) >= count:
                return found
            if left <= 0:
                raise AssertionError(f"expected {count} sent message(s) matching {filters}; got {entries}")
            if entries:  # the long poll returns at once while entries exist: wait for more
                time.sleep(0.05)

    def wait_action(self, since: int, action: str, seconds: float = 15.0, **filters: Any) -> dict[str, Any]:
        entries = self.get("/actions", since=since, action=action, wait=int(seconds * 1000), **filters)
        assert entries, f"no {action} action after seq {since}"
        return entries[0]  # type: ignore[no-any-return]


class Bot:
    """A real `qunbot run --config …` process (python -m bot), output in a log file."""

    def __init__(self, workdir: Path, config: Path, env: dict[str, str], name: str = "bot") -> None:
        self.workdir = workdir
        self.config = config
        self.env = env
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def start(self, *, ready: bool = True) -> Bot:
        env = {**os.environ, "QUNBOT_LOG": "INFO", "PYTHONUNBUFFERED": "1", **self.env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.runs += 1
        if ready:
            self.wait_ready()
        return self

    def count(self, text: str) -> int:
        return self.log().count(text)

    def wait_log(self, text: str, *, times: int = 1, seconds: float = 30.0) -> None:
        def seen() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"qunbot exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            return self.count(text) >= times

        wait_until(seen, seconds, f"{text!r} ×{times} in the bot's log", every=0.05)

    def wait_ready(self, seconds: float = 60.0) -> None:
        """Logged in and the app started (events that arrive before then wait, none is lost)."""
        self.wait_log("qunbot started", times=self.runs, seconds=seconds)
        self.wait_log("wechaty: logged in as", times=self.runs, seconds=seconds)

    def stop(self) -> int | None:
        return _stop(self.proc, signal.SIGTERM, grace=20)

    def kill(self) -> int | None:
        """A crash: SIGKILL, nothing flushed or released."""
        return _stop(self.proc, signal.SIGKILL)
