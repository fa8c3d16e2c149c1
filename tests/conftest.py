"""Test set-up: every database test runs on SQLite and on PostgreSQL.

A run creates its own PostgreSQL database (dropped at the end), so two runs never collide;
each test starts with empty tables.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The environment must be set before any backend module reads it.
_TMP = Path(tempfile.mkdtemp(prefix="relais-tests-"))
os.environ.setdefault("RELAIS_VAR_DIR", str(_TMP / "var"))
os.environ.setdefault("RELAIS_ARGON2_MEMORY_KIB", "1024")  # fast hashing; same algorithm
os.environ["PICCOLO_CONF"] = "backend.piccolo_conf"
os.environ.setdefault("RELAIS_DATABASE_URL", f"sqlite:///{_TMP / 'conf.sqlite3'}")

import asyncpg
import httpx
import pytest
from litestar import Litestar
from piccolo.engine.base import Engine
from piccolo.table import create_db_tables, sort_table_classes

from backend import database
from backend.app import create_app
from backend.settings import Settings, load_settings
from tests.http import http_client

PG_BASE = os.environ.get("RELAIS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
ENGINES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    """A temporary folder for this run."""
    return _TMP


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this run."""
    name = f"relais_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield f"{PG_BASE}/{name}"
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def engines(pg_url: str, tmp_root: Path) -> AsyncIterator[dict[str, tuple[str, Engine]]]:
    """Both engines with every table created, keyed by name: (url, engine)."""
    urls = {"sqlite": f"sqlite:///{tmp_root / 'test.sqlite3'}", "postgres": pg_url}
    built: dict[str, tuple[str, Engine]] = {}
    for name, url in urls.items():
        engine = database.engine_from_url(url)
        await database.start(engine)
        database.bind_engine(engine)
        await create_db_tables(*database.all_tables(), if_not_exists=True)
        await database.create_extra_indexes()
        built[name] = (url, engine)
    yield built
    for _, engine in built.values():
        await database.stop(engine)


async def _empty_tables(engine: Engine) -> None:
    tables = sort_table_classes(database.all_tables())
    if database.is_postgres(engine):
        names = ", ".join(f'"{t._meta.tablename}"' for t in tables)
        await engine.run_ddl(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        for table in reversed(tables):
            await engine.run_ddl(f'DELETE FROM "{table._meta.tablename}"')


@pytest.fixture(params=ENGINES)
async def db(
    request: pytest.FixtureRequest, engines: dict[str, tuple[str, Engine]]
) -> AsyncIterator[str]:
    """Bind the tables to one engine with empty tables; yields the engine's name."""
    name = request.param
    _, engine = engines[name]
    database.bind_engine(engine)
    await _empty_tables(engine)
    yield name


@pytest.fixture
def settings(db: str, engines: dict[str, tuple[str, Engine]]) -> Settings:
    """Settings of the app under test, on the current engine."""
    return load_settings().with_(
        database_url=engines[db][0], rate_auth_per_ip=(1000, 60), rate_auth_per_account=(1000, 60)
    )


@pytest.fixture
def app(settings: Settings, db: str, engines: dict[str, tuple[str, Engine]]) -> Litestar:
    """The application, sharing the test engine."""
    return create_app(settings, engine=engines[db][1])


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process, on the test's event loop."""
    async with http_client(app) as client:
        yield client


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    """Only asyncio."""
    yield "asyncio"
