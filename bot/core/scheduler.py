"""The one scheduler the core owns.

APScheduler 3.x triggers compute every fire time (cron, interval, date; timezone-aware);
this class runs the due jobs against the injected clock. In real time `run()` sleeps until
the next fire time; in the simulator the driver calls `next_due()` / `run_due()` itself, so
a month of jobs passes in virtual time. Job ids are stable and namespaced
(``broadcast:morning``) and rebuilt from YAML on every start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.clock import Clock

log = logging.getLogger("qunbot.scheduler")

# Called with the occurrence's scheduled time (not the time it actually ran), so that a
# late run still knows which occurrence it is: that is what delivery claims key on.
JobFunc = Callable[[datetime], Awaitable[None]]


@dataclass
class Job:
    id: str
    trigger: BaseTrigger
    func: JobFunc
    next_fire: datetime | None
    # A run later than this after its fire time is skipped (and reported through `on_missed`).
    grace: timedelta = timedelta(minutes=10)
    paused: bool = False
    # Deferred work (a merged welcome, say) that must not be lost when the bot stops:
    # it runs at shutdown, and the simulator runs it before a scenario ends.
    deferred: bool = False
    on_missed: Callable[[datetime], Awaitable[None]] | None = None


def cron_trigger(expr: str, tz: tzinfo) -> CronTrigger:
    """A 5-field crontab expression (minute hour day month weekday) in `tz`.

    Weekday numbers follow crontab (0 or 7 = Sunday, 1 = Monday): APScheduler 3.x's
    `from_crontab` counts from Monday = 0, so "0 8 * * 1-5" would otherwise fire Tuesday
    to Saturday. Numbers are translated to day names, which both agree on."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}: {expr!r}")
    fields[4] = crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=tz)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: index = number


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field with numbers (0/7 = Sunday) rewritten as day names; fields
    without numbers are returned unchanged. "1-5" → "mon,tue,wed,thu,fri"."""
    if not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = _weekday_number(step_text, field, step=True) if step_text else 1
        if base in ("*", "?"):
            first, last = 0, 6
        elif "-" in base:
            lo, _, hi = base.partition("-")
            first, last = _weekday_number(lo, field), _weekday_number(hi, field)
            if last == 0 and first > 0:  # "5-0" or "5-7": through Sunday
                last = 7
        else:
            first = _weekday_number(base, field)
            last = 6 if step_text else first
        if first > last:
            raise ValueError(f"weekday range {part!r} runs backwards in {field!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    # Monday first, the order APScheduler names them in.
    return ",".join(_DAY_NAMES[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def _weekday_number(token: str, field: str, *, step: bool = False) -> int:
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token)
    if token.isdigit() and (1 if step else 0) <= int(token) <= 7:
        return int(token)
    raise ValueError(f"bad weekday {token!r} in {field!r} (use 0-7, 0 and 7 = Sunday, or sun..sat)")


def interval_trigger(tz: tzinfo, start: datetime | None = None, **every: float) -> IntervalTrigger:
    return IntervalTrigger(timezone=tz, start_date=start, **every)


def date_trigger(when: datetime, tz: tzinfo) -> DateTrigger:
    return DateTrigger(run_date=when, timezone=tz)


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._changed = asyncio.Event()

    # --- jobs -----------------------------------------------------------------------
    def add(
        self,
        job_id: str,
        trigger: BaseTrigger,
        func: JobFunc,
        *,
        grace: timedelta = timedelta(minutes=10),
        since: datetime | None = None,
        on_missed: Callable[[datetime], Awaitable[None]] | None = None,
        deferred: bool = False,
    ) -> Job:
        """Add or replace a job. With `since`, occurrences between `since` and now are
        considered (a restart catching up on what it missed, within `grace`)."""
        now = self.clock.now()
        first = trigger.get_next_fire_time(None, since or now)
        job = Job(job_id, trigger, func, first, grace, on_missed=on_missed, deferred=deferred)
        self._jobs[job_id] = job
        self._changed.set()
        return job

    def remove(self, job_id: str) -> bool:
        found = self._jobs.pop(job_id, None) is not None
        self._changed.set()
        return found

    def remove_namespace(self, prefix: str) -> None:
        for job_id in [j for j in self._jobs if j.startswith(prefix)]:
            del self._jobs[job_id]
        self._changed.set()

    def pause(self, job_id: str, paused: bool = True) -> bool:
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.paused = paused
        if not paused and job.next_fire is not None and job.next_fire < self.clock.now():
            # Resuming does not replay what fell due while paused.
            job.next_fire = job.trigger.get_next_fire_time(None, self.clock.now())
        self._changed.set()
        return True

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self, prefix: str = "") -> list[Job]:
        return [j for j in self._jobs.values() if j.id.startswith(prefix)]

    # --- running --------------------------------------------------------------------
    def next_due(self) -> datetime | None:
        times = [j.next_fire for j in self._jobs.values() if j.next_fire is not None and not j.paused]
        return min(times) if times else None

    def next_deferred(self) -> datetime | None:
        times = [j.next_fire for j in self._jobs.values() if j.deferred and j.next_fire is not None]
        return min(times) if times else None

    async def flush_deferred(self) -> None:
        """Run deferred jobs now instead of at their time (shutdown)."""
        for job in [j for j in self._jobs.values() if j.deferred and j.next_fire is not None]:
            fire = job.next_fire
            assert fire is not None
            job.next_fire = job.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if job.next_fire is None:
                self._jobs.pop(job.id, None)
            await self._call(job, job.func, fire)

    async def run_due(self) -> int:
        """Run every occurrence due at the clock's current time, oldest first."""
        ran = 0
        while True:
            now = self.clock.now()
            due = [j for j in self._jobs.values() if not j.paused and j.next_fire is not None and j.next_fire <= now]
            if not due:
                return ran
            job = min(due, key=lambda j: (j.next_fire, j.id))
            fire = job.next_fire
            assert fire is not None
            job.next_fire = job.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if job.next_fire is None:
                # Finished (a one-off); dropped before running so the job may re-add its id.
                self._jobs.pop(job.id, None)
            if now - fire > job.grace:
                log.info("job %s missed its %s run (grace %s)", job.id, fire.isoformat(), job.grace)
                if job.on_missed is not None:
                    await self._call(job, job.on_missed, fire)
                continue
            await self._call(job, job.func, fire)
            ran += 1

    async def _call(self, job: Job, func: JobFunc, fire: datetime) -> None:
        try:
            await func(fire)
        except Exception:
            log.exception("scheduled job %s (%s) failed", job.id, fire.isoformat())

    async def run(self) -> None:
        """Real-time loop: sleep until the next fire time or until jobs change."""
        while True:
            self._changed.clear()
            due = self.next_due()
            if due is not None and due <= self.clock.now():
                await self.run_due()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(due) if due else asyncio.Event().wait())
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()
