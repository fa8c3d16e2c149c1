"""FCM and Web Push transports against real protocol peers on loopback.

Every outcome the delivery worker acts on is produced by a real exchange: firebase-admin and
google-auth talk to the FCM peer (OAuth2 JWT grant, v1 JSON, FCM error bodies); pywebpush
encrypts for a subscription whose private key only the Web Push peer holds, and the peer checks
VAPID and decrypts like a browser would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging

from alerts.transports import (
    MAX_PLAINTEXT,
    FcmTarget,
    FcmTransport,
    Outcome,
    PushMessage,
    Urgency,
    VapidKeyPair,
    VapidSigner,
    WebPushTarget,
    WebPushTransport,
    encode_payload,
    generate_vapid_key_pair,
)
from alerts.transports.base import fit_text, parse_retry_after, web_push_topic
from alerts.transports.vapid import load_vapid_private_key, public_key_b64url
from tests.peers.fcm_service import FcmService, ReceivedFcm
from tests.peers.webpush_service import ReceivedPush, Subscription, WebPushService

SUBJECT = "mailto:alertes@relais.example"


def message(
    delivery_id: int = 1,
    *,
    body: str = "Crue de la Loire : évacuez les quais avant 18 h.",
    collapse_key: str | None = "FR-2026-000123",
    urgency: Urgency = Urgency.HIGH,
    ttl: int = 3600,
    data: dict[str, str] | None = None,
) -> PushMessage:
    return PushMessage(
        delivery_id=delivery_id,
        title="Alerte inondation",
        body=body,
        data={"kind": "alert", "id": "42"} if data is None else data,
        collapse_key=collapse_key,
        urgency=urgency,
        ttl_seconds=ttl,
    )


def target(sub: Subscription) -> WebPushTarget:
    return WebPushTarget(sub.endpoint, sub.p256dh, sub.auth)


def jwt_claims(authorization: str) -> dict[str, Any]:
    token = authorization.split("t=", 1)[1].split(",", 1)[0]
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def push_service() -> Iterator[WebPushService]:
    with WebPushService() as service:
        yield service


@pytest.fixture(scope="module")
def fcm_service() -> Iterator[FcmService]:
    with FcmService(project_id="relais-test") as service:
        yield service


@pytest.fixture(scope="module")
def vapid() -> VapidKeyPair:
    return generate_vapid_key_pair()


@pytest.fixture
async def webpush(vapid: VapidKeyPair) -> AsyncIterator[WebPushTransport]:
    transport = WebPushTransport(vapid.private_pem, SUBJECT, max_concurrency=20, timeout=2.0)
    yield transport
    await transport.aclose()


@pytest.fixture
def service_account(fcm_service: FcmService, tmp_path: Path) -> Path:
    return fcm_service.write_service_account(tmp_path / "service-account.json")


@pytest.fixture
async def fcm(fcm_service: FcmService, service_account: Path) -> AsyncIterator[FcmTransport]:
    transport = FcmTransport(
        "relais-test", service_account, endpoint_url=fcm_service.base_url, timeout=2.0
    )
    yield transport
    await transport.aclose()


def pushes_to(service: WebPushService, sub: Subscription) -> list[ReceivedPush]:
    return [r for r in service.received if r.subscription_id == sub.id]


def fcm_to(service: FcmService, token: str) -> list[ReceivedFcm]:
    return [r for r in service.received if r.target == token]


# --- Web Push: delivery -----------------------------------------------------------------------


async def test_web_push_is_decrypted_by_the_browser_with_ttl_urgency_and_topic(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()
    before = time.time()

    [result] = await webpush.send([(message(7, collapse_key="cap:FR-2026-000123"), target(sub))])

    assert result.delivery_id == 7
    assert result.outcome is Outcome.SENT
    [received] = pushes_to(push_service, sub)
    assert received.payload == {
        "title": "Alerte inondation",
        "body": "Crue de la Loire : évacuez les quais avant 18 h.",
        "data": {"kind": "alert", "id": "42"},
        "tag": "cap:FR-2026-000123",
    }
    assert received.ttl == 3600
    assert received.urgency == "high"
    # ":" is outside the base64url alphabet, so the Topic is a stable hash of the key.
    assert received.topic == web_push_topic("cap:FR-2026-000123")
    assert received.topic is not None and len(received.topic) == 32
    assert received.vapid_claims["aud"] == push_service.base_url
    assert received.vapid_claims["sub"] == SUBJECT
    assert before < received.vapid_claims["exp"] <= before + 24 * 3600


async def test_short_url_safe_collapse_key_is_the_topic_and_ttl_zero_is_explicit(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()
    plain = message(collapse_key="alerte-42", urgency=Urgency.VERY_LOW, ttl=0)

    for msg in (plain, message(collapse_key=None)):
        [result] = await webpush.send([(msg, target(sub))])
        assert result.outcome is Outcome.SENT

    first, second = pushes_to(push_service, sub)
    assert (first.topic, first.urgency, first.ttl) == ("alerte-42", "very-low", 0)
    assert second.topic is None
    assert "tag" not in second.payload


async def test_batch_results_come_back_in_order(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    subs = [push_service.create_subscription() for _ in range(3)]
    push_service.set_behaviour(subs[1].id, "gone")
    batch = [(message(100 + i), target(sub)) for i, sub in enumerate(subs * 20)]

    results = await webpush.send(batch)

    assert [r.delivery_id for r in results] == [100 + i for i in range(60)]
    assert [r.outcome for r in results[:3]] == [Outcome.SENT, Outcome.DEAD, Outcome.SENT]
    assert webpush.stats.peak_in_flight <= 20


async def test_one_vapid_key_serves_two_push_services_each_with_its_own_audience(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    # pywebpush's helpers would keep the first endpoint's ``aud`` in a shared claims dict.
    with WebPushService() as other_service:
        here, there = push_service.create_subscription(), other_service.create_subscription()

        results = await webpush.send([(message(1), target(here)), (message(2), target(there))])

        assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
        [received] = pushes_to(other_service, there)
        assert received.vapid_claims["aud"] == other_service.base_url


async def test_subscription_made_with_our_application_server_key_accepts_our_pushes(
    push_service: WebPushService, webpush: WebPushTransport, vapid: VapidKeyPair
) -> None:
    key = webpush.vapid_public_key_b64url()
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert key == vapid.public_b64url and "=" not in key
    assert len(raw) == 65 and raw[0] == 4  # uncompressed P-256 point
    sub = push_service.create_subscription(application_server_key=key)

    [result] = await webpush.send([(message(), target(sub))])

    assert result.outcome is Outcome.SENT


# --- Web Push: outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["gone", "not_found"])
async def test_expired_subscription_is_dead(
    push_service: WebPushService, webpush: WebPushTransport, behaviour: str
) -> None:
    sub = push_service.create_subscription(behaviour)

    [result] = await webpush.send([(message(), target(sub))])

    assert result.outcome is Outcome.DEAD
    assert pushes_to(push_service, sub) == []


async def test_unknown_subscription_is_dead(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()
    push_service.drop_subscription(sub.id)

    [result] = await webpush.send([(message(), target(sub))])

    assert (result.outcome, result.reason) == (Outcome.DEAD, "404 subscription gone")


async def test_throttled_push_carries_retry_after_then_goes_through(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription("throttle", retry_after="7", first=1)

    [throttled] = await webpush.send([(message(), target(sub))])
    [sent] = await webpush.send([(message(), target(sub))])

    assert (throttled.outcome, throttled.retry_after) == (Outcome.THROTTLED, 7.0)
    assert sent.outcome is Outcome.SENT


async def test_retry_after_as_http_date_is_converted_to_seconds(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    sub = push_service.create_subscription("throttle", retry_after=when)

    [result] = await webpush.send([(message(), target(sub))])

    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after is not None and 100 < result.retry_after <= 120


@pytest.mark.parametrize("status", [500, 503])
async def test_push_service_errors_are_retried(
    push_service: WebPushService, webpush: WebPushTransport, status: int
) -> None:
    sub = push_service.create_subscription("error", status=status, first=1)

    [failed] = await webpush.send([(message(), target(sub))])
    [sent] = await webpush.send([(message(), target(sub))])

    assert failed.outcome is Outcome.RETRY and str(status) in failed.reason
    assert sent.outcome is Outcome.SENT


@pytest.mark.parametrize("status", [400, 413])
async def test_rejected_requests_fail_without_dropping_the_subscription(
    push_service: WebPushService, webpush: WebPushTransport, status: int
) -> None:
    sub = push_service.create_subscription("error", status=status)

    [result] = await webpush.send([(message(), target(sub))])

    assert result.outcome is Outcome.FAILED


async def test_slow_push_service_times_out_as_retry(
    push_service: WebPushService, vapid: VapidKeyPair
) -> None:
    sub = push_service.create_subscription("slow", delay=1.0)
    impatient = WebPushTransport(vapid.private_pem, SUBJECT, timeout=0.3)
    try:
        [result] = await impatient.send([(message(), target(sub))])
    finally:
        await impatient.aclose()
        await push_service.idle()

    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


async def test_unreachable_push_service_is_retry(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()
    with WebPushService() as closed:
        closed_url = closed.base_url  # a port that stops listening right after
    dead_endpoint = sub.endpoint.replace(push_service.base_url, closed_url)

    [result] = await webpush.send([(message(), WebPushTarget(dead_endpoint, sub.p256dh, sub.auth))])

    assert result.outcome is Outcome.RETRY


async def test_push_signed_with_another_vapid_key_is_refused_and_failed(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    # The browser subscribed with another server's key: the push service answers 403.
    sub = push_service.create_subscription(
        application_server_key=generate_vapid_key_pair().public_b64url
    )

    [result] = await webpush.send([(message(), target(sub))])

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("403")


async def test_undecodable_subscription_keys_fail(webpush: WebPushTransport) -> None:
    bogus = WebPushTarget("http://127.0.0.1:9/push/x", p256dh="bm90LWEta2V5", auth="c2VjcmV0")

    [result] = await webpush.send([(message(), bogus)])

    assert result.outcome is Outcome.FAILED


# --- Web Push: payload size -------------------------------------------------------------------


async def test_oversize_body_is_truncated_to_fit_and_still_decrypts(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()
    long_body = "Évacuation immédiate du quartier Saint-Jean ; " * 200  # ~9 kB of UTF-8

    [result] = await webpush.send([(message(body=long_body), target(sub))])

    assert result.outcome is Outcome.SENT
    [received] = pushes_to(push_service, sub)
    assert MAX_PLAINTEXT - 8 <= received.plaintext_length <= MAX_PLAINTEXT
    assert received.body_length <= 4096
    body = received.payload["body"]
    assert body.endswith("…") and long_body.startswith(body[:-1])
    assert received.payload["data"] == {"kind": "alert", "id": "42"}


def test_exactly_3993_bytes_of_plaintext_fit_and_one_more_is_cut() -> None:
    base = len(encode_payload(message(body="")))
    fits = message(body="x" * (MAX_PLAINTEXT - base))
    over = message(body="x" * (MAX_PLAINTEXT - base + 1))

    assert len(encode_payload(fits)) == MAX_PLAINTEXT
    assert json.loads(encode_payload(fits))["body"] == fits.body
    assert len(encode_payload(over)) <= MAX_PLAINTEXT
    assert json.loads(encode_payload(over))["body"].endswith("…")


def test_truncation_never_splits_a_character_or_a_combining_sequence() -> None:
    body = "e\u0301👩\u200d🚒" * 2000  # é as e + combining accent, firefighter ZWJ emoji

    payload = encode_payload(message(body=body)).decode()  # strict UTF-8 decode

    cut = json.loads(payload)["body"].removesuffix("…")
    assert body.startswith(cut)
    assert not cut.endswith(("e", "\u200d", "👩"))  # ends on a complete grapheme


def test_fit_text_gives_up_when_nothing_fits() -> None:
    assert fit_text("abc", lambda s: s.encode(), 0) is None
    assert fit_text("abc", lambda s: s.encode(), 3) == "abc"


async def test_data_too_big_to_ever_fit_fails(
    push_service: WebPushService, webpush: WebPushTransport
) -> None:
    sub = push_service.create_subscription()

    [result] = await webpush.send([(message(data={"blob": "x" * 5000}), target(sub))])

    assert result.outcome is Outcome.FAILED
    assert pushes_to(push_service, sub) == []


# --- VAPID ------------------------------------------------------------------------------------


def test_vapid_header_is_cached_per_audience_and_renewed_before_expiry() -> None:
    now = [1_000_000.0]
    signer = VapidSigner(
        generate_vapid_key_pair().private_pem, SUBJECT, lifetime=12 * 3600, clock=lambda: now[0]
    )

    first = signer.authorization("https://fcm.googleapis.com/wp/abc")
    same_origin = signer.authorization("https://fcm.googleapis.com/wp/def")
    other = signer.authorization("https://updates.push.services.mozilla.com/wpush/v2/x")
    now[0] += 11 * 3600 - 1  # still more than the 1 h renewal margin before exp
    still = signer.authorization("https://fcm.googleapis.com/wp/abc")
    now[0] += 2
    renewed = signer.authorization("https://fcm.googleapis.com/wp/abc")

    assert first is same_origin and first is still
    assert jwt_claims(first) == {
        "aud": "https://fcm.googleapis.com",
        "exp": 1_000_000 + 12 * 3600,
        "sub": SUBJECT,
    }
    assert jwt_claims(other)["aud"] == "https://updates.push.services.mozilla.com"
    assert renewed != first and jwt_claims(renewed)["exp"] == int(now[0]) + 12 * 3600


def test_vapid_private_key_loads_from_pem_raw_and_der() -> None:
    pair = generate_vapid_key_pair()
    key = load_vapid_private_key(pair.private_pem)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    for form in (pair.private_pem, pair.private_b64url, base64.b64encode(der).decode()):
        assert public_key_b64url(load_vapid_private_key(form)) == pair.public_b64url
    with pytest.raises(ValueError):
        VapidSigner(pair.private_pem, "ops@relais.example")  # not a mailto:/https: URI


def test_retry_after_parsing() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", 60.0) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", 60.0, now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", 60.0, now=now) == 0.0
    assert parse_retry_after("soon", 60.0) == 60.0
    assert parse_retry_after(None, 60.0) == 60.0


# --- FCM: delivery ----------------------------------------------------------------------------


async def test_fcm_message_goes_through_oauth2_and_carries_android_and_apns_options(
    fcm_service: FcmService, fcm: FcmTransport
) -> None:
    tokens_before = fcm_service.token_requests
    before = int(time.time())

    [result] = await fcm.send([(message(9), FcmTarget("tok-success"))])

    assert result.outcome is Outcome.SENT
    assert result.reason.startswith("projects/relais-test/messages/")
    [received] = fcm_to(fcm_service, "tok-success")
    sent = received.message
    assert sent["token"] == "tok-success"
    assert sent["notification"] == {
        "title": "Alerte inondation",
        "body": "Crue de la Loire : évacuez les quais avant 18 h.",
    }
    assert sent["data"] == {"kind": "alert", "id": "42"}
    assert sent["android"] == {
        "priority": "high",
        "ttl": "3600s",
        "collapse_key": "FR-2026-000123",
    }
    headers = sent["apns"]["headers"]
    assert headers["apns-priority"] == "10"
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-collapse-id"] == "FR-2026-000123"
    assert before + 3600 <= int(headers["apns-expiration"]) <= int(time.time()) + 3600
    assert received.validate_only is False
    assert received.http_version == "1.1"
    assert fcm_service.token_requests == tokens_before + 1  # the real google-auth JWT grant


async def test_fcm_normal_urgency_and_zero_ttl(fcm_service: FcmService, fcm: FcmTransport) -> None:
    long_key = "urn:oid:2.49.0.1.250.0:FR-2026-000123:" + "x" * 60

    [result] = await fcm.send(
        [(message(urgency=Urgency.NORMAL, ttl=0, collapse_key=long_key), FcmTarget("tok-n"))]
    )

    assert result.outcome is Outcome.SENT
    sent = fcm_to(fcm_service, "tok-n")[0].message
    assert (sent["android"]["priority"], sent["android"]["ttl"]) == ("normal", "0s")
    headers = sent["apns"]["headers"]
    assert (headers["apns-priority"], headers["apns-expiration"]) == ("5", "0")
    assert len(headers["apns-collapse-id"].encode()) <= 64
    assert sent["android"]["collapse_key"] == headers["apns-collapse-id"]


async def test_fcm_installation_id_is_sent_as_fid(
    fcm_service: FcmService, fcm: FcmTransport
) -> None:
    [result] = await fcm.send([(message(), FcmTarget("fid-1", fid=True))])

    assert result.outcome is Outcome.SENT
    sent = fcm_to(fcm_service, "fid-1")[0].message
    assert sent["fid"] == "fid-1" and "token" not in sent


# --- FCM: outcomes ----------------------------------------------------------------------------


async def test_unregistered_token_is_dead(fcm_service: FcmService, fcm: FcmTransport) -> None:
    fcm_service.set_behaviour("tok-gone", "unregistered")

    [result] = await fcm.send([(message(), FcmTarget("tok-gone"))])

    assert result.outcome is Outcome.DEAD
    assert "UnregisteredError" in result.reason


async def test_quota_exceeded_is_throttled_with_retry_after(
    fcm_service: FcmService, fcm: FcmTransport
) -> None:
    fcm_service.set_behaviour("tok-quota", "quota", retry_after="42", first=1)

    [throttled] = await fcm.send([(message(), FcmTarget("tok-quota"))])
    [sent] = await fcm.send([(message(), FcmTarget("tok-quota"))])

    assert (throttled.outcome, throttled.retry_after) == (Outcome.THROTTLED, 42.0)
    assert "QuotaExceededError" in throttled.reason
    assert sent.outcome is Outcome.SENT


@pytest.mark.parametrize("behaviour", ["unavailable", "internal"])
async def test_fcm_server_errors_are_retry_and_not_retried_inside_the_transport(
    fcm_service: FcmService, fcm: FcmTransport, behaviour: str
) -> None:
    token = f"tok-{behaviour}"
    fcm_service.set_behaviour(token, behaviour, first=1)

    [failed] = await fcm.send([(message(), FcmTarget(token))])

    # firebase-admin's client would have retried 500/503 up to 4 times; the worker owns that.
    assert failed.outcome is Outcome.RETRY
    assert fcm_service.attempts[token] == 1
    [sent] = await fcm.send([(message(), FcmTarget(token))])
    assert sent.outcome is Outcome.SENT


@pytest.mark.parametrize("behaviour", ["invalid", "sender_mismatch"])
async def test_fcm_permanent_errors_fail(
    fcm_service: FcmService, fcm: FcmTransport, behaviour: str
) -> None:
    fcm_service.set_behaviour(f"tok-{behaviour}", behaviour)

    [result] = await fcm.send([(message(), FcmTarget(f"tok-{behaviour}"))])

    assert result.outcome is Outcome.FAILED


async def test_message_fcm_refuses_fails(fcm: FcmTransport) -> None:
    [result] = await fcm.send([(message(data={"from": "reserved"}), FcmTarget("tok-reserved"))])

    assert result.outcome is Outcome.FAILED
    assert "InvalidArgumentError" in result.reason


async def test_slow_fcm_times_out_as_retry(fcm_service: FcmService, service_account: Path) -> None:
    fcm_service.set_behaviour("tok-slow", "slow", delay=1.0)
    impatient = FcmTransport(
        "relais-test", service_account, endpoint_url=fcm_service.base_url, timeout=0.3
    )
    try:
        await impatient.send([(message(), FcmTarget("tok-warm"))])  # OAuth2 grant first
        [result] = await impatient.send([(message(), FcmTarget("tok-slow"))])
    finally:
        await impatient.aclose()
        await fcm_service.idle()

    assert result.outcome is Outcome.RETRY
    assert "DeadlineExceededError" in result.reason


async def test_revoked_access_token_is_refreshed_once_and_the_send_succeeds(
    fcm_service: FcmService, fcm: FcmTransport
) -> None:
    await fcm.send([(message(), FcmTarget("tok-before"))])
    grants = fcm_service.token_requests
    fcm_service.revoke_tokens()

    results = await fcm.send([(message(i), FcmTarget(f"tok-after-{i}")) for i in range(20)])

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert fcm_service.token_requests == grants + 1


async def test_service_account_key_unknown_to_google_is_retry(
    fcm_service: FcmService, tmp_path: Path
) -> None:
    info = fcm_service.service_account_info()
    forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = forged.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(info))
    transport = FcmTransport("relais-test", path, endpoint_url=fcm_service.base_url)
    try:
        results = await transport.send([(message(i), FcmTarget("tok-x")) for i in range(5)])
    finally:
        await transport.aclose()

    # Not the message's fault and not the token's: keep both and let the worker back off.
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert all(r.reason.startswith("oauth2:") for r in results)
    assert fcm_to(fcm_service, "tok-x") == []


async def test_web_push_target_given_to_fcm_fails(fcm: FcmTransport) -> None:
    [result] = await fcm.send([(message(), WebPushTarget("https://x/y", "a", "b"))])

    assert result.outcome is Outcome.FAILED


# --- FCM: batching and concurrency ------------------------------------------------------------


async def test_1200_messages_are_split_in_chunks_of_500_with_bounded_concurrency(
    fcm_service: FcmService, service_account: Path
) -> None:
    transport = FcmTransport(
        "relais-test", service_account, endpoint_url=fcm_service.base_url, max_concurrency=16
    )
    fcm_service.set_latency(0.005)  # a round trip, so that requests overlap at the peer
    try:
        await transport.send([(message(), FcmTarget("tok-warm"))])
        fcm_service.reset()
        batch = [(message(i), FcmTarget(f"tok-bulk-{i}")) for i in range(1200)]

        results = await transport.send(batch)
    finally:
        fcm_service.set_latency(0.0)
        await transport.aclose()

    assert [r.delivery_id for r in results] == list(range(1200))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len(fcm_service.received) == 1200
    assert fcm_service.received[0].target.startswith("tok-bulk-")
    assert (transport.stats.chunks, transport.stats.largest_chunk) == (1 + 3, 500)
    assert 8 <= fcm_service.stats()["peak_concurrency"] <= 16
    assert transport.stats.peak_in_flight <= 16


async def test_concurrent_batches_share_one_concurrency_limit(
    fcm_service: FcmService, service_account: Path
) -> None:
    transport = FcmTransport(
        "relais-test", service_account, endpoint_url=fcm_service.base_url, max_concurrency=8
    )
    fcm_service.set_latency(0.005)
    try:
        await transport.send([(message(), FcmTarget("tok-warm"))])
        fcm_service.reset()
        batches = [[(message(i), FcmTarget(f"tok-c{b}-{i}")) for i in range(100)] for b in range(4)]

        results = await asyncio.gather(*(transport.send(batch) for batch in batches))
    finally:
        fcm_service.set_latency(0.0)
        await transport.aclose()

    assert all(r.outcome is Outcome.SENT for batch in results for r in batch)
    assert fcm_service.stats()["peak_concurrency"] <= 8


async def test_fcm_url_is_redirected_per_app_not_globally(
    fcm_service: FcmService, fcm: FcmTransport
) -> None:
    assert fcm.endpoint == f"{fcm_service.base_url}/v1/projects/relais-test/messages:send"
    assert messaging._MessagingService.FCM_URL.startswith("https://fcm.googleapis.com/")
