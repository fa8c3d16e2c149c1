"""Login and sign-up are rate limited per IP address and per account."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from piccolo.engine.base import Engine

from backend.app import create_app
from backend.settings import Settings
from tests.factories import PASSWORD, sign_up
from tests.http import http_client


@pytest.fixture
async def strict_client(
    settings: Settings, db: str, engines: dict[str, tuple[str, Engine]]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.with_(rate_auth_per_ip=(6, 300), rate_auth_per_account=(3, 900)),
        engine=engines[db][1],
    )
    async with http_client(app) as client:
        yield client


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(
    strict_client: httpx.AsyncClient,
) -> None:
    await sign_up(strict_client, "camille@exemple.fr")  # one hit on the account's counter
    attempt = {"email": "camille@exemple.fr", "password": "Devinette-123"}
    statuses = [
        (await strict_client.post("/api/v1/auth/login", json=attempt)).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
    locked = await strict_client.post(
        "/api/v1/auth/login", json={"email": "camille@exemple.fr", "password": PASSWORD}
    )
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 900
    assert locked.json()["detail"].startswith("Trop de tentatives. Réessayez dans")


async def test_one_address_cannot_try_many_accounts(strict_client: httpx.AsyncClient) -> None:
    statuses = [
        (
            await strict_client.post(
                "/api/v1/auth/login",
                json={"email": f"victime{i}@exemple.fr", "password": "Devinette-123"},
            )
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 6 + [429]
    signup = await strict_client.post(
        "/api/v1/auth/signup", json={"email": "nouveau@exemple.fr", "password": PASSWORD}
    )
    assert signup.status_code == 429
    assert "retry-after" in signup.headers
