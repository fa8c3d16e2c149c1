"""Alert rows → CAP 1.2 messages (and the Atom feed of those in force)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.cap import (
    CapArea,
    CapInfo,
    CapMessage,
    CapReference,
    cap_feed_atom,
    cap_xml,
)

LANGUAGE_TAGS = {"fr": "fr-FR", "en": "en-GB", "de": "de-DE", "es": "es-ES", "it": "it-IT"}
RESPONSE_TYPES = {"urgence_extreme": "Evacuate", "danger": "Prepare", "avertissement": "Monitor"}


def _rings(geometry: dict[str, Any]) -> tuple[tuple[tuple[float, float], ...], ...]:
    # CAP polygons have no holes: each polygon's outer ring is published (it may cover a hole,
    # which errs on the side of warning too many rather than too few).
    polygons = (
        [geometry["coordinates"]]
        if geometry["type"] == "Polygon"
        else geometry["coordinates"]
        if geometry["type"] == "MultiPolygon"
        else []
    )
    return tuple(tuple((lat, lon) for lon, lat, *_ in polygon[0]) for polygon in polygons)


def cap_area(alert: dict[str, Any], insee: str | None) -> CapArea:
    """The alert's area in CAP terms: a real circle for circles, polygons otherwise."""
    spec = alert["area"]["spec"]
    geocodes = (("INSEE", insee),) if insee and spec.get("kind") == "commune" else ()
    if spec.get("kind") == "circle":
        center = spec["center"]
        km = float(spec["radiusM"]) / 1000
        return CapArea(
            alert["area_description"],
            circles=((float(center["lat"]), float(center["lon"]), km),),
            geocodes=geocodes,
        )
    geometry = alert["area"]["geometry"]
    geometry = geometry.get("geometry", geometry)  # a Feature or a bare geometry
    return CapArea(alert["area_description"], polygons=_rings(geometry), geocodes=geocodes)


def to_cap(alert: dict[str, Any], *, sender: str, insee: str | None, web: str | None) -> CapMessage:
    """One CAP message: an info per language (French first), references on Update/Cancel."""
    area = cap_area(alert, insee)
    texts = [("fr", alert["headline"], alert["description"], alert["instruction"])]
    for lang, values in sorted(alert["translations"].items()):
        if lang != "fr":
            texts.append(
                (
                    lang,
                    values.get("headline") or alert["headline"],
                    values.get("description") or alert["description"],
                    values.get("instruction") or alert["instruction"],
                )
            )
    infos = tuple(
        CapInfo(
            language=LANGUAGE_TAGS.get(lang, lang),
            category=alert["category"],
            event=alert["event"][:34],
            severity=alert["severity"],
            headline=headline,
            description=description,
            instruction=instruction or None,
            expires=alert["expires_at"],
            areas=(area,),
            web=web,
            response_type=(
                "AllClear"
                if alert["msg_type"] == "Cancel"
                else RESPONSE_TYPES.get(alert["severity"])  # type: ignore[arg-type]
            ),
        )
        for lang, headline, description, instruction in texts
    )
    references = tuple(
        CapReference(sender, identifier, datetime.fromisoformat(sent))
        for identifier, sent in alert["cap_references"]
    )
    return CapMessage(
        identifier=alert["identifier"],
        sender=sender,
        sent=alert["sent_at"],
        status="Actual",
        msg_type=alert["msg_type"],
        infos=infos,
        references=references,
    )


def cap_document(
    alert: dict[str, Any], *, sender: str, insee: str | None, web: str | None
) -> bytes:
    """The CAP XML of one message."""
    return cap_xml(to_cap(alert, sender=sender, insee=insee, web=web))


def atom_of_active(
    alerts: list[tuple[dict[str, Any], str | None]],
    *,
    sender: str,
    public_url: str,
    updated: datetime,
) -> bytes:
    """The Atom feed of alerts in force, each entry linking to its CAP document."""
    messages = [to_cap(a, sender=sender, insee=insee, web=None) for a, insee in alerts]
    by_identifier = {m.identifier: a for m, (a, _) in zip(messages, alerts, strict=True)}
    return cap_feed_atom(
        messages,
        feed_id=f"{public_url}/cap/v1/alerts",
        title="Relais – alertes en cours",
        self_url=f"{public_url}/cap/v1/alerts",
        alert_url=lambda m: f"{public_url}/cap/v1/alerts/{by_identifier[m.identifier]['id']}",
        updated=updated,
    )
