"""Demo data: a commune with its services and one account per role, loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from backend.accounts.service import TokenSettings, create_account
from backend.organisation import service as organisation
from backend.organisation.tables import Commune
from backend.settings import Settings

DEMO_PASSWORD = "Relais-demo-2026"
DEMO_INSEE = "35037"


@dataclass(frozen=True)
class DemoAccount:
    """Credentials printed for the person trying Relais."""

    role: str
    email: str
    password: str


def _token_settings(settings: Settings) -> TokenSettings:
    return TokenSettings(
        settings.secret_key,
        settings.access_token_ttl,
        settings.refresh_token_ttl,
        settings.argon2_memory_kib,
    )


def _ring(lat: float, lon: float, radius_m: float, sides: int) -> list[list[float]]:
    import math

    points = []
    for i in range(sides):
        angle = 2 * math.pi * i / sides
        dlat = radius_m * math.cos(angle) / 111_320
        dlon = radius_m * math.sin(angle) / (111_320 * math.cos(math.radians(lat)))
        points.append([round(lon + dlon, 6), round(lat + dlat, 6)])
    return [*points, points[0]]


async def _demo_zones(commune_id: object) -> None:
    """The commune's outline (approximate) and its centre-bourg quartier."""
    from alerts.zones import create_zone

    assert isinstance(commune_id, UUID)
    center = (48.0446, -1.8650)
    await create_zone(
        commune_id,
        "Bréal-sous-Montfort",
        DEMO_INSEE,
        "commune",
        {"type": "Polygon", "coordinates": [_ring(*center, 3500, 24)]},
    )
    await create_zone(
        commune_id,
        "Centre-bourg",
        "centre-bourg",
        "quartier",
        {"type": "Polygon", "coordinates": [_ring(*center, 600, 12)]},
    )


async def _demo_reports(
    commune_id: UUID, services: dict[str, Any], citizen_id: UUID, settings: Settings
) -> None:
    """A small category tree and a few reports on the map."""
    from backend.demandes.categories import create_category
    from backend.demandes.service import NewDemande, file_demande

    tree = {}
    for parent, service, children in [
        ("Voirie", "Voirie", [("Nid-de-poule", True), ("Trottoir abîmé", True)]),
        ("Éclairage public", "Éclairage public", [("Lampadaire en panne", True)]),
        ("Propreté", "Propreté", [("Dépôt sauvage", True), ("Tag ou graffiti", True)]),
        ("État civil", "État civil", [("Acte de naissance", False)]),
    ]:
        top = await create_category(
            commune_id, {"name": parent, "service_id": services[service]["id"]}
        )
        for name, on_map in children:
            child = await create_category(
                commune_id,
                {
                    "name": name,
                    "parent_id": top["id"],
                    "service_id": services[service]["id"],
                    "needs_location": on_map,
                    "public": on_map,
                    "sla_days": 7 if on_map else 10,
                },
            )
            tree[name] = child["id"]
    for category, description, lat, lon in [
        ("Nid-de-poule", "Nid-de-poule profond devant l'école.", 48.0452, -1.8641),
        ("Lampadaire en panne", "Lampadaire éteint depuis trois jours.", 48.0431, -1.8672),
        ("Dépôt sauvage", "Sacs et encombrants au pied des conteneurs.", 48.0467, -1.8619),
    ]:
        await file_demande(
            NewDemande(
                commune_id=commune_id,
                category_id=tree[category],
                description=description,
                requester_id=citizen_id,
                lat=lat,
                lon=lon,
                location_source="pin",
            ),
            settings.daily_push_cap,
        )


async def _demo_site(commune_id: UUID) -> None:
    """The town hall's ID-card and passport desk: one counter, open on weekdays and Saturday."""
    from datetime import date
    from uuid import uuid4

    from backend.appointments.tables import Counter, OpeningRule, Site

    site_id, counter_id = uuid4(), uuid4()
    await Site.insert(
        Site(
            id=site_id,
            commune=commune_id,
            name="Mairie de Bréal-sous-Montfort – titres d'identité",
            address="Place de l'Église",
            zip_code="35310",
            city="Bréal-sous-Montfort",
            lat=48.0446,
            lon=-1.8650,
            phone="02 99 60 40 21",
            email="titres@breal-demo.fr",
        )
    )
    await Counter.insert(Counter(id=counter_id, site=site_id, name="Guichet titres"))
    hours = [(d, "09:00", "12:00") for d in range(6)] + [(d, "14:00", "17:00") for d in range(5)]
    await OpeningRule.insert(
        *[
            OpeningRule(
                counter=counter_id,
                weekday=day,
                start_time=start,
                end_time=end,
                valid_from=date(2026, 1, 1),
            )
            for day, start, end in hours
        ]
    )


async def load_demo(settings: Settings) -> list[DemoAccount] | None:
    """Create the demo commune and accounts; None when they already exist."""
    if await Commune.exists().where(Commune.insee_code == DEMO_INSEE):
        return None
    ts = _token_settings(settings)
    commune = await organisation.create_commune(
        "Bréal-sous-Montfort",
        DEMO_INSEE,
        address="Place de l'Église, 35310 Bréal-sous-Montfort",
        phone="02 99 60 40 21",
        email="mairie@breal-demo.fr",
    )
    services = {}
    for name, phone in [
        ("Voirie", "02 99 60 40 30"),
        ("Propreté", "02 99 60 40 31"),
        ("Éclairage public", "02 99 60 40 32"),
        ("État civil", "02 99 60 40 21"),
        ("Communication", "02 99 60 40 40"),
    ]:
        services[name] = await organisation.create_service(
            commune["id"],
            None,
            {"name": name, "phone": phone, "address": "Place de l'Église, 35310 Bréal"},
        )
    admin = await create_account(
        email="admin@breal-demo.fr",
        password=DEMO_PASSWORD,
        display_name="Alix Admin",
        role="admin",
        settings=ts,
        commune_id=commune["id"],
    )
    staff = [
        ("agent@breal-demo.fr", "Agathe Agent", "agent", ["Voirie", "Propreté", "État civil"]),
        ("communication@breal-demo.fr", "Côme Communication", "communication", ["Communication"]),
    ]
    for email, name, role, service_names in staff:
        await organisation.create_staff(
            commune_id=commune["id"],
            actor_id=admin["id"],
            email=email,
            password=DEMO_PASSWORD,
            display_name=name,
            role=role,
            service_ids=[services[s]["id"] for s in service_names],
            settings=ts,
        )
    await _demo_zones(commune["id"])
    citizen = await create_account(
        email="citoyen@breal-demo.fr",
        password=DEMO_PASSWORD,
        display_name="Camille Citoyenne",
        role="citizen",
        settings=ts,
        commune_id=commune["id"],
    )
    await _demo_reports(commune["id"], services, citizen["id"], settings)
    await _demo_site(commune["id"])
    return [
        DemoAccount("admin", "admin@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("agent", "agent@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("communication", "communication@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("citizen", "citoyen@breal-demo.fr", DEMO_PASSWORD),
    ]
