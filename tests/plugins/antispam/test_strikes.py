"""The strike book: recent strikes in memory, what `Executor.decide` counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plugins.antispam.strikes import StrikeBook

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
H = timedelta(hours=1)


def test_counts_within_the_window_and_prunes_past_the_horizon() -> None:
    book = StrikeBook(24 * H)
    book.load([("g1", "m", NOW - 30 * H), ("g1", "m", NOW - 5 * H), ("g1", "m", NOW - 1 * H), ("g2", "m", NOW)])
    book.add("g1", "m", NOW - 2 * H)  # out of order: kept sorted
    assert book.count("g1", "m", NOW - 24 * H, NOW) == 3  # the 30-hour-old one is outside
    assert book.count("g1", "m", NOW - 3 * H, NOW) == 2  # a shorter window (another group's config)
    assert book.count("g2", "m", NOW - 24 * H, NOW) == 1  # per group
    assert book.count("g1", "other", NOW - 24 * H, NOW) == 0
    # Time passes: what falls behind the horizon is dropped, and an emptied member goes.
    assert book.count("g1", "m", NOW + 20 * H - 24 * H, NOW + 20 * H) == 2  # -5 h is gone
    assert book.count("g1", "m", NOW + 22.5 * H - 24 * H, NOW + 22.5 * H) == 1
    assert book.count("g1", "m", NOW + 30 * H - 24 * H, NOW + 30 * H) == 0
    assert len(book) == 1  # only g2 left


def test_a_window_longer_than_the_horizon_is_not_cut_short() -> None:
    book = StrikeBook(1 * H)
    book.add("g1", "m", NOW - 5 * H)
    assert book.count("g1", "m", NOW - 6 * H, NOW) == 1


def test_a_pardon_clears_one_group_or_everywhere() -> None:
    book = StrikeBook(24 * H)
    for gid in ("g1", "g1", "g2"):
        book.add(gid, "m", NOW)
    book.add("g1", "n", NOW)
    assert book.clear("m", "g1") == 2
    assert book.count("g1", "m", NOW - H, NOW) == 0 and book.count("g2", "m", NOW - H, NOW) == 1
    assert book.clear("m") == 1
    assert book.clear("m") == 0
    assert book.count("g1", "n", NOW - H, NOW) == 1  # others untouched


def test_stays_bounded() -> None:
    book = StrikeBook(24 * H, per_member=3, members=10)
    for i in range(5):
        book.add("g1", "m", NOW + i * timedelta(seconds=1))
    assert book.count("g1", "m", NOW - H, NOW + H) == 3  # the count saturates, the list does not grow
    for i in range(10):
        book.add("g1", f"old{i}", NOW - 30 * H)  # expired, but never looked at again
    book.add("g1", "new", NOW)  # full: the expired go first
    assert len(book) == 2
    for i in range(20):
        book.add("g1", f"live{i}", NOW + i * timedelta(seconds=1))
    assert len(book) <= 10
    assert book.count("g1", "live19", NOW - H, NOW + H) == 1  # the most recent are kept


def test_drop_before_forgets_a_span_to_reload() -> None:
    book = StrikeBook(24 * H)
    book.load([("g1", "m", NOW - 10 * H), ("g1", "m", NOW - H), ("g1", "n", NOW - 10 * H)])
    book.drop_before(NOW - 5 * H)
    assert book.count("g1", "m", NOW - 24 * H, NOW) == 1
    assert len(book) == 1
