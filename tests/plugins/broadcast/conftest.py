"""A fresh PostgreSQL database that several processes can share (the shared fixtures in
tests/conftest.py skip with the reason when no server is reachable at QUNBOT_TEST_PG)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    url = create_pg_database(pg_server)
    try:
        yield url
    finally:
        drop_pg_database(url)
