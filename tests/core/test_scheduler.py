"""The core scheduler on a virtual clock: APScheduler triggers, grace, pause, deferred jobs."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import VirtualClock
from bot.core.scheduler import Scheduler, cron_trigger, date_trigger, interval_trigger

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 7, 0, tzinfo=SH)


async def run_until(s: Scheduler, clock: VirtualClock, end: datetime) -> None:
    while (due := s.next_due()) is not None and due <= end:
        clock.advance_to(due)
        await s.run_due()
    clock.advance_to(end)


async def test_cron_fires_at_local_times_over_days() -> None:
    clock = VirtualClock(T0)
    s = Scheduler(clock)
    fired: list[datetime] = []

    async def job(at: datetime) -> None:
        fired.append(at)

    s.add("broadcast:morning", cron_trigger("30 8 * * *", SH), job)
    await run_until(s, clock, T0 + timedelta(days=3))
    assert [f.astimezone(SH).strftime("%m-%d %H:%M") for f in fired] == ["12-01 08:30", "12-02 08:30", "12-03 08:30"]


async def test_missed_beyond_grace_goes_to_on_missed() -> None:
    clock = VirtualClock(T0)
    s = Scheduler(clock)
    ran: list[str] = []

    async def job(at: datetime) -> None:
        ran.append(f"ran {at:%H:%M}")

    async def missed(at: datetime) -> None:
        ran.append(f"missed {at:%H:%M}")

    # The bot comes back at 07:00 having been down since 05:00: 05:30 is past grace, 06:55 within.
    s.add(
        "j",
        cron_trigger("30 5 * * *", SH),
        job,
        since=T0 - timedelta(hours=2),
        grace=timedelta(minutes=10),
        on_missed=missed,
    )
    s.add("k", cron_trigger("55 6 * * *", SH), job, since=T0 - timedelta(hours=2), grace=timedelta(minutes=10))
    await s.run_due()
    assert ran == ["missed 05:30", "ran 06:55"]


async def test_pause_resume_remove_and_one_off_jobs() -> None:
    clock = VirtualClock(T0)
    s = Scheduler(clock)
    ran: list[str] = []

    async def tick(at: datetime) -> None:
        ran.append(f"{at:%H:%M}")

    s.add("t", interval_trigger(SH, start=T0, minutes=10), tick)
    await run_until(s, clock, T0 + timedelta(minutes=15))
    assert s.pause("t")
    await run_until(s, clock, T0 + timedelta(minutes=45))
    assert s.pause("t", False)  # resuming does not replay what fell due while paused
    await run_until(s, clock, T0 + timedelta(minutes=55))
    assert ran == ["07:00", "07:10", "07:50"]
    s.add("once", date_trigger(T0 + timedelta(hours=1), SH), tick)
    await run_until(s, clock, T0 + timedelta(hours=2))
    assert s.get("once") is None  # a finished one-off is dropped
    assert s.remove("t") and s.next_due() is None


async def test_deferred_jobs_run_at_shutdown_and_failures_are_isolated() -> None:
    clock = VirtualClock(T0)
    s = Scheduler(clock)
    ran: list[str] = []

    async def boom(at: datetime) -> None:
        raise RuntimeError("plugin bug")

    async def flush(at: datetime) -> None:
        ran.append("flushed")

    s.add("bad", date_trigger(T0, SH), boom)
    await s.run_due()  # logged, not raised
    s.add("welcome:flush:g1", date_trigger(T0 + timedelta(seconds=30), SH), flush, deferred=True)
    assert s.next_deferred() == T0 + timedelta(seconds=30)
    await s.flush_deferred()
    assert ran == ["flushed"] and s.next_deferred() is None
