"""Clean shutdown of `qunbot run` on the console adapter: SIGTERM/SIGINT mid-stream stops
reading, lets the events read so far through, writes the event log, the activity points and
the rest, and exits 0; a final flush that fails exits non-zero."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.runner import run_bot
from bot.storage.recorder import Recorder
from plugins.checkin.activity import ActivityBuffer
from tests.harness import write_config

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
bot: {id: wxid_bot, name: 小助手}
storage: {url: "sqlite+aiosqlite:///%(db)s"}
groups: [{id: g1, name: 一群}, {id: g2, name: 二群}]
plugins:
  keyword_reply:
    rules:
      - {keywords: [到此为止], match: exact, replies: ["收到标记"]}
  checkin:
    activity: {enabled: true, points: 1, daily_cap: 1000, min_chars: 1, min_interval_seconds: 0, flush_seconds: 10}
"""


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    finally:
        conn.close()


def _chat_line(i: int) -> str:
    # 400 members over two groups, a few messages each: no anti-spam rule is in play.
    return f"g{i % 2 + 1} m{i % 400}: 第{i}条消息\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_stream_flushes_everything_read_and_exits_0(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "bot.db"
    cfg = write_config(tmp_path, CONFIG % {"db": db})
    env = {**os.environ, "QUNBOT_LOG": "INFO", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    first = 3000
    proc.stdin.write(("".join(_chat_line(i) for i in range(first)) + "g1 alice: 到此为止\n").encode())
    proc.stdin.flush()
    # Once the marker is answered, every line before it has been handled. Input keeps coming
    # (the pipe stays open, a writer is still writing) when the signal arrives.
    deadline = time.monotonic() + 60
    while b"\xe6\x94\xb6\xe5\x88\xb0\xe6\xa0\x87\xe8\xae\xb0" not in proc.stdout.readline():  # 收到标记
        assert time.monotonic() < deadline and proc.poll() is None, "the bot never answered the marker"

    def keep_writing() -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            for i in range(first, first + 200_000):
                proc.stdin.write(_chat_line(i).encode())  # type: ignore[union-attr]

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    time.sleep(0.3)
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.decode("utf-8", "replace")
    assert proc.returncode == 0, log[-3000:]
    read = re.search(r"console: stopping after (\d+) lines read", log)
    assert read is not None, log[-3000:]
    lines = int(read.group(1))
    assert first + 1 <= lines < first + 200_001  # stopped mid-stream, not at the end of input
    # Every line read is in the event log (each is a chat message), and its activity point
    # is in the ledger, although the points' own flush was an hour away.
    assert _count(db, "SELECT COUNT(*) FROM event_log WHERE type = 'message'") == lines
    assert _count(db, "SELECT SUM(delta) FROM points_ledger WHERE reason = 'activity'") == lines
    assert "Traceback" not in log


async def test_a_failed_final_flush_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = write_config(tmp_path, CONFIG % {"db": tmp_path / "bot.db"})

    async def disk_full(self: Recorder) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Recorder, "flush", disk_full)
    assert await run_bot(cfg, source=io.StringIO("g1 alice: 你好\n")) == 1
    assert "shutdown: could not write everything: recorder failed" in caplog.text


async def test_a_failed_points_flush_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = write_config(tmp_path, CONFIG % {"db": tmp_path / "bot.db"})

    async def unavailable(self: ActivityBuffer, group_id: str | None = None, member_id: str | None = None) -> int:
        raise ConnectionError("database went away")

    monkeypatch.setattr(ActivityBuffer, "flush", unavailable)
    assert await run_bot(cfg, source=io.StringIO("g1 alice: 你好\n")) == 1
    assert "plugin checkin failed" in caplog.text


async def test_a_clean_end_of_input_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    cfg = write_config(tmp_path, CONFIG % {"db": db})
    assert await run_bot(cfg, source=io.StringIO("".join(_chat_line(i) for i in range(50)))) == 0
    assert _count(db, "SELECT COUNT(*) FROM event_log WHERE type = 'message'") == 50
