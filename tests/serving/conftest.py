"""Databases for the serving tests: a SQLite file, and a fresh database on a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get("VICAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        with create_engine(POSTGRES_ADMIN_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vicas.db'}"
        return
    if not _postgres_available():
        if os.environ.get("VICAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (VICAS_REQUIRE_POSTGRES=1) but {POSTGRES_ADMIN_URL} is unreachable")
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL} (set VICAS_TEST_POSTGRES_URL)")
    name = f"vicas_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
