"""Staff HTTP API for zones and crisis alerts."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from alerts import crisis, zones
from alerts.crisis import AlertContent
from backend.audit.service import entries_for
from backend.auth import Principal
from backend.guards import alerts_staff_required, staff_required
from backend.organisation.service import get_commune
from backend.settings import Settings
from backend.staff_api.alert_schemas import (
    AlertCancel,
    AlertChange,
    AlertIn,
    AreaPreviewIn,
    AuditOut,
    DeliveryReport,
    Reach,
    StaffAlertOut,
    ZoneDetail,
    ZoneIn,
)
from mobile_api.schemas import ZoneOut, changes


def _out(row: dict[str, Any]) -> StaffAlertOut:
    return StaffAlertOut(
        id=row["chain"],
        message_id=row["id"],
        identifier=row["identifier"],
        state=row["state"],
        msg_type=row["msg_type"],
        severity=row["severity"],
        event=row["event"],
        headline=row["headline"],
        description=row["description"],
        instruction=row["instruction"],
        area=row["area"],
        area_description=row["area_description"],
        expires_at=row["expires_at"],
        sent_at=row["sent_at"],
        targeted_devices=row["targeted_devices"],
        targeted_places=row["targeted_places"],
        translations=row["translations"],
    )


def _detail(row: dict[str, Any]) -> ZoneDetail:
    return ZoneDetail(
        id=row["id"],
        name=row["name"],
        code=row["code"],
        kind=row["kind"],
        area_km2=round(row["area_km2"], 3),
        geometry=row["geometry"],
    )


class StaffZoneController(Controller):
    """Zones of the commune: every staff member reads them, alert staff draw new ones."""

    path = "/zones"
    tags = ["Alertes"]
    guards = [staff_required("agent", "communication")]

    @get("/", operation_id="listCommuneZones")
    async def list_zones(self, commune_id: NamedDependency[UUID]) -> list[ZoneOut]:
        """The commune's zones."""
        return [ZoneOut.from_row(r) for r in await zones.list_zones(commune_id)]

    @get("/{zone_id:uuid}", operation_id="getZone")
    async def get_zone(
        self, zone_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> ZoneDetail:
        """One zone with its geometry."""
        return _detail(await zones.get_zone(commune_id, zone_id))

    @post(
        "/",
        operation_id="createZone",
        status_code=HTTP_201_CREATED,
        guards=[alerts_staff_required],
        opt={"idempotent": True},
    )
    async def create_zone(
        self, data: JSONBody[ZoneIn], commune_id: NamedDependency[UUID]
    ) -> ZoneDetail:
        """Draw a new zone."""
        row = await zones.create_zone(commune_id, data.name, data.code, data.kind, data.geometry)
        return _detail(row)


class StaffAlertController(Controller):
    """Prepare, preview, send, update and lift crisis alerts."""

    path = "/alerts"
    tags = ["Alertes"]
    guards = [alerts_staff_required]

    @get("/", operation_id="listAlerts")
    async def list_alerts(self, commune_id: NamedDependency[UUID]) -> list[StaffAlertOut]:
        """Every alert of the commune (its newest message), newest first."""
        return [_out(r) for r in await crisis.list_alerts(commune_id)]

    @post("/", operation_id="createAlert", status_code=HTTP_201_CREATED, opt={"idempotent": True})
    async def create_alert(
        self,
        data: JSONBody[AlertIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
    ) -> StaffAlertOut:
        """Prepare an alert (a draft: nothing is sent yet)."""
        commune = await get_commune(commune_id)
        content = AlertContent(
            severity=data.severity,
            event=data.event,
            headline=data.headline,
            description=data.description,
            instruction=data.instruction,
            area=data.area,
            expires_at=data.expires_at,
            category=data.category,
            translations={lang: _plain(t) for lang, t in data.translations.items()},
        )
        row = await crisis.create_alert(
            commune_id, commune["insee_code"], principal.account_id, content
        )
        return _out(row)

    @post("/preview", operation_id="previewArea", status_code=HTTP_200_OK)
    async def preview_area(
        self, data: JSONBody[AreaPreviewIn], commune_id: NamedDependency[UUID]
    ) -> Reach:
        """How many devices and places an area reaches, before preparing an alert."""
        reach = await crisis.preview_area(commune_id, data.area)
        return Reach(devices=reach.devices, places=reach.places)

    @get("/{alert_id:uuid}", operation_id="getAlert")
    async def get_alert(
        self, alert_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> StaffAlertOut:
        """One alert (its newest message)."""
        return _out(await crisis.get_alert(commune_id, alert_id))

    @get("/{alert_id:uuid}/preview", operation_id="previewAlert")
    async def preview_alert(
        self, alert_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> Reach:
        """How many devices and places the alert will reach if sent now."""
        reach = await crisis.preview_alert(commune_id, alert_id)
        return Reach(devices=reach.devices, places=reach.places)

    @post("/{alert_id:uuid}/send", operation_id="sendAlert", status_code=HTTP_200_OK)
    async def send(
        self,
        alert_id: FromPath[UUID],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> StaffAlertOut:
        """Send the draft to every device in its area."""
        row = await crisis.send_alert(
            commune_id, alert_id, principal.account_id, settings.daily_push_cap
        )
        return _out(row)

    @post("/{alert_id:uuid}/update", operation_id="updateAlert", status_code=HTTP_200_OK)
    async def update(
        self,
        alert_id: FromPath[UUID],
        data: JSONBody[AlertChange],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> StaffAlertOut:
        """Send an update that replaces the alert on every phone that has it."""
        row = await crisis.update_alert(
            commune_id, alert_id, principal.account_id, changes(data), settings.daily_push_cap
        )
        return _out(row)

    @post("/{alert_id:uuid}/cancel", operation_id="cancelAlert", status_code=HTTP_200_OK)
    async def cancel(
        self,
        alert_id: FromPath[UUID],
        data: JSONBody[AlertCancel],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> StaffAlertOut:
        """Lift the alert: everyone who received it is told."""
        row = await crisis.cancel_alert(
            commune_id, alert_id, principal.account_id, data.note, settings.daily_push_cap
        )
        return _out(row)

    @delete("/{alert_id:uuid}", operation_id="deleteAlertDraft")
    async def delete_draft(
        self,
        alert_id: FromPath[UUID],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
    ) -> None:
        """Throw a draft away."""
        await crisis.delete_draft(commune_id, alert_id, principal.account_id)

    @get("/{alert_id:uuid}/report", operation_id="alertDeliveryReport")
    async def report(
        self, alert_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> DeliveryReport:
        """Targeted, sent, failed by reason, pruned credentials, read."""
        r = await crisis.delivery_report(commune_id, alert_id)
        return DeliveryReport(
            alert_id=alert_id,
            targeted=r["targeted"],
            sent=r["sent"],
            pending=r["pending"],
            inbox_only=r["inboxOnly"],
            failed=r["failed"],
            pruned=r["pruned"],
            expired=r["expired"],
            read=r["read"],
            failures=r["failures"],
            messages=r["messages"],
        )

    @get("/{alert_id:uuid}/audit", operation_id="alertAuditTrail")
    async def audit(
        self, alert_id: FromPath[UUID], commune_id: NamedDependency[UUID]
    ) -> list[AuditOut]:
        """Who did what to this alert, when."""
        await crisis.get_alert(commune_id, alert_id)
        return [
            AuditOut(
                action=e["action"],
                actor_id=e["actor_id"],
                detail=e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"]),
                created_at=e["created_at"],
            )
            for e in await entries_for("alert", alert_id)
        ]


def _plain(translation: Any) -> dict[str, str]:
    return {
        "headline": translation.headline,
        "description": translation.description,
        "instruction": translation.instruction,
    }
