"""Agents process demandes; residents follow every step, and may reopen what is not fixed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar

from backend.demandes.jobs import close_resolved, remind_overdue
from backend.demandes.tables import Demande, Follower
from backend.mail.tables import EmailMessage
from tests.alerts.factories import device
from tests.demandes.factories import RENNES, make_categories
from tests.factories import PASSWORD, Client, bearer, log_in, make_commune, sign_up


async def _file(
    client: Client, commune: Any, category: Any, headers: dict[str, str], **extra: Any
) -> dict[str, Any]:
    body = {
        "communeId": str(commune.id),
        "categoryId": str(category),
        "description": "Nid-de-poule profond devant le 12 rue des Saules.",
        "lat": RENNES[0],
        "lon": RENNES[1],
        **extra,
    }
    response = await client.post("/api/v1/demandes", json=body, headers=headers)
    assert response.status_code == 201, response.text
    filed: dict[str, Any] = response.json()
    return filed


async def _status(
    client: Client, staff: dict[str, str], demande_id: str, status: str, **extra: Any
):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/staff/v1/demandes/{demande_id}/status", json={"status": status, **extra}, headers=staff
    )


async def test_one_pothole_from_submission_to_reopening(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    camille = await sign_up(client, "camille@exemple.fr")
    phone = await device(client)
    resident = {**phone, **bearer(camille)}
    pothole = await _file(client, commune, categories.pothole, resident)
    agent = bearer(await log_in(client, commune.agent["email"]))

    inbox = (await client.get("/staff/v1/demandes", headers=agent)).json()
    assert [d["reference"] for d in inbox["items"]] == [pothole["reference"]]
    steps = [
        ("in_progress", "Une équipe passera cette semaine."),
        ("resolved", "Réparé : le trou a été rebouché."),
    ]
    for status, message in steps:
        response = await _status(client, agent, pothole["id"], status, message=message)
        assert response.status_code == 200, response.text
    await client.post(
        f"/staff/v1/demandes/{pothole['id']}/notes",
        json={"text": "Enrobé à froid, à reprendre au printemps."},
        headers=agent,
    )
    seen = (await client.get(f"/api/v1/demandes/{pothole['id']}", headers=resident)).json()
    assert seen["status"] == "resolved" and seen["canReopen"] is True
    assert "Enrobé" not in str(seen)  # internal notes never reach the resident

    reopened = await client.post(
        f"/api/v1/demandes/{pothole['id']}/reopen",
        json={"reason": "Le trou est revenu après la pluie."},
        headers=resident,
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "in_progress"
    timeline = [(e["kind"], e["statusTo"]) for e in reopened.json()["timeline"]]
    assert timeline == [
        ("created", "received"),
        ("acknowledgment", ""),
        ("acknowledgment", "acknowledged"),
        ("status", "in_progress"),
        ("status", "resolved"),
        ("reopened", "in_progress"),
    ]
    again = await client.post(
        f"/api/v1/demandes/{pothole['id']}/reopen", json={"reason": "encore"}, headers=resident
    )
    assert again.status_code == 409

    # What the resident received: the acknowledgment, then one notification per step.
    titles = [
        i["title"] for i in (await client.get("/api/v1/inbox", headers=phone)).json()["items"]
    ]
    reference = pothole["reference"]
    assert titles == [
        f"Demande {reference} : En cours de traitement",
        f"Demande {reference} : Résolue",
        f"Demande {reference} : En cours de traitement",
        f"Demande {reference} enregistrée",
    ]
    subjects = [
        r["subject"]
        for r in await EmailMessage.select(EmailMessage.subject).order_by(EmailMessage.id)
    ]
    assert subjects == [
        f"Accusé d'enregistrement – demande {reference}",
        f"Accusé de réception – demande {reference}",
        f"Demande {reference} : En cours de traitement",
        f"Demande {reference} : Résolue",
        f"Demande {reference} : En cours de traitement",
    ]
    staff_view = (await client.get(f"/staff/v1/demandes/{pothole['id']}", headers=agent)).json()
    assert "Enrobé à froid, à reprendre au printemps." in [
        e["text"] for e in staff_view["timeline"]
    ]


async def test_invalid_transitions_and_unmotivated_rejections_are_refused(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    filed = await _file(client, commune, categories.pothole, await device(client))
    agent = bearer(await log_in(client, commune.agent["email"]))
    closed = await _status(client, agent, filed["id"], "closed")
    assert closed.status_code == 409
    assert "Impossible de passer de « Prise en compte » à « Clôturée »" in closed.json()["detail"]
    rejected = await _status(client, agent, filed["id"], "rejected")
    assert rejected.status_code == 422
    assert rejected.json()["errors"][0]["field"] == "reason"
    ok = await _status(client, agent, filed["id"], "rejected", reason="Voie privée.")
    assert ok.status_code == 200
    back = await _status(client, agent, filed["id"], "in_progress")
    assert back.status_code == 409
    unknown = await _status(client, agent, filed["id"], "lost")
    assert unknown.status_code == 422


async def test_agents_only_see_their_services(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    resident = await device(client)
    certificate = await _file(
        client, commune, categories.birth_certificate, resident, lat=None, lon=None
    )
    voirie_agent = bearer(await log_in(client, commune.agent["email"]))  # voirie only
    assert (
        await client.get(f"/staff/v1/demandes/{certificate['id']}", headers=voirie_agent)
    ).status_code == 404
    assert (
        await _status(client, voirie_agent, certificate["id"], "in_progress")
    ).status_code == 404
    assert (await client.get("/staff/v1/demandes", headers=voirie_agent)).json()["items"] == []
    admin = bearer(await log_in(client, commune.admin["email"]))
    assert (
        await client.get(f"/staff/v1/demandes/{certificate['id']}", headers=admin)
    ).status_code == 200
    comms = bearer(await log_in(client, commune.communication["email"]))
    assert (await client.get("/staff/v1/demandes", headers=comms)).status_code == 403
    citizen = bearer(await sign_up(client))
    assert (await client.get("/staff/v1/demandes", headers=citizen)).status_code == 403


async def test_inbox_filters_bulk_changes_and_assignment(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    resident = await device(client)
    filed = [await _file(client, commune, categories.pothole, resident) for _ in range(3)]
    graffiti = await _file(client, commune, categories.graffiti, resident)
    agent = bearer(await log_in(client, commune.agent["email"]))
    by_category = await client.get(
        "/staff/v1/demandes", params={"categoryId": str(categories.graffiti)}, headers=agent
    )
    assert [d["id"] for d in by_category.json()["items"]] == [graffiti["id"]]
    found = await client.get(
        "/staff/v1/demandes", params={"q": filed[0]["reference"]}, headers=agent
    )
    assert [d["id"] for d in found.json()["items"]] == [filed[0]["id"]]
    page = (await client.get("/staff/v1/demandes", params={"limit": 2}, headers=agent)).json()
    rest = (
        await client.get(
            "/staff/v1/demandes", params={"limit": 2, "cursor": page["nextCursor"]}, headers=agent
        )
    ).json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 2 and rest["nextCursor"] is None

    await _status(client, agent, filed[2]["id"], "rejected", reason="Hors domaine public.")
    bulk = await client.post(
        "/staff/v1/demandes/status",
        json={"ids": [f["id"] for f in filed], "status": "in_progress"},
        headers=agent,
    )
    results = bulk.json()
    assert [results[f["id"]] for f in filed[:2]] == ["ok", "ok"]
    assert "Impossible de passer" in results[filed[2]["id"]]

    assigned = await client.post(
        f"/staff/v1/demandes/{filed[0]['id']}/assign",
        json={"agentId": str(commune.agent["id"])},
        headers=agent,
    )
    assert assigned.json()["agentId"] == str(commune.agent["id"])
    wrong = await client.post(
        f"/staff/v1/demandes/{filed[0]['id']}/assign",
        json={"agentId": str(commune.communication["id"])},
        headers=agent,
    )
    assert wrong.status_code == 422
    moved = await client.post(
        f"/staff/v1/demandes/{filed[1]['id']}/assign",
        json={"serviceId": str(commune.etat_civil_id)},
        headers=agent,
    )
    assert moved.json()["serviceId"] == str(commune.etat_civil_id)
    gone = await client.get(f"/staff/v1/demandes/{filed[1]['id']}", headers=agent)
    assert gone.status_code == 404  # now another service's


async def test_merging_a_duplicate_moves_its_followers(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    first_phone, second_phone, neighbour = (
        await device(client),
        await device(client),
        await device(client),
    )
    original = await _file(client, commune, categories.pothole, first_phone)
    duplicate = await _file(client, commune, categories.pothole, second_phone)
    followed = await client.put(f"/api/v1/reports/{duplicate['id']}/follow", headers=neighbour)
    assert followed.status_code == 204
    agent = bearer(await log_in(client, commune.agent["email"]))
    missing = await _status(client, agent, duplicate["id"], "duplicate")
    assert missing.status_code == 422
    merged = await _status(client, agent, duplicate["id"], "duplicate", duplicateOf=original["id"])
    assert merged.status_code == 200
    assert merged.json()["duplicateOf"] == original["id"]
    followers = await Follower.count().where(Follower.demande == original["id"])
    assert followers == 3  # its own filer, the duplicate's filer, and the neighbour
    await _status(client, agent, original["id"], "in_progress", message="Intervention prévue.")
    titles = [
        i["title"] for i in (await client.get("/api/v1/inbox", headers=neighbour)).json()["items"]
    ]
    assert titles[0] == f"Demande {original['reference']} : En cours de traitement"


async def test_moderation_hides_reports_and_redacts_photos(client: Client, app: Litestar) -> None:
    from tests.demandes.factories import jpeg, report_fields

    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    parts = [(k, (None, v)) for k, v in report_fields(commune, categories.graffiti).items()]
    parts.append(("photos", ("IMG.jpg", jpeg(seed=3), "image/jpeg")))
    report = (await client.post("/api/v1/reports", files=parts, headers=phone)).json()
    url = report["photos"][0]["url"].removeprefix("http://127.0.0.1:8000")
    assert (await client.get(url)).status_code == 200
    agent = bearer(await log_in(client, commune.agent["email"]))
    redacted = await client.post(
        f"/staff/v1/demandes/photos/{report['photos'][0]['id']}/redact",
        json={"reason": "Plaque d'immatriculation lisible."},
        headers=agent,
    )
    assert redacted.status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"/api/v1/reports/{report['id']}")).json()["photos"] == []
    staff_view = (await client.get(f"/staff/v1/demandes/{report['id']}", headers=agent)).json()
    assert len(staff_view["photos"]) == 1
    bbox = {"bbox": "-1.70,48.10,-1.66,48.12"}
    assert len((await client.get("/api/v1/reports/map", params=bbox)).json()["features"]) == 1
    hidden = await client.post(
        f"/staff/v1/demandes/{report['id']}/moderation",
        json={"hidden": True, "reason": "Propos injurieux."},
        headers=agent,
    )
    assert hidden.status_code == 204
    assert (await client.get("/api/v1/reports/map", params=bbox)).json()["features"] == []
    assert (await client.get(f"/api/v1/reports/{report['id']}")).status_code == 404


async def test_overdue_demandes_are_listed_and_reminded_once_a_day(
    client: Client, app: Litestar
) -> None:
    from backend.organisation.tables import Service

    commune = await make_commune(app)
    categories = await make_categories(commune)
    await Service.update({Service.email: "voirie@mairie.fr"}).where(Service.id == commune.voirie_id)
    filed = await _file(client, commune, categories.pothole, await device(client))
    await Demande.update({Demande.due_at: datetime.now(UTC) - timedelta(days=1)}).where(
        Demande.id == filed["id"]
    )
    agent = bearer(await log_in(client, commune.agent["email"]))
    overdue = (await client.get("/staff/v1/demandes/overdue", headers=agent)).json()
    assert [d["reference"] for d in overdue] == [filed["reference"]]
    assert overdue[0]["overdue"] is True
    assert await remind_overdue() == 1
    assert await remind_overdue() == 0  # not twice the same day
    assert await remind_overdue(datetime.now(UTC) + timedelta(days=1, hours=1)) == 1
    reminders = await EmailMessage.select().where(EmailMessage.to_address == "voirie@mairie.fr")
    assert len(reminders) == 2
    assert filed["reference"] in reminders[0]["body_text"]


async def test_agents_record_phone_and_counter_demandes(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    agent = bearer(await log_in(client, commune.agent["email"]))
    recorded = await client.post(
        "/staff/v1/demandes",
        json={
            "categoryId": str(categories.pothole),
            "description": "Appel de M. Durand : nid-de-poule rue de Brest.",
            "channel": "phone",
            "contactName": "Jean Durand",
            "contactEmail": "Jean.Durand@Exemple.fr",
            "lat": RENNES[0],
            "lon": RENNES[1],
        },
        headers=agent,
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["channel"] == "phone"
    created = recorded.json()["timeline"][0]
    assert created["kind"] == "created"
    recipients = {r["to_address"] for r in await EmailMessage.select(EmailMessage.to_address)}
    assert recipients == {"jean.durand@exemple.fr"}
    nobody = await client.post(
        "/staff/v1/demandes",
        json={
            "categoryId": str(categories.birth_certificate),
            "description": "Courrier sans coordonnées",
            "channel": "mail",
        },
        headers=agent,
    )
    assert nobody.status_code == 422


async def test_resolved_demandes_close_after_the_reopening_period(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    resident = await device(client)
    filed = await _file(client, commune, categories.pothole, resident)
    agent = bearer(await log_in(client, commune.agent["email"]))
    await _status(client, agent, filed["id"], "resolved")
    await Demande.update({Demande.resolved_at: datetime.now(UTC) - timedelta(days=31)}).where(
        Demande.id == filed["id"]
    )
    late = await client.post(
        f"/api/v1/demandes/{filed['id']}/reopen", json={"reason": "Pas réparé"}, headers=resident
    )
    assert late.status_code == 409
    assert "délai de 30 jours" in late.json()["detail"]
    assert await close_resolved(30) == 1
    row = await Demande.select(Demande.status).where(Demande.id == filed["id"]).first()
    assert row is not None and row["status"] == "closed"


async def test_concurrent_demandes_get_distinct_references(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    resident = await device(client)
    filed = await asyncio.gather(
        *(_file(client, commune, categories.pothole, resident) for _ in range(10))
    )
    references = sorted(f["reference"] for f in filed)
    assert len(set(references)) == 10
    numbers = [int(r.split("-")[1]) for r in references]
    assert numbers == list(range(numbers[0], numbers[0] + 10))


async def test_the_category_tree_is_cached_by_version(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    first = await client.get("/api/v1/categories", params={"communeId": str(commune.id)})
    tree = first.json()
    names = {c["name"]: c for c in tree["categories"]}
    assert names["Nid-de-poule"]["parentId"] == str(categories.voirie)
    cached = await client.get(
        "/api/v1/categories",
        params={"communeId": str(commune.id)},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert cached.status_code == 304
    admin = bearer(await log_in(client, commune.admin["email"]))
    renamed = await client.patch(
        f"/staff/v1/categories/{categories.pothole}", json={"name": "Nid de poule"}, headers=admin
    )
    assert renamed.status_code == 200
    fresh = await client.get(
        "/api/v1/categories",
        params={"communeId": str(commune.id)},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert fresh.status_code == 200
    assert fresh.json()["version"] != tree["version"]
    assert PASSWORD
