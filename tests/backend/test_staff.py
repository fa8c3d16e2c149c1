"""Staff roles: guards on staff routes, admins manage services and staff of their commune."""

from __future__ import annotations

from litestar import Litestar

from backend.audit.service import entries_for
from tests.factories import PASSWORD, Client, bearer, log_in, make_commune, sign_up


async def test_a_citizen_cannot_call_staff_routes(client: Client, app: Litestar) -> None:
    await make_commune(app)
    citizen = await sign_up(client)
    response = await client.get("/staff/v1/services", headers=bearer(citizen))
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Cette action est réservée")
    anonymous = await client.get("/staff/v1/services")
    assert anonymous.status_code == 401


async def test_an_agent_reads_services_but_cannot_manage_them(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    agent = await log_in(client, commune.agent["email"])
    services = await client.get("/staff/v1/services", headers=bearer(agent))
    assert services.status_code == 200
    assert [s["name"] for s in services.json()] == ["Voirie", "État civil"]
    create = await client.post(
        "/staff/v1/services", json={"name": "Propreté"}, headers=bearer(agent)
    )
    assert create.status_code == 403
    staff = await client.get("/staff/v1/staff", headers=bearer(agent))
    assert staff.status_code == 403


async def test_an_admin_manages_services_with_an_audit_trail(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    admin = await log_in(client, commune.admin["email"])
    created = await client.post(
        "/staff/v1/services",
        json={"name": "Propreté urbaine", "phone": "02 99 00 00 00"},
        headers=bearer(admin),
    )
    assert created.status_code == 201
    service = created.json()
    assert service["slug"] == "proprete-urbaine"
    again = await client.post(
        "/staff/v1/services", json={"name": "Propreté urbaine"}, headers=bearer(admin)
    )
    assert again.status_code == 409
    renamed = await client.patch(
        f"/staff/v1/services/{service['id']}", json={"active": False}, headers=bearer(admin)
    )
    assert renamed.json()["active"] is False
    trail = await entries_for("service", service["id"])
    assert [e["action"] for e in trail] == ["service.create", "service.update"]
    assert str(trail[0]["actor_id"]) == commune.admin["id"].__str__()


async def test_an_admin_creates_and_reassigns_staff(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    admin = await log_in(client, commune.admin["email"])
    created = await client.post(
        "/staff/v1/staff",
        json={
            "email": "Nouvel.Agent@Mairie.fr",
            "password": PASSWORD,
            "role": "agent",
            "serviceIds": [str(commune.etat_civil_id)],
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    member = created.json()
    assert member["email"] == "nouvel.agent@mairie.fr"
    assert member["serviceIds"] == [str(commune.etat_civil_id)]
    moved = await client.patch(
        f"/staff/v1/staff/{member['id']}",
        json={"role": "communication", "serviceIds": [str(commune.voirie_id)]},
        headers=bearer(admin),
    )
    assert moved.status_code == 200
    assert moved.json()["role"] == "communication"
    assert moved.json()["serviceIds"] == [str(commune.voirie_id)]
    listing = await client.get("/staff/v1/staff", headers=bearer(admin))
    assert "nouvel.agent@mairie.fr" in [m["email"] for m in listing.json()]
    deactivated = await client.patch(
        f"/staff/v1/staff/{member['id']}", json={"isActive": False}, headers=bearer(admin)
    )
    assert deactivated.json()["isActive"] is False
    login = await client.post(
        "/api/v1/auth/login", json={"email": "nouvel.agent@mairie.fr", "password": PASSWORD}
    )
    assert login.status_code == 401
    assert "désactivé" in login.json()["detail"]


async def test_staff_of_another_commune_is_invisible(client: Client, app: Litestar) -> None:
    rennes = await make_commune(app, "35238")
    brest = await make_commune(app, "29019", "Brest")
    admin = await log_in(client, rennes.admin["email"])
    response = await client.get(f"/staff/v1/staff/{brest.agent['id']}", headers=bearer(admin))
    assert response.status_code == 404
    foreign = await client.patch(
        f"/staff/v1/services/{brest.voirie_id}", json={"name": "Piratée"}, headers=bearer(admin)
    )
    assert foreign.status_code == 404
    bad_service = await client.post(
        "/staff/v1/staff",
        json={
            "email": "x@mairie.fr",
            "password": PASSWORD,
            "role": "agent",
            "serviceIds": [str(brest.voirie_id)],
        },
        headers=bearer(admin),
    )
    assert bad_service.status_code == 422
    assert bad_service.json()["errors"][0]["field"] == "serviceIds"


async def test_unknown_role_is_refused(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    admin = await log_in(client, commune.admin["email"])
    response = await client.post(
        "/staff/v1/staff",
        json={"email": "x@mairie.fr", "password": PASSWORD, "role": "maire"},
        headers=bearer(admin),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"
