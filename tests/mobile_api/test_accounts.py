"""Citizens sign up, log in, refresh and close sessions, edit their profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from litestar import Litestar

from backend.accounts.tables import RefreshToken
from tests.factories import PASSWORD, Client, bearer, log_in, sign_up


async def test_sign_up_returns_a_session_and_the_profile(client: Client) -> None:
    session = await sign_up(client, "Camille.Martin@Exemple.fr")
    assert session["tokenType"] == "Bearer"
    assert session["account"]["email"] == "camille.martin@exemple.fr"
    assert session["account"]["role"] == "citizen"
    me = await client.get("/api/v1/me", headers=bearer(session))
    assert me.status_code == 200
    assert me.json()["displayName"] == "Camille"


async def test_duplicate_email_is_refused_whatever_its_case(client: Client) -> None:
    await sign_up(client, "camille@exemple.fr")
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "CAMILLE@exemple.FR", "password": PASSWORD}
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "email-taken"
    assert "existe déjà" in body["detail"]
    assert body["errors"][0]["field"] == "email"


async def test_weak_password_is_refused_with_the_rules_stated(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "a@exemple.fr", "password": "court"}
    )
    assert response.status_code == 422
    body = response.json()
    assert "au moins une lettre et un chiffre" in body["detail"]
    assert body["errors"] == [{"field": "password", "message": body["detail"]}]


async def test_invalid_email_is_refused(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "pas-une-adresse", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "email"


async def test_over_long_fields_are_named_in_french(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": "a@exemple.fr", "password": PASSWORD, "displayName": "x" * 101},
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["errors"] == [{"field": "displayName", "message": "Au plus 100 caractères."}]
    assert "displayName" in body["detail"]


async def test_missing_field_is_named(client: Client) -> None:
    response = await client.post("/api/v1/auth/signup", json={"email": "a@exemple.fr"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "password",
        "message": "Ce champ est obligatoire.",
    }


async def test_malformed_json_is_a_clear_400(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@exemple.fr", "password": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert "JSON" in body["detail"]
    assert body["type"].startswith("urn:relais:problem:")


async def test_login_with_wrong_password_is_refused(client: Client) -> None:
    await sign_up(client, "camille@exemple.fr")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "camille@exemple.fr", "password": "Mauvais-99x"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid-credentials"
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "personne@exemple.fr", "password": PASSWORD}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == response.json()["detail"]


async def test_login_is_case_insensitive_on_email(client: Client) -> None:
    await sign_up(client, "camille@exemple.fr")
    session = await log_in(client, "  Camille@Exemple.FR ")
    assert session["account"]["email"] == "camille@exemple.fr"


async def test_refresh_rotates_and_reuse_revokes_the_family(client: Client) -> None:
    first = await sign_up(client)
    second = (
        await client.post("/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    ).json()
    assert second["refreshToken"] != first["refreshToken"]
    third = await client.post("/api/v1/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert third.status_code == 200
    # The first token was already used: presenting it again means it leaked.
    reuse = await client.post("/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401
    assert "fermée par sécurité" in reuse.json()["detail"]
    # ... and the whole family is dead, including the newest token.
    latest = await client.post(
        "/api/v1/auth/refresh", json={"refreshToken": third.json()["refreshToken"]}
    )
    assert latest.status_code == 401


async def test_expired_refresh_token_is_refused(client: Client) -> None:
    session = await sign_up(client)
    await RefreshToken.update(
        {RefreshToken.expires_at: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(RefreshToken.revoked_at.is_null())
    response = await client.post(
        "/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert response.status_code == 401
    assert "expiré" in response.json()["detail"]


async def test_expired_access_token_is_refused(client: Client, app: Litestar) -> None:
    session = await sign_up(client)
    claims = jwt.decode(session["accessToken"], options={"verify_signature": False})
    claims["exp"] = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    stale = jwt.encode(claims, app.state.settings.secret_key, algorithm="HS256")
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {stale}"})
    assert response.status_code == 401
    assert "expiré" in response.json()["detail"]


async def test_forged_access_token_is_refused(client: Client) -> None:
    session = await sign_up(client)
    claims = jwt.decode(session["accessToken"], options={"verify_signature": False})
    claims["role"] = "admin"
    forged = jwt.encode(claims, "not-the-key-of-this-server-" * 2, algorithm="HS256")
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_logout_closes_the_session(client: Client) -> None:
    session = await sign_up(client)
    out = await client.post("/api/v1/auth/logout", json={"refreshToken": session["refreshToken"]})
    assert out.status_code == 204
    response = await client.post(
        "/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert response.status_code == 401


async def test_profile_without_token_asks_to_sign_in(client: Client) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "Connectez-vous pour continuer."


async def test_profile_edit_changes_only_sent_fields(client: Client) -> None:
    session = await sign_up(client)
    response = await client.patch(
        "/api/v1/me", json={"phone": "06 12 34 56 78"}, headers=bearer(session)
    )
    assert response.status_code == 200
    assert response.json()["phone"] == "06 12 34 56 78"
    assert response.json()["displayName"] == "Camille"
    bad = await client.patch("/api/v1/me", json={"locale": "français"}, headers=bearer(session))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "locale"


async def test_password_change_closes_other_sessions(client: Client) -> None:
    phone = await sign_up(client)
    tablet = await log_in(client, "camille@exemple.fr")
    wrong = await client.post(
        "/api/v1/me/password",
        json={"currentPassword": "Pas-le-bon-1", "newPassword": "Nouveau-secret-7"},
        headers=bearer(phone),
    )
    assert wrong.status_code == 401
    changed = await client.post(
        "/api/v1/me/password",
        json={"currentPassword": PASSWORD, "newPassword": "Nouveau-secret-7"},
        headers=bearer(phone),
    )
    assert changed.status_code == 200
    old = await client.post("/api/v1/auth/refresh", json={"refreshToken": tablet["refreshToken"]})
    assert old.status_code == 401
    await log_in(client, "camille@exemple.fr", "Nouveau-secret-7")
    refused = await client.post(
        "/api/v1/auth/login", json={"email": "camille@exemple.fr", "password": PASSWORD}
    )
    assert refused.status_code == 401
