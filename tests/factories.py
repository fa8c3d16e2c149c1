"""Arrange helpers: a commune with services and staff, citizens signed up through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from litestar import Litestar

from backend.accounts.service import TokenSettings, create_account
from backend.organisation import service as organisation

PASSWORD = "Correct-cheval-42"
Client = httpx.AsyncClient


@dataclass
class Commune:
    """A commune with two services and one staff member per role."""

    id: UUID
    voirie_id: UUID
    etat_civil_id: UUID
    admin: dict[str, Any]
    agent: dict[str, Any]
    communication: dict[str, Any]


def token_settings(app: Litestar) -> TokenSettings:
    """Token settings of the app under test."""
    s = app.state.settings
    return TokenSettings(s.secret_key, s.access_token_ttl, s.refresh_token_ttl, s.argon2_memory_kib)


async def make_commune(app: Litestar, insee: str = "35238", name: str = "Rennes") -> Commune:
    """Create a commune, its voirie and état-civil services and staff (admin, agent, comms)."""
    commune = await organisation.create_commune(name, insee, phone="02 23 62 10 10")
    voirie = await organisation.create_service(
        commune["id"], None, {"name": "Voirie", "phone": "02 23 62 10 20"}
    )
    etat_civil = await organisation.create_service(commune["id"], None, {"name": "État civil"})
    ts = token_settings(app)
    admin = await create_account(
        email=f"admin-{insee}@mairie.fr",
        password=PASSWORD,
        display_name="Alix Admin",
        role="admin",
        settings=ts,
        commune_id=commune["id"],
    )
    agent = await organisation.create_staff(
        commune_id=commune["id"],
        actor_id=admin["id"],
        email=f"agent-{insee}@mairie.fr",
        password=PASSWORD,
        display_name="Agathe Agent",
        role="agent",
        service_ids=[voirie["id"]],
        settings=ts,
    )
    comms = await organisation.create_staff(
        commune_id=commune["id"],
        actor_id=admin["id"],
        email=f"comms-{insee}@mairie.fr",
        password=PASSWORD,
        display_name="Côme Communication",
        role="communication",
        service_ids=[],
        settings=ts,
    )
    return Commune(commune["id"], voirie["id"], etat_civil["id"], admin, agent, comms)


async def sign_up(client: Client, email: str = "camille@exemple.fr", **extra: str) -> Any:
    """Sign a citizen up through the API; returns the session JSON."""
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "displayName": "Camille"},
        headers=extra,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def log_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    """Log in through the API; returns the session JSON."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(session: Any) -> dict[str, str]:
    """The Authorization header of a session."""
    return {"Authorization": f"Bearer {session['accessToken']}"}
