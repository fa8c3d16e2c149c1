"""Alerts set-up: the loopback push services (real protocols) and a delivery worker on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from alerts.delivery import DeliveryWorker
from alerts.push_setup import build_transports
from alerts.transports import generate_vapid_key_pair
from backend.settings import Settings
from tests.peers.ban import BanPeer
from tests.peers.fcm_service import FcmService
from tests.peers.webpush_service import WebPushService


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
def vapid_pem() -> str:
    """One VAPID identity for the run."""
    return generate_vapid_key_pair().private_pem


@pytest.fixture
def push_settings(
    settings: Settings,
    webpush_peer: WebPushService,
    fcm_peer: FcmService,
    ban_peer: BanPeer,
    vapid_pem: str,
    tmp_path: Path,
) -> Settings:
    """Settings pointing push delivery at the loopback peers."""
    webpush_peer.reset()
    fcm_peer.reset()
    ban_peer.recover()
    account = fcm_peer.write_service_account(tmp_path / "service-account.json")
    return settings.with_(
        vapid_private_key=vapid_pem,
        fcm_project_id=fcm_peer.project_id,
        fcm_credentials=str(account),
        fcm_endpoint=fcm_peer.base_url,
        geocoder_url=ban_peer.base_url,
        geocoder_timeout=1.0,
    )


@pytest.fixture
def app(push_settings: Settings, db: str, engines: dict[str, tuple[str, object]]):  # type: ignore[no-untyped-def]
    """The application, configured for the loopback peers."""
    from backend.app import create_app

    return create_app(push_settings, engine=engines[db][1])  # type: ignore[arg-type]


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
