"""An app installation works without an account, and joins the account when its owner signs in."""

from __future__ import annotations

from tests.factories import Client, bearer, log_in, sign_up


async def _register(client: Client, **headers: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/devices",
        json={"platform": "android", "locale": "fr", "appVersion": "1.4.0"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_a_device_registers_without_any_account(client: Client) -> None:
    registered = await _register(client)
    assert registered["deviceToken"].startswith("dev_")
    assert registered["device"]["accountId"] is None
    me = await client.get(
        "/api/v1/devices/me", headers={"X-Device-Token": registered["deviceToken"]}
    )
    assert me.status_code == 200
    assert me.json()["platform"] == "android"


async def test_an_unknown_device_token_is_refused(client: Client) -> None:
    response = await client.get("/api/v1/devices/me", headers={"X-Device-Token": "dev_inconnu"})
    assert response.status_code == 401
    assert "plus reconnu" in response.json()["detail"]
    missing = await client.get("/api/v1/devices/me")
    assert missing.status_code == 401


async def test_signing_in_attaches_the_device_to_the_account(client: Client) -> None:
    registered = await _register(client)
    token = {"X-Device-Token": registered["deviceToken"]}
    session = await sign_up(client, "camille@exemple.fr", **token)
    me = (await client.get("/api/v1/devices/me", headers=token)).json()
    assert me["accountId"] == session["account"]["id"]

    tablet = await _register(client)
    tablet_token = {"X-Device-Token": tablet["deviceToken"]}
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": "camille@exemple.fr", "password": "Correct-cheval-42"},
        headers=tablet_token,
    )
    assert response.status_code == 200
    tablet_me = (await client.get("/api/v1/devices/me", headers=tablet_token)).json()
    assert tablet_me["accountId"] == session["account"]["id"]


async def test_a_device_of_one_account_cannot_be_used_with_another(client: Client) -> None:
    registered = await _register(client)
    token = {"X-Device-Token": registered["deviceToken"]}
    await sign_up(client, "camille@exemple.fr", **token)
    other = await sign_up(client, "dominique@exemple.fr")
    response = await client.get("/api/v1/devices/me", headers={**token, **bearer(other)})
    assert response.status_code == 401


async def test_device_settings_can_change(client: Client) -> None:
    registered = await _register(client)
    token = {"X-Device-Token": registered["deviceToken"]}
    response = await client.patch("/api/v1/devices/me", json={"locale": "en"}, headers=token)
    assert response.status_code == 200
    assert response.json()["locale"] == "en"
    bad = await client.post("/api/v1/devices", json={"platform": "symbian"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "platform"


async def test_a_signed_in_resident_registering_a_device_owns_it(client: Client) -> None:
    session = await sign_up(client)
    registered = await _register(client, **bearer(session))
    assert registered["device"]["accountId"] == session["account"]["id"]
    await log_in(client, "camille@exemple.fr")
