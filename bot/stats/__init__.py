"""Activity statistics and retention (留存率): async report functions over the storage,
shared by the `qunbot stats` command line and the stats plugin.

Every report takes the database, the configured timezone, a `Scope` (one group, a group
set, all groups) and a `Period` (local calendar days, both ends included), reads the
membership stays and the daily activity rollup (never the raw log, except the hour×weekday
heatmap and keyword-based action rates, which need hours and text), and returns a dataclass
with `as_json()` and `table()`.
"""

from bot.stats.actions import ActionReport, CheckinReport, action_rate, checkin_rate
from bot.stats.cohorts import (
    COHORT_BY,
    DEFAULT_DAYS,
    DEFAULT_WINDOW,
    Cell,
    CohortRow,
    RetentionReport,
    retention,
    retention_from_events,
)
from bot.stats.hours import Heatmap, heatmap
from bot.stats.people import MembersReport, members, names
from bot.stats.scope import Period, ProgressFn, Scope
from bot.stats.summary import (
    Summary,
    SummaryOptions,
    digest_period,
    summarize,
    summary_heading,
    summary_report,
    summary_text,
)
from bot.stats.table import Table
from bot.stats.trends import ActivityReport, GrowthReport, activity, growth

__all__ = [
    "COHORT_BY",
    "DEFAULT_DAYS",
    "DEFAULT_WINDOW",
    "ActionReport",
    "ActivityReport",
    "Cell",
    "CheckinReport",
    "CohortRow",
    "GrowthReport",
    "Heatmap",
    "MembersReport",
    "Period",
    "ProgressFn",
    "RetentionReport",
    "Scope",
    "Summary",
    "SummaryOptions",
    "Table",
    "action_rate",
    "activity",
    "checkin_rate",
    "digest_period",
    "growth",
    "heatmap",
    "members",
    "names",
    "retention",
    "retention_from_events",
    "summarize",
    "summary_heading",
    "summary_report",
    "summary_text",
]
