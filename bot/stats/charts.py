"""PNG charts of the reports, drawn with matplotlib (Agg, no display, no pyplot state).

Chinese text needs a CJK font. One is looked up among the fonts matplotlib knows (Noto Sans
CJK, Source Han Sans, WenQuanYi, ...); without one, charts are drawn with English labels and
group ids instead of names, and a warning says how to install one (`apt install
fonts-noto-cjk`). Drawing never fails for want of a font.

These functions block (rendering, file writes): call them outside the event loop, or
through `asyncio.to_thread`.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.stats.cohorts import RetentionReport
from bot.stats.hours import WEEKDAYS, WEEKDAYS_EN, Heatmap
from bot.stats.scope import Scope
from bot.stats.trends import ActivityReport, GrowthReport

log = logging.getLogger("qunbot.stats.charts")

# Preferred families, Simplified Chinese first.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Sarasa Gothic SC",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "SimHei",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Source Han Sans",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Noto Serif CJK SC",
)
INSTALL_HINT = "install a CJK font for Chinese labels, e.g. `apt install fonts-noto-cjk` (Debian/Ubuntu)"
_FILE_HINTS = ("cjk", "wqy", "sourcehan", "simhei", "msyh", "pingfang", "droidsansfallback", "sarasa")


def _pick(names: set[str]) -> str | None:
    for family in CJK_FAMILIES:
        if family in names:
            return family
    return next((n for n in sorted(names) if "CJK" in n or "Han Sans" in n or "WenQuanYi" in n), None)


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed CJK font, or None."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _pick({f.name for f in manager.ttflist})
    if found:
        return found
    # matplotlib's font cache predates fonts installed after it was built: look at the
    # system's font files once and register the CJK-looking ones.
    try:
        files = font_manager.findSystemFonts()
    except Exception:  # no fc-list, unreadable directories: treat as "no font"
        files = []
    for path in files:
        if any(h in Path(path).name.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS):
            try:
                manager.addfont(path)
            except Exception:
                log.debug("cannot load font %s", path, exc_info=True)
    return _pick({f.name for f in manager.ttflist})


@functools.cache
def _warn_no_font() -> None:
    log.warning("no CJK font found: charts use English labels; %s", INSTALL_HINT)


class _Text:
    """Chinese labels when a CJK font is there, English otherwise."""

    def __init__(self, font: str | None) -> None:
        self.cjk = font is not None

    def __call__(self, zh: str, en: str) -> str:
        return zh if self.cjk else en

    def scope(self, scope: Scope) -> str:
        if self.cjk or scope.label.isascii():
            return scope.label
        if scope.groups is None:
            return "all groups"
        return ", ".join(scope.groups[:4]) + (" ..." if len(scope.groups) > 4 else "")


@contextmanager
def _figure(width: float = 11, height: float = 6, rows: int = 1, cols: int = 1, **kw: Any) -> Iterator[Any]:
    import matplotlib
    from matplotlib.figure import Figure

    font = cjk_font()
    if font is None:
        _warn_no_font()
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    with (
        matplotlib.rc_context(
            {
                "font.family": "sans-serif",
                "font.sans-serif": families,
                "axes.unicode_minus": False,
                "axes.titleweight": "bold",
            }
        ),
        warnings.catch_warnings(),
    ):
        # Missing glyphs are drawn as boxes rather than raising; say so once, above.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(rows, cols, **kw)
        yield fig, axes, _Text(font)


def _save(fig: Any, path: Path | str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, facecolor="white")
    return path


def _date_axis(ax: Any, days: list[date], counts: bool = True) -> None:
    from matplotlib import dates as mdates
    from matplotlib.ticker import MaxNLocator

    locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    if days:
        # Half a day of margin: the first and last day's bars are drawn whole.
        first, last = (datetime.combine(d, datetime.min.time()) for d in (days[0], days[-1]))
        ax.set_xlim(first - timedelta(hours=14), last + timedelta(hours=14))
    if counts:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def growth_chart(report: GrowthReport, path: Path | str) -> Path:
    days = [d.day for d in report.days]
    with _figure(11, 7, 2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]}) as (fig, (top, bottom), t):
        top.plot(
            days,
            [d.members for d in report.days],
            color="#1f77b4",
            linewidth=2.2,
            marker="o",
            markersize=3 if len(days) <= 62 else 0,
            label=t("群成员数（日终）", "members (end of day)"),
        )
        top.set_ylabel(t("成员数", "members"))
        top.set_title(
            t(
                f"成员增长 — {t.scope(report.scope)}（{report.period.start} 至 {report.period.end}）",
                f"Member growth — {t.scope(report.scope)} ({report.period.start} to {report.period.end})",
            )
        )
        top.legend(loc="upper left")
        _date_axis(top, days)
        joins = [d.joins for d in report.days]
        left = [-d.left for d in report.days]
        removed = [-d.removed for d in report.days]
        bottom.bar(days, joins, color="#2ca02c", label=t("入群", "joined"))
        bottom.bar(days, left, color="#ff9f40", label=t("退群", "left"))
        bottom.bar(days, removed, bottom=left, color="#d62728", label=t("被移出", "removed"))
        bottom.plot(
            days,
            [d.net for d in report.days],
            color="black",
            linewidth=1.2,
            marker=".",
            label=t("净增长", "net growth"),
        )
        bottom.axhline(0, color="grey", linewidth=0.8)
        bottom.set_ylabel(t("人数 / 天", "people per day"))
        bottom.set_xlabel(t("日期", "date"))
        bottom.legend(loc="best", ncols=4, fontsize="small", framealpha=0.9)
        _date_axis(bottom, days)
        # Members found already there (before the bot) are not joins: said beside the net, so
        # that start + net + found = end reads off the chart.
        found_zh = f"；首次记录原有成员 {report.found} 人（机器人加入前已在群）" if report.found else ""
        found_en = f"; {report.found} found already there (before the bot)" if report.found else ""
        summary = t(
            f"期初 {report.members_before} 人 → 期末 {report.members_after} 人；入群 {report.joins}，"
            f"退群 {report.left}，移出 {report.removed}，净增 {report.net:+d}{found_zh}",
            f"{report.members_before} → {report.members_after} members; joined {report.joins}, left {report.left}, "
            f"removed {report.removed}, net {report.net:+d}{found_en}",
        )
        fig.supxlabel(summary, fontsize="small", color="#444444")
        return _save(fig, path)


def activity_chart(report: ActivityReport, path: Path | str) -> Path:
    days = [d.day for d in report.days]
    with _figure(11, 7, 2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]}) as (fig, (top, bottom), t):
        top.bar(days, [d.messages for d in report.days], color="#c6dbef", label=t("消息数", "messages"))
        top.set_ylabel(t("消息数 / 天", "messages per day"))
        right = top.twinx()
        right.plot(
            days,
            [d.active for d in report.days],
            color="#d62728",
            linewidth=2.2,
            marker="o",
            markersize=3 if len(days) <= 62 else 0,
            label=t("日活跃成员 (DAU)", "daily active members (DAU)"),
        )
        right.set_ylabel(t("活跃成员数", "active members"))
        right.set_ylim(bottom=0)
        handles = top.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        top.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
        top.set_title(
            t(
                f"活跃度 — {t.scope(report.scope)}（{report.period.start} 至 {report.period.end}）",
                f"Activity — {t.scope(report.scope)} ({report.period.start} to {report.period.end})",
            )
        )
        _date_axis(top, days)
        ratios = [(d.active_ratio or 0) * 100 for d in report.days]
        bottom.plot(
            days, ratios, color="#9467bd", linewidth=2, label=t("活跃率 (DAU / 成员)", "active ratio (DAU / members)")
        )
        bottom.fill_between(days, ratios, color="#9467bd", alpha=0.15)
        bottom.set_ylabel(t("活跃率 %", "active ratio %"))
        bottom.set_ylim(bottom=0)
        bottom.set_xlabel(t("日期", "date"))
        bottom.legend(loc="best", framealpha=0.9)
        _date_axis(bottom, days, counts=False)
        fig.supxlabel(
            t(
                f"日均活跃 {report.avg_dau:.1f} 人，日均消息 {report.avg_messages:.0f} 条；"
                f"近7天活跃 {report.wau} 人，近30天活跃 {report.mau} 人",
                f"average DAU {report.avg_dau:.1f}, {report.avg_messages:.0f} messages/day; "
                f"WAU {report.wau}, MAU {report.mau}",
            ),
            fontsize="small",
            color="#444444",
        )
        return _save(fig, path)


def retention_chart(report: RetentionReport, path: Path | str, max_cohorts: int = 8) -> Path:
    xs = list(range(len(report.days)))
    with _figure(12, 6, 1, 2, sharey=True) as (fig, (left, right), t):
        ticks = [t(f"第{n}天", f"day {n}") for n in report.days]
        # The biggest cohorts that have at least one measured value, in key order.
        measured = [r for r in report.rows if any(c.measured for c in r.in_group.values())]
        shown = sorted(sorted(measured, key=lambda r: -r.size)[:max_cohorts], key=lambda r: r.key)
        cmap = _cmap(len(shown))
        for ax, attr, title in (
            (left, "in_group", t("仍在群内", "still in the group")),
            (
                right,
                "active",
                t(
                    f"仍活跃（第N天起{report.window}天内发过言）",
                    f"still active (posted within {report.window} days from day N)",
                ),
            ),
        ):
            for i, row in enumerate(shown):
                ys = [_share(getattr(row, attr).get(n)) for n in report.days]
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    linewidth=1.2,
                    alpha=0.75,
                    color=cmap(i),
                    label=f"{report.labels.get(row.key, row.key)} (n={row.size})",
                )
            ys = [_share(getattr(report.total, attr).get(n)) for n in report.days]
            ax.plot(
                xs,
                ys,
                marker="o",
                linewidth=3,
                color="black",
                label=t(f"全部 (n={report.total.size})", f"all (n={report.total.size})"),
            )
            for x, y in zip(xs, ys, strict=True):
                if y is not None:
                    ax.annotate(
                        f"{y:.0f}%", (x, y), textcoords="offset points", xytext=(0, 8), ha="center", fontweight="bold"
                    )
            ax.set_xticks(xs, ticks)
            ax.set_xlim(-0.4, len(xs) - 0.6)
            ax.set_ylim(0, 108)
            ax.set_title(title)
            ax.set_xlabel(t("入群后天数", "days after joining"))
            ax.grid(True, alpha=0.3)
        left.set_ylabel(t("占该批入群成员的比例 %", "share of the cohort %"))
        by = {
            "day": t("按入群日", "by join day"),
            "week": t("按入群周", "by join week"),
            "source": t("按来源", "by source"),
            "inviter": t("按邀请人", "by inviter"),
        }[report.by]
        fig.suptitle(
            t(
                f"留存曲线（{by}）— {t.scope(report.scope)}，{report.period.start} 至 {report.period.end} 入群",
                f"Retention ({by}) — {t.scope(report.scope)}, joined {report.period.start} to {report.period.end}",
            ),
            fontweight="bold",
        )
        handles, labels = right.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside right center", fontsize="small", title=t("入群批次", "cohort"))
        fig.supxlabel(
            t(
                "只统计机器人看到的入群；机器人加入前已在群的成员（入群时间未知）不计入任何批次",
                "joins the bot saw only: members in a group before the bot (join time unknown) are in no cohort",
            ),
            fontsize="small",
            color="#444444",
        )
        return _save(fig, path)


def heatmap_chart(report: Heatmap, path: Path | str) -> Path:
    with _figure(13, 4.8) as (fig, ax, t):
        image = ax.imshow(report.counts, aspect="auto", cmap="YlOrRd", interpolation="nearest")
        ax.set_yticks(range(7), [f"周{w}" for w in WEEKDAYS] if t.cjk else list(WEEKDAYS_EN))
        ax.set_xticks(range(24), [f"{h}" for h in range(24)])
        ax.set_xlabel(t("小时（本地时间）", "hour (local time)"))
        ax.set_ylabel(t("星期", "weekday"))
        peak = max(max(row) for row in report.counts) or 1
        for w in range(7):
            for h in range(24):
                n = report.counts[w][h]
                if n:
                    ax.text(
                        h,
                        w,
                        _short(n),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if n > peak * 0.6 else "#333333",
                    )
        bar = fig.colorbar(image, ax=ax, fraction=0.03)
        bar.set_label(t("消息数", "messages"))
        ax.set_title(
            t(
                f"发言时段热力图 — {t.scope(report.scope)}（{report.period.start} 至 {report.period.end}，"
                f"共 {report.total} 条）",
                f"Messages by hour and weekday — {t.scope(report.scope)} ({report.period.start} to "
                f"{report.period.end}, {report.total} messages)",
            )
        )
        return _save(fig, path)


def _share(cell: Any) -> float | None:
    if cell is None or not cell.measured:
        return None
    return 100.0 * cell.count / cell.measured


def _short(n: int) -> str:
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1_000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _cmap(n: int) -> Any:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return lambda i: cmap(0.1 + 0.75 * (i / max(n - 1, 1)))
