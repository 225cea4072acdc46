"""A fresh PostgreSQL database per test, or a skip that says why (QUNBOT_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/postgres: the server to create the database on)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.storage.settings import normalize_url

PG_SERVER = os.environ.get("QUNBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    server = make_url(normalize_url(PG_SERVER))
    shown = server.render_as_string(hide_password=True)
    try:
        admin = await asyncpg.connect(
            host=server.host or "127.0.0.1", port=server.port or 5432, user=server.username,
            password=server.password, database=server.database or "postgres", timeout=3,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {shown} (set QUNBOT_TEST_PG): {type(exc).__name__}: {exc}")
    name = f"qunbot_test_bc_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        await admin.close()
        pytest.skip(f"cannot create a test database on {shown}: {exc}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
