"""`Idempotency-Key`: a retried creation replays the first answer and creates nothing twice."""

from __future__ import annotations

import asyncio

from alerts.tables import Device
from backend.accounts.tables import Account
from tests.factories import PASSWORD, Client

BODY = {"platform": "ios", "locale": "fr"}


async def test_same_key_and_body_replays_the_first_answer(client: Client) -> None:
    headers = {"Idempotency-Key": "3f1c2b9e-retry-1"}
    first = await client.post("/api/v1/devices", json=BODY, headers=headers)
    second = await client.post("/api/v1/devices", json=BODY, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await Device.count() == 1


async def test_same_key_with_another_body_is_refused(client: Client) -> None:
    headers = {"Idempotency-Key": "key-2"}
    await client.post("/api/v1/devices", json=BODY, headers=headers)
    other = await client.post("/api/v1/devices", json={"platform": "android"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency-key-reused"
    assert await Device.count() == 1


async def test_without_a_key_each_post_creates(client: Client) -> None:
    await client.post("/api/v1/devices", json=BODY)
    await client.post("/api/v1/devices", json=BODY)
    assert await Device.count() == 2


async def test_a_failed_request_is_not_stored_and_can_be_retried(client: Client) -> None:
    headers = {"Idempotency-Key": "signup-1"}
    weak = await client.post(
        "/api/v1/auth/signup", json={"email": "a@exemple.fr", "password": "court"}, headers=headers
    )
    assert weak.status_code == 422
    assert await Account.count() == 0
    fixed = await client.post(
        "/api/v1/auth/signup",
        json={"email": "a@exemple.fr", "password": PASSWORD},
        headers={"Idempotency-Key": "signup-2"},
    )
    assert fixed.status_code == 201


async def test_concurrent_retries_create_once(client: Client) -> None:
    headers = {"Idempotency-Key": "flaky-4g"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/devices", json=BODY, headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["deviceToken"] for r in responses}) == 1
    assert await Device.count() == 1


async def test_keys_belong_to_their_caller(client: Client) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    first = await client.post("/api/v1/devices", json=BODY, headers=headers)
    device_token = first.json()["deviceToken"]
    other = await client.post(
        "/api/v1/devices", json=BODY, headers={**headers, "X-Device-Token": device_token}
    )
    assert other.status_code == 201
    assert other.json()["deviceToken"] != device_token
    assert await Device.count() == 2


async def test_an_over_long_key_is_refused(client: Client) -> None:
    response = await client.post(
        "/api/v1/devices", json=BODY, headers={"Idempotency-Key": "k" * 300}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-idempotency-key"
    assert await Device.count() == 0


async def test_the_worker_job_forgets_old_answers(client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    from backend.idempotency.tables import IdempotencyRecord
    from backend.jobs import purge_idempotency_records
    from backend.settings import load_settings

    await client.post("/api/v1/devices", json=BODY, headers={"Idempotency-Key": "old"})
    await client.post("/api/v1/devices", json=BODY, headers={"Idempotency-Key": "new"})
    await IdempotencyRecord.update(
        {IdempotencyRecord.created_at: datetime.now(UTC) - timedelta(days=2)}
    ).where(IdempotencyRecord.key == "old")
    assert await purge_idempotency_records(load_settings()) == 1
    assert [r["key"] for r in await IdempotencyRecord.select(IdempotencyRecord.key)] == ["new"]
    # The forgotten key is free again.
    again = await client.post("/api/v1/devices", json=BODY, headers={"Idempotency-Key": "old"})
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers


async def test_a_failed_request_frees_its_key_for_a_retry(client: Client) -> None:
    headers = {"Idempotency-Key": "signup-retry"}
    weak = {"email": "b@exemple.fr", "password": "court"}
    refused = await asyncio.gather(
        *(client.post("/api/v1/auth/signup", json=weak, headers=headers) for _ in range(3))
    )
    assert [r.status_code for r in refused] == [422] * 3
    fixed = {"email": "b@exemple.fr", "password": PASSWORD}
    created = await client.post("/api/v1/auth/signup", json=fixed, headers=headers)
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers
    again = await client.post("/api/v1/auth/signup", json=fixed, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == created.json()
    assert await Account.count() == 1
