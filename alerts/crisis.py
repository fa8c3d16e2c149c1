"""Crisis alerts: draft, preview, send, update, cancel — each message a CAP 1.2 message.

An alert is a chain of messages (the first Alert, its Updates, its Cancel) sharing `chain`.
Staff address the chain; residents see its newest message. Every action is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from alerts.outbox import Notification, notify_in_languages, notify_selection
from alerts.tables import Alert, Delivery, Message, Place, ZoneFollow
from alerts.targeting import (
    Reach,
    TargetArea,
    reach_of,
    recipients_in,
    recipients_of_devices,
    resolve_area,
    select_in,
)
from backend.audit.service import record
from backend.database import transaction
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from geo import Area, area_from_geojson, circle

LEVEL_LABELS = {
    "information": "Information",
    "avertissement": "Avertissement",
    "danger": "Danger",
    "urgence_extreme": "Urgence extrême",
}
MAX_DURATION = timedelta(days=30)


@dataclass(frozen=True)
class AlertContent:
    """What staff write: texts (French, plus optional translations), level, area, expiry."""

    severity: str
    event: str
    headline: str
    description: str
    instruction: str
    area: dict[str, Any]
    expires_at: datetime
    category: str = "Safety"
    translations: dict[str, dict[str, str]] = field(default_factory=dict)


def _check(content: AlertContent, now: datetime) -> None:
    errors: list[FieldError] = []
    if content.severity not in LEVEL_LABELS:
        errors.append(
            FieldError(
                "severity",
                "Niveau inconnu : information, avertissement, danger ou urgence_extreme.",
            )
        )
    if content.expires_at.tzinfo is None:
        errors.append(FieldError("expiresAt", "Indiquez le fuseau horaire (ex. +01:00)."))
    elif not now < content.expires_at <= now + MAX_DURATION:
        errors.append(FieldError("expiresAt", "L'échéance doit être dans le futur, sous 30 jours."))
    if errors:
        raise InvalidInput(
            "L'alerte est incomplète ou invalide : " + " ".join(e.message for e in errors),
            errors=errors,
        )


def _area_record(spec: dict[str, Any], target: TargetArea) -> dict[str, Any]:
    # The resolved geometry is kept with the spec: the CAP feed and the "my alerts" screen read
    # it without re-resolving zones that may have changed since.
    return {"spec": spec, "geometry": target.area.to_geojson()}


async def create_alert(
    commune_id: UUID, insee: str, actor_id: UUID | None, content: AlertContent
) -> dict[str, Any]:
    """Save a draft (nothing is sent); the area is resolved and checked now."""
    now = datetime.now(UTC)
    _check(content, now)
    target = await resolve_area(content.area, commune_id)
    alert_id = uuid4()
    async with transaction():
        await Alert.insert(
            Alert(
                id=alert_id,
                chain=alert_id,
                commune=commune_id,
                identifier=f"relais-{insee}-{alert_id.hex}",
                msg_type="Alert",
                state="draft",
                severity=content.severity,
                category=content.category,
                event=content.event,
                headline=content.headline,
                description=content.description,
                instruction=content.instruction,
                translations=content.translations,
                area=_area_record(content.area, target),
                area_description=target.description[:200],
                expires_at=content.expires_at,
                created_by=actor_id,
            )
        )
        await record(actor_id, "alert.create", "alert", alert_id, {"headline": content.headline})
    return await get_alert(commune_id, alert_id)


async def get_alert(commune_id: UUID, chain: UUID) -> dict[str, Any]:
    """The newest message of an alert (by its chain id), or NotFound."""
    row = (
        await Alert.select()
        .where((Alert.chain == chain) & (Alert.commune == commune_id))
        .order_by(Alert.created_at, ascending=False)
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound("Cette alerte est introuvable.")
    return row


async def list_alerts(commune_id: UUID) -> list[dict[str, Any]]:
    """Newest message of every alert of the commune, newest alert first."""
    rows = (
        await Alert.select()
        .where((Alert.commune == commune_id) & (Alert.state != "superseded"))
        .order_by(Alert.created_at, ascending=False)
        .output(load_json=True)
    )
    return rows


async def target_of(alert: dict[str, Any]) -> TargetArea:
    """The alert's area as stored when it was written."""
    spec = alert["area"]["spec"]
    area: Area
    if spec.get("kind") == "circle":
        center = spec["center"]
        area = circle(float(center["lat"]), float(center["lon"]), float(spec["radiusM"]))
    else:
        area = area_from_geojson(alert["area"]["geometry"])
    zone_ids = tuple(UUID(str(z)) for z in spec.get("zoneIds") or [])
    return TargetArea(area, zone_ids, alert["area_description"])


async def preview_area(commune_id: UUID, spec: dict[str, Any]) -> Reach:
    """How many devices and places an area would reach (before drawing is even saved)."""
    return await reach_of(await resolve_area(spec, commune_id))


async def preview_alert(commune_id: UUID, chain: UUID) -> Reach:
    """How many devices and places the alert will reach."""
    return await reach_of(await target_of(await get_alert(commune_id, chain)))


def _texts(alert: dict[str, Any], lang: str) -> dict[str, str]:
    texts = {
        "headline": alert["headline"],
        "description": alert["description"],
        "instruction": alert["instruction"],
    }
    if lang != "fr":
        texts.update({k: v for k, v in alert["translations"].get(lang, {}).items() if v})
    return texts


def _notifications(alert: dict[str, Any], now: datetime) -> dict[str, Notification]:
    """The alert's notification in each of its languages, French first (the default)."""
    level = alert["severity"]
    ttl = max(60, int((alert["expires_at"] - now).total_seconds()))
    out: dict[str, Notification] = {}
    for lang in ["fr", *(k for k in alert["translations"] if k != "fr")]:
        texts = _texts(alert, lang)
        if alert["msg_type"] == "Cancel":
            title = "Fin d'alerte" if lang == "fr" else "Alert ended"
            title = f"{title} : {texts['headline']}"
            body = alert["instruction"] or "L'alerte est levée."
        else:
            prefix = "Mise à jour – " if alert["msg_type"] == "Update" else ""
            title = f"{prefix}{LEVEL_LABELS[level]} : {texts['headline']}"
            body = texts["instruction"] or texts["description"]
        out[lang] = Notification(
            kind="alert",
            subject=f"alert:{alert['chain']}",
            title=title,
            body=body,
            level=level,
            data={
                "alertId": str(alert["chain"]),
                "messageId": str(alert["id"]),
                "msgType": alert["msg_type"],
                "level": level,
            },
            # One collapse key per alert: an update or cancellation replaces the earlier
            # notification on the phone (FCM collapse_key / APNs collapse-id / Web Push Topic).
            collapse_key=f"alert-{alert['chain'].hex[:24]}",
            ttl_seconds=ttl,
            expires_at=alert["expires_at"],
        )
    return out


async def _earlier_recipients(chain: UUID) -> list[UUID]:
    rows = await Delivery.raw(
        "SELECT DISTINCT d.device FROM delivery d JOIN message m ON m.id = d.message "
        "WHERE m.subject = {}",
        f"alert:{chain}",
    )
    return [r["device"] for r in rows]


async def send_alert(
    commune_id: UUID, chain: UUID, actor_id: UUID | None, daily_cap: int
) -> dict[str, Any]:
    """Send a draft: the outbox rows are written in the same transaction as the state change."""
    now = datetime.now(UTC)
    alert = await get_alert(commune_id, chain)
    if alert["expires_at"] <= now:
        raise Conflict("Cette alerte a déjà expiré : modifiez son échéance avant de l'envoyer.")
    target = await target_of(alert)
    async with transaction():
        claimed = (
            await Alert.update({Alert.state: "sent", Alert.sent_at: now})
            .where((Alert.id == alert["id"]) & (Alert.state == "draft"))
            .returning(Alert.id)
        )
        if not claimed:  # the conditional update is the lock: one send, however many clicks
            raise Conflict("Cette alerte a déjà été envoyée.")
        alert = {**alert, "state": "sent", "sent_at": now}
        selection = await select_in(target)
        results = await notify_selection(
            _notifications(alert, now), selection, daily_cap=daily_cap, now=now
        )
        message_ids = [r.message_id for r in results]
        targeted, places = sum(r.targeted for r in results), selection.places
        await Alert.update(
            {
                Alert.targeted_devices: targeted,
                Alert.targeted_places: places,
                Alert.message: message_ids[0] if message_ids else None,
            }
        ).where(Alert.id == alert["id"])
        await record(actor_id, "alert.send", "alert", chain, {"devices": targeted})
    return await get_alert(commune_id, chain)


async def _follow_up(
    commune_id: UUID,
    chain: UUID,
    actor_id: UUID | None,
    msg_type: str,
    changes: dict[str, Any],
    daily_cap: int,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    previous = await get_alert(commune_id, chain)
    if previous["state"] == "draft":
        raise Conflict("Cette alerte n'a pas encore été envoyée : modifiez le brouillon.")
    if previous["msg_type"] == "Cancel":
        raise Conflict("Cette alerte est déjà levée.")
    fields = {
        key: changes.get(key, previous[key])
        for key in (
            "severity",
            "event",
            "headline",
            "description",
            "instruction",
            "translations",
            "expires_at",
            "category",
        )
    }
    area_spec = changes.get("area") or previous["area"]["spec"]
    _check(AlertContent(area=area_spec, **fields), now)
    target = await resolve_area(area_spec, commune_id) if "area" in changes else None
    new_id = uuid4()
    references = [
        *previous["cap_references"],
        [previous["identifier"], previous["sent_at"].isoformat()],
    ]
    async with transaction():
        superseded = (
            await Alert.update({Alert.state: "superseded"})
            .where((Alert.id == previous["id"]) & (Alert.state == "sent"))
            .returning(Alert.id)
        )
        if not superseded:
            raise Conflict("L'alerte vient d'être modifiée par quelqu'un d'autre. Rechargez-la.")
        area_record = _area_record(area_spec, target) if target is not None else previous["area"]
        await Alert.insert(
            Alert(
                id=new_id,
                chain=chain,
                commune=commune_id,
                identifier=f"{previous['identifier'].rsplit('-', 1)[0]}-{new_id.hex}",
                msg_type=msg_type,
                state="sent",
                cap_references=references,
                area=area_record,
                area_description=(target.description if target else previous["area_description"])[
                    :200
                ],
                sent_at=now,
                created_by=actor_id,
                **fields,
            )
        )
        alert = await get_alert(commune_id, chain)
        # Whoever had the earlier message gets this one (to replace it on the phone), plus,
        # for an update, everyone now inside the (possibly new) area.
        recipients = await recipients_of_devices(await _earlier_recipients(chain))
        places = previous["targeted_places"]
        if msg_type == "Update":
            inside, places = await recipients_in(await target_of(alert))
            recipients = [*recipients, *inside]
        results = await notify_in_languages(
            _notifications(alert, now), recipients, daily_cap=daily_cap, now=now
        )
        message_ids, targeted = [r.message_id for r in results], sum(r.targeted for r in results)
        await Alert.update(
            {
                Alert.targeted_devices: targeted,
                Alert.targeted_places: places,
                Alert.message: message_ids[0] if message_ids else None,
            }
        ).where(Alert.id == new_id)
        await record(
            actor_id,
            f"alert.{msg_type.lower()}",
            "alert",
            chain,
            {"changes": sorted(changes), "devices": targeted},
        )
    return await get_alert(commune_id, chain)


async def update_alert(
    commune_id: UUID,
    chain: UUID,
    actor_id: UUID | None,
    changes: dict[str, Any],
    daily_cap: int,
) -> dict[str, Any]:
    """Send an Update: a new message that replaces the earlier one on every phone."""
    return await _follow_up(commune_id, chain, actor_id, "Update", changes, daily_cap)


async def cancel_alert(
    commune_id: UUID, chain: UUID, actor_id: UUID | None, note: str, daily_cap: int
) -> dict[str, Any]:
    """Lift the alert: a Cancel message to everyone who received it."""
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"expires_at": now + timedelta(hours=1)}
    if note:
        changes["instruction"] = note
    return await _follow_up(commune_id, chain, actor_id, "Cancel", changes, daily_cap)


async def delete_draft(commune_id: UUID, chain: UUID, actor_id: UUID | None) -> None:
    """Throw a draft away."""
    alert = await get_alert(commune_id, chain)
    if alert["state"] != "draft":
        raise Conflict("Une alerte envoyée ne peut pas être supprimée : levez-la.")
    async with transaction():
        await Alert.delete().where((Alert.id == alert["id"]) & (Alert.state == "draft"))
        await record(actor_id, "alert.delete", "alert", chain)


async def delivery_report(commune_id: UUID, chain: UUID) -> dict[str, Any]:
    """Targeted, sent, failed by reason, pruned credentials, pending, read — over the chain."""
    alert = await get_alert(commune_id, chain)
    messages = await Message.select(Message.id).where(Message.subject == f"alert:{chain}")
    ids = [m["id"] for m in messages]
    report: dict[str, Any] = {
        "alertId": str(chain),
        "targeted": 0,
        "sent": 0,
        "pending": 0,
        "inboxOnly": 0,
        "failed": 0,
        "pruned": 0,
        "expired": 0,
        "read": 0,
        "failures": {},
        "messages": len(ids),
        "currentTargeted": alert["targeted_devices"],
    }
    if not ids:
        return report
    marks = ", ".join("{}" for _ in ids)
    rows = await Delivery.raw(
        "SELECT status, last_error, COUNT(*) AS n, COUNT(read_at) AS r FROM delivery "
        f"WHERE message IN ({marks}) GROUP BY status, last_error",
        *ids,
    )
    mapping = {
        "sent": "sent",
        "pending": "pending",
        "sending": "pending",
        "inbox": "inboxOnly",
        "capped": "inboxOnly",
        "failed": "failed",
        "dead": "pruned",
        "expired": "expired",
    }
    for row in rows:
        report["targeted"] += row["n"]
        report["read"] += row["r"]
        key = mapping.get(row["status"], "failed")
        report[key] += row["n"]
        if row["status"] in {"failed", "dead"}:
            reason = row["last_error"] or row["status"]
            report["failures"][reason] = report["failures"].get(reason, 0) + row["n"]
    return report


async def active_alerts(now: datetime | None = None) -> list[dict[str, Any]]:
    """The newest message of every alert still in force (sent, not lifted, not expired)."""
    now = now or datetime.now(UTC)
    return (
        await Alert.select()
        .where((Alert.state == "sent") & (Alert.msg_type != "Cancel") & (Alert.expires_at > now))
        .order_by(Alert.sent_at, ascending=False)
        .output(load_json=True)
    )


async def alerts_for_device(device_id: UUID) -> list[dict[str, Any]]:
    """Active alerts concerning the device: one of its places is inside, it follows one of the
    zones, or it received the alert. Someone who installs the app mid-crisis sees it too."""
    alerts = await active_alerts()
    if not alerts:
        return []
    places = await Place.select(Place.lat, Place.lon).where(Place.device == device_id)
    zones = {
        r["zone"]
        for r in await ZoneFollow.select(ZoneFollow.zone).where(ZoneFollow.device == device_id)
    }
    received = {
        r["subject"]
        for r in await Delivery.raw(
            "SELECT DISTINCT m.subject FROM delivery d JOIN message m ON m.id = d.message "
            "WHERE d.device = {} AND m.kind = 'alert'",
            device_id,
        )
    }
    concerned = []
    for alert in alerts:
        target = await target_of(alert)
        if (
            f"alert:{alert['chain']}" in received
            or zones & set(target.zone_ids)
            or any(target.area.contains(p["lat"], p["lon"]) for p in places)
        ):
            concerned.append(alert)
    return concerned


async def read_counts(chain: UUID) -> int:
    """How many devices opened the alert."""
    rows = await Delivery.raw(
        "SELECT COUNT(DISTINCT d.device) AS n FROM delivery d JOIN message m ON m.id = d.message "
        "WHERE m.subject = {} AND d.read_at IS NOT NULL",
        f"alert:{chain}",
    )
    return int(rows[0]["n"])


async def mark_alert_read(device_id: UUID, chain: UUID) -> int:
    """The resident opened the alert: every delivery of it to this device is read."""
    now = datetime.now(UTC)
    ids = [
        m["id"] for m in await Message.select(Message.id).where(Message.subject == f"alert:{chain}")
    ]
    if not ids:
        raise NotFound("Cette alerte est introuvable.")
    updated = (
        await Delivery.update({Delivery.read_at: now})
        .where(
            Delivery.message.is_in(ids)
            & (Delivery.device == device_id)
            & Delivery.read_at.is_null()
        )
        .returning(Delivery.id)
    )
    return len(updated)
