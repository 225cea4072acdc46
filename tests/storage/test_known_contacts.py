"""The recorder's memory of which contacts it wrote lately (one packed int each)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.storage.recorder.contacts import KnownContacts

T0 = datetime(2026, 12, 6, 8, 0, 30, tzinfo=UTC)


def same(value: datetime) -> datetime:
    return value


def test_a_contact_written_lately_under_its_name_needs_no_row() -> None:
    known = KnownContacts()
    assert not known.fresh("alice", "Alice", T0)
    known.wrote([["alice", "Alice", T0, T0]], same)
    assert known.fresh("alice", "Alice", T0)
    assert known.fresh("alice", "", T0 + timedelta(minutes=59))  # no name given: the one known
    assert not known.fresh("alice", "Alice", T0 + timedelta(minutes=61))  # refreshed hourly
    assert not known.fresh("alice", "爱丽丝", T0)  # renamed: written again
    assert not known.fresh("bob", "Bob", T0)


def test_a_late_older_row_keeps_the_newer_time_and_an_empty_name_keeps_the_old_one() -> None:
    known = KnownContacts()
    known.wrote([["alice", "Alice", T0, T0 + timedelta(minutes=50)]], same)
    known.wrote([["alice", "", T0, T0]], same)  # an older event, without a name
    assert known.fresh("alice", "Alice", T0 + timedelta(minutes=100))
    assert not known.fresh("alice", "Alice", T0 + timedelta(minutes=111))
