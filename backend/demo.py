"""Demo data: a commune with its services and one account per role, loaded once."""

from __future__ import annotations

from dataclasses import dataclass

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
    from uuid import UUID

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
    await create_account(
        email="citoyen@breal-demo.fr",
        password=DEMO_PASSWORD,
        display_name="Camille Citoyenne",
        role="citizen",
        settings=ts,
        commune_id=commune["id"],
    )
    return [
        DemoAccount("admin", "admin@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("agent", "agent@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("communication", "communication@breal-demo.fr", DEMO_PASSWORD),
        DemoAccount("citizen", "citoyen@breal-demo.fr", DEMO_PASSWORD),
    ]
