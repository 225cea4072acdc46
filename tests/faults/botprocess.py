"""A real `qunbot run` on the console adapter, fed through a pipe, for fault tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, storage_url: str, extra: str = "", replies: str = "each") -> Path:
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        timezone: Asia/Shanghai
        adapter: console
        bot: {{id: wxid_bot, name: 小助手}}
        bot_admins: [owner1]
        storage:
          url: "{storage_url}"
          flush_interval: 0.2
          retry_max_seconds: 1
          connect_retry_seconds: 20
          data_dir: data             # beside this file: each test its own
        console: {{groups: [g1]}}
        notify: {{private_to_group_admins: false, private_to_bot_admins: true}}
        plugins:
          checkin:
            replies: {{mode: {replies}}}  # most tests read each member's own reply
            activity: {{enabled: true, points: 1, daily_cap: 100000, min_chars: 1, min_interval_seconds: 0,
                        flush_seconds: 1}}
        """)
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    return path


class BotProcess:
    def __init__(self, config: Path, workdir: Path, name: str = "bot") -> None:
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QUNBOT_LOG": "WARNING"}
        env.pop("QUNBOT_DATABASE_URL", None)
        self._out = self.stdout_path.open("w", encoding="utf-8")
        self._err = self.stderr_path.open("w", encoding="utf-8")
        # Started elsewhere than the repository: nothing may depend on the working directory.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=self._err,
            text=True,
            encoding="utf-8",
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 120) -> int:
        """End of input: the bot drains, flushes and exits."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close_files()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self._close_files()

    def _close_files(self) -> None:
        self._out.close()
        self._err.close()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")
