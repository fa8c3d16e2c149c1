"""Arrange helpers for demandes: categories of a commune, phone-like photos."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from backend.demandes.categories import create_category
from tests.factories import Client, Commune
from tests.media.factories import gps_exif, photo_like

RENNES = (48.1113, -1.6800)


@dataclass
class Categories:
    """Voirie › Nid-de-poule (a public report with a place) and État civil › Acte de naissance."""

    voirie: UUID
    pothole: UUID
    birth_certificate: UUID
    graffiti: UUID


async def make_categories(commune: Commune) -> Categories:
    """A small category tree with routing to the commune's services."""
    voirie = await create_category(commune.id, {"name": "Voirie", "service_id": commune.voirie_id})
    pothole = await create_category(
        commune.id,
        {
            "name": "Nid-de-poule",
            "parent_id": voirie["id"],
            "service_id": commune.voirie_id,
            "needs_location": True,
            "public": True,
            "sla_days": 5,
        },
    )
    graffiti = await create_category(
        commune.id,
        {
            "name": "Tag ou graffiti",
            "service_id": commune.voirie_id,
            "needs_location": True,
            "public": True,
            "allows_anonymous": True,
        },
    )
    certificate = await create_category(
        commune.id,
        {"name": "Acte de naissance", "service_id": commune.etat_civil_id, "sla_days": 10},
    )
    return Categories(voirie["id"], pothole["id"], certificate["id"], graffiti["id"])


def jpeg(
    *, gps: tuple[float, float] | None = None, size: tuple[int, int] = (800, 600), seed: int = 0
) -> bytes:
    """A phone-like JPEG, with EXIF GPS when asked."""
    image = photo_like(*size, seed=seed)
    buffer = io.BytesIO()
    params: dict[str, Any] = {"quality": 85}
    if gps is not None:
        params["exif"] = gps_exif(*gps).tobytes()
    image.save(buffer, "JPEG", **params)
    return buffer.getvalue()


def report_fields(commune: Commune, category: UUID, **extra: Any) -> dict[str, str]:
    """The form fields of a report (multipart values are strings)."""
    fields = {
        "communeId": str(commune.id),
        "categoryId": str(category),
        "description": "Nid-de-poule profond devant le 12, dangereux pour les vélos.",
        "lat": str(RENNES[0]),
        "lon": str(RENNES[1]),
    }
    fields.update({k: str(v) for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        fields.pop(key, None)
    return fields


async def file_report(client: Client, fields: dict[str, str], photos: list[bytes], **headers: str):  # type: ignore[no-untyped-def]
    """POST a report as the app sends it: multipart, the fields as form parts, then the photos."""
    parts: list[tuple[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]]] = [
        (name, (None, value)) for name, value in fields.items()
    ]
    parts += [("photos", (f"IMG_{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return await client.post("/api/v1/reports", files=parts, headers=headers)
