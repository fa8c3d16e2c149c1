"""Public CAP 1.2 feed: the Atom feed of alerts in force, and every CAP message by id."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from alerts import crisis
from alerts.cap_export import atom_of_active, cap_document
from alerts.tables import Alert
from backend.exceptions import NotFound
from backend.organisation.tables import Commune
from backend.settings import Settings

CAP_XML = "application/cap+xml"
ATOM_XML = "application/atom+xml"


async def _insee(commune_id: Any) -> str | None:
    if commune_id is None:
        return None
    row = await Commune.select(Commune.insee_code).where(Commune.id == commune_id).first()
    return row["insee_code"] if row else None


def _conditional(request: Request[Any, Any, Any], body: bytes, media_type: str) -> Response[bytes]:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=30"}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    return Response(body, media_type=media_type, headers=headers)


class CapController(Controller):
    """CAP 1.2 for aggregators (Google Public Alerts, national relays) and anyone else."""

    path = "/cap/v1/alerts"
    tags = ["Interopérabilité"]

    @get("/", operation_id="capAtomFeed")
    async def feed(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        """Atom feed of the alerts in force; each entry links to its CAP document."""
        active = await crisis.active_alerts()
        alerts = [(a, await _insee(a["commune"])) for a in active]
        updated = max((a["sent_at"] for a in active), default=datetime(2026, 1, 1, tzinfo=UTC))
        body = atom_of_active(
            alerts, sender=settings.alert_sender, public_url=settings.public_url, updated=updated
        )
        return _conditional(request, body, ATOM_XML)

    @get("/{message_id:uuid}", operation_id="capMessage")
    async def message(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[UUID],
        settings: NamedDependency[Settings],
    ) -> Response[bytes]:
        """One CAP message (Alert, Update or Cancel), drafts excepted."""
        row = (
            await Alert.select()
            .where((Alert.id == message_id) & (Alert.state != "draft"))
            .output(load_json=True)
            .first()
        )
        if row is None:
            raise NotFound("Ce message d'alerte est introuvable.")
        body = cap_document(
            row, sender=settings.alert_sender, insee=await _insee(row["commune"]), web=None
        )
        return _conditional(request, body, CAP_XML)
