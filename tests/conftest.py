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

from alerts.delivery import DeliveryWorker
from alerts.push_setup import build_transports
from alerts.transports import generate_vapid_key_pair
from backend import database
from backend.app import create_app
from backend.settings import Settings, load_settings
from tests.http import http_client
from tests.peers.ants import AntsPeer
from tests.peers.ban import BanPeer
from tests.peers.fcm_service import FcmService
from tests.peers.webpush_service import WebPushService

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
def settings(db: str, engines: dict[str, tuple[str, Engine]], tmp_path: Path) -> Settings:
    """Settings of the app under test, on the current engine, with its own var/ (media files);
    push and geocoding are pointed at the loopback peers below."""
    return load_settings().with_(
        database_url=engines[db][0],
        var_dir=tmp_path / "var",
        rate_auth_per_ip=(1000, 60),
        rate_auth_per_account=(1000, 60),
        rate_slots_per_ip=(100_000, 60),
        rate_booking_per_ip=(100_000, 60),
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process, on the test's event loop."""
    async with http_client(app) as client:
        yield client


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    """Only asyncio."""
    yield "asyncio"


@pytest.fixture(scope="session")
def webpush_peer() -> Iterator[WebPushService]:
    """A Web Push service that checks VAPID and decrypts aes128gcm like a browser."""
    with WebPushService() as peer:
        yield peer


@pytest.fixture(scope="session")
def fcm_peer() -> Iterator[FcmService]:
    """An FCM HTTP v1 endpoint (and OAuth2 token endpoint) firebase-admin posts to."""
    with FcmService() as peer:
        yield peer


@pytest.fixture(scope="session")
def ban_peer() -> Iterator[BanPeer]:
    """A geocoder answering like the Base Adresse Nationale."""
    with BanPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def ants_peer() -> Iterator[AntsPeer]:
    """The ANTS coordination API (pre-request numbers, appointments of every editor)."""
    with AntsPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def vapid_pem() -> str:
    """One VAPID identity for the run."""
    return generate_vapid_key_pair().private_pem


@pytest.fixture
def push_settings(
    settings: Settings,
    webpush_peer: WebPushService,
    fcm_peer: FcmService,
    ban_peer: BanPeer,
    ants_peer: AntsPeer,
    vapid_pem: str,
    tmp_path: Path,
) -> Settings:
    """Settings pointing push delivery at the loopback peers."""
    webpush_peer.reset()
    fcm_peer.reset()
    ban_peer.recover()
    ants_peer.clear()
    account = fcm_peer.write_service_account(tmp_path / "service-account.json")
    return settings.with_(
        vapid_private_key=vapid_pem,
        fcm_project_id=fcm_peer.project_id,
        fcm_credentials=str(account),
        fcm_endpoint=fcm_peer.base_url,
        geocoder_url=ban_peer.base_url,
        ants_url=ants_peer.base_url,
        ants_token=ants_peer.token,
        ants_hub_token="hub-token-de-test",
        geocoder_timeout=1.0,
    )


@pytest.fixture
def app(push_settings: Settings, db: str, engines: dict[str, tuple[str, Engine]]) -> Litestar:
    """The application, sharing the test engine, configured for the loopback peers."""
    return create_app(push_settings, engine=engines[db][1])


@pytest.fixture
async def worker(push_settings: Settings) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker on real transports, with short backoff so retries happen in tests."""
    transports = build_transports(
        var_dir=push_settings.var_dir,
        vapid_key=push_settings.vapid_private_key,
        vapid_subject="mailto:alertes@mairie-test.fr",
        fcm_project_id=push_settings.fcm_project_id,
        fcm_credentials=push_settings.fcm_credentials,
        fcm_endpoint=push_settings.fcm_endpoint,
    )
    worker = DeliveryWorker(transports, batch_size=100, backoff_base=0.05, lease_seconds=1.0)
    yield worker
    for transport in transports.values():
        await transport.aclose()
