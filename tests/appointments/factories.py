"""Arrange helpers for appointments: a site with counters and opening hours, through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from tests.factories import Client, Commune, bearer, log_in, make_commune


@dataclass
class SiteSetup:
    """A commune, its admin's headers, a site and its counters."""

    commune: Commune
    admin: dict[str, str]
    site_id: str
    counters: list[str]


async def make_site(
    client: Client,
    app: Litestar,
    *,
    counters: int = 1,
    horizon_days: int = 60,
    hours: tuple[tuple[str, str], ...] = (("09:00", "12:00"), ("14:00", "17:00")),
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
    commune: Commune | None = None,
    **policy: Any,
) -> SiteSetup:
    """A town-hall site open Monday to Saturday, with `counters` counters."""
    commune = commune or await make_commune(app)
    admin = bearer(await log_in(client, commune.admin["email"]))
    created = await client.post(
        "/staff/v1/appointments/sites",
        json={
            "name": "Mairie de Rennes – Hôtel de ville",
            "lat": 48.1113,
            "lon": -1.6800,
            "address": "Place de la Mairie",
            "zipCode": "35000",
            "city": "Rennes",
            "email": "titres@mairie-rennes.fr",
            "horizonDays": horizon_days,
            **policy,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    site_id = created.json()["id"]
    counter_ids = []
    for n in range(counters):
        counter = await client.post(
            f"/staff/v1/appointments/sites/{site_id}/counters",
            json={"name": f"Guichet {n + 1}"},
            headers=admin,
        )
        counter_ids.append(counter.json()["id"])
        for weekday in weekdays:
            for start, end in hours:
                rule = await client.post(
                    f"/staff/v1/appointments/counters/{counter.json()['id']}/rules",
                    json={
                        "weekday": weekday,
                        "start": start,
                        "end": end,
                        "validFrom": "2026-01-01",
                    },
                    headers=admin,
                )
                assert rule.status_code == 201, rule.text
    return SiteSetup(commune, admin, site_id, counter_ids)


async def first_slots(
    client: Client, site_id: str, reason: str = "CNI", persons: int = 1
) -> list[dict[str, Any]]:
    """The free slots of the site for the next weeks."""
    response = await client.get(
        "/api/v1/appointments/slots",
        params={"siteId": site_id, "reason": reason, "persons": persons},
    )
    assert response.status_code == 200, response.text
    slots: list[dict[str, Any]] = response.json()
    return slots
