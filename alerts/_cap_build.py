"""Check a CapMessage and build its ``<alert>`` element in one pass.

Checking and building are the same walk on purpose: a rule cannot be enforced by a validator and
forgotten by the writer (or the reverse). The XSD sequence order is followed element by element.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import pairwise
from typing import Final
from urllib.parse import urlsplit

from ._cap_model import (
    CAP_CATEGORIES,
    CAP_CERTAINTIES,
    CAP_RESPONSE_TYPES,
    CAP_SEVERITY,
    CAP_STATUSES,
    CAP_URGENCY,
    DEFAULT_CERTAINTY,
    MAX_EVENT_LENGTH,
    MSG_TYPES,
    CapArea,
    CapError,
    CapInfo,
    CapMessage,
    CapReference,
)
from ._cap_xml import sub, timestamp, xml_text

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"

# CAP 1.2 §3.2.1: identifier and sender "MUST NOT include spaces, commas or restricted
# characters (< and &)"; they are also the pieces of the comma/space separated references.
_TOKEN: Final = re.compile(r"[^\s,<&\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]+")
# xs:language
_LANGUAGE: Final = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
# What the XSD's dateTime restriction accepts; timestamp() always matches it for real dates,
# this only catches the odd historical zone offset with seconds (Paris before 1911).
_CAP_DATETIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")
_DECIMALS: Final = 6  # ~0.1 m; more is noise, and some consumers choke on exponents
_MIN_RING_AREA: Final = 1e-12  # square degrees; below this the ring is a line or a point


def build_alert(message: CapMessage) -> ET.Element:
    """Return the ``<alert>`` element for ``message``; raise CapError on any broken rule."""
    sent = cap_time(message.sent, "sent")
    _check_choice(message.status, CAP_STATUSES, "status")
    _check_choice(message.msg_type, MSG_TYPES, "msg_type")
    if message.scope != "Public":
        raise CapError(f"scope {message.scope!r}: only Public alerts are published")

    # Default namespace set as a plain attribute: children inherit it, and ElementTree's global
    # prefix registry (shared with every other XML writer in the process) stays untouched.
    alert = ET.Element("alert", xmlns=CAP_NS)
    sub(alert, "identifier", token(message.identifier, "identifier"))
    sub(alert, "sender", token(message.sender, "sender"))
    sub(alert, "sent", sent)
    sub(alert, "status", message.status)
    sub(alert, "msgType", message.msg_type)
    sub(alert, "scope", message.scope)
    if (note := _optional_text(message.note)) is not None:
        sub(alert, "note", note)
    references = _references(message)
    if references:
        sub(alert, "references", references)

    if not message.infos:
        raise CapError("at least one info is required")
    seen_languages: set[str] = set()
    for info in message.infos:
        language = info.language.lower()
        if language in seen_languages:
            raise CapError(f"two infos in {info.language}: one info per language")
        seen_languages.add(language)
        _info(alert, info, message.sent)
    return alert


def cap_time(moment: datetime, field: str) -> str:
    """A CAP dateTime (Europe/Paris, explicit offset); CapError if naive or unrepresentable."""
    try:
        text = timestamp(moment)
    except ValueError as exc:
        raise CapError(f"{field}: {exc}") from None
    if not _CAP_DATETIME.fullmatch(text):
        raise CapError(f"{field}: {text} cannot be written as a CAP dateTime")
    return text


def token(value: str, field: str) -> str:
    """An identifier or sender, unchanged, or CapError if CAP forbids it."""
    if not _TOKEN.fullmatch(value):
        raise CapError(f"{field} {value!r}: no spaces, commas, '<' or '&', and not empty")
    return value


def reference_triple(reference: CapReference) -> str:
    """``sender,identifier,sent`` exactly as it appears in ``<references>``."""
    sender = token(reference.sender, "reference sender")
    identifier = token(reference.identifier, "reference identifier")
    return f"{sender},{identifier},{cap_time(reference.sent, 'reference sent')}"


def _references(message: CapMessage) -> str:
    if message.msg_type == "Alert":
        # Relais only sends Alert for the first message of a chain; a reference here means the
        # caller meant Update and aggregators would show two live alerts.
        if message.references:
            raise CapError("an Alert starts a chain and carries no references; use Update")
        return ""
    if not message.references:
        raise CapError(f"a {message.msg_type} must reference the message(s) it replaces")
    triples: list[str] = []
    for reference in message.references:
        if (reference.sender, reference.identifier) == (message.sender, message.identifier):
            raise CapError("a message cannot reference itself")
        triple = reference_triple(reference)
        if _to_second(reference.sent) > _to_second(message.sent):
            raise CapError(f"reference {triple} was sent after this message")
        if triple not in triples:  # duplicates are harmless but noisy: drop them, keep order
            triples.append(triple)
    return " ".join(triples)


def _info(alert: ET.Element, info: CapInfo, sent: datetime) -> None:
    if info.severity not in CAP_SEVERITY:
        raise CapError(f"severity {info.severity!r}: expected one of {', '.join(CAP_SEVERITY)}")
    _check_choice(info.category, CAP_CATEGORIES, "category")
    if not _LANGUAGE.fullmatch(info.language):
        raise CapError(f"language {info.language!r} is not a language tag like fr-FR")
    event = _required_text(info.event, "event")
    if len(event) > MAX_EVENT_LENGTH:
        raise CapError(f"event {event!r}: at most {MAX_EVENT_LENGTH} characters (Google)")
    certainty = info.certainty or DEFAULT_CERTAINTY[info.severity]
    _check_choice(certainty, CAP_CERTAINTIES, "certainty")
    expires = cap_time(info.expires, "expires")
    if _to_second(info.expires) <= _to_second(sent):
        raise CapError("expires must be after sent")
    effective = None
    if info.effective is not None:
        effective = cap_time(info.effective, "effective")
        if _to_second(info.expires) <= _to_second(info.effective):
            raise CapError("expires must be after effective")
    if not info.areas:
        raise CapError("at least one area is required (Google)")

    element = sub(alert, "info")
    sub(element, "language", info.language)
    sub(element, "category", info.category)
    sub(element, "event", event)
    if info.response_type is not None:
        _check_choice(info.response_type, CAP_RESPONSE_TYPES, "response_type")
        sub(element, "responseType", info.response_type)
    sub(element, "urgency", CAP_URGENCY[info.severity])
    sub(element, "severity", CAP_SEVERITY[info.severity])
    sub(element, "certainty", certainty)
    if effective is not None:
        sub(element, "effective", effective)
    sub(element, "expires", expires)
    _optional(element, "senderName", info.sender_name)
    sub(element, "headline", _required_text(info.headline, "headline"))
    sub(element, "description", _required_text(info.description, "description"))
    _optional(element, "instruction", info.instruction)
    if (web := _optional_text(info.web)) is not None:
        sub(element, "web", _web(web))
    _optional(element, "contact", info.contact)
    for area in info.areas:
        _area(element, area)


def _area(info: ET.Element, area: CapArea) -> None:
    if not (area.polygons or area.circles or area.geocodes):
        raise CapError(f"area {area.description!r} needs a polygon, a circle or a geocode")
    element = sub(info, "area")
    sub(element, "areaDesc", _required_text(area.description, "area description"))
    for ring in area.polygons:
        sub(element, "polygon", _polygon(ring))
    for lat, lon, radius in area.circles:
        if not (math.isfinite(radius) and round(radius, _DECIMALS) > 0):
            raise CapError(f"circle radius {radius!r} km: must be a positive number")
        sub(element, "circle", f"{_point(lat, lon)} {_number(radius)}")
    for name, value in area.geocodes:
        geocode = sub(element, "geocode")
        sub(geocode, "valueName", _required_text(name, "geocode valueName"))
        sub(geocode, "value", _required_text(value, "geocode value"))


def _polygon(ring: Iterable[tuple[float, float]]) -> str:
    """Rounded, closed ring as "lat,lon lat,lon ..."; CapError if it encloses nothing."""
    points = [_rounded(lat, lon) for lat, lon in ring]
    if len(set(points)) < 3:
        raise CapError("a polygon needs at least 3 distinct points")
    if points[0] != points[-1]:
        points.append(points[0])  # CAP and Google require closed rings
    # Shoelace on the rounded points: collinear rings have no inside to alert.
    twice_area = sum(a[1] * b[0] - b[1] * a[0] for a, b in pairwise(points))
    if abs(twice_area) / 2 < _MIN_RING_AREA:
        raise CapError("a polygon's points are on one line: it encloses no area")
    return " ".join(f"{_number(lat)},{_number(lon)}" for lat, lon in points)


def _rounded(lat: float, lon: float) -> tuple[float, float]:
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise CapError(f"point ({lat!r}, {lon!r}) is not a (lat, lon) pair in range")
    # + 0.0 turns -0.0 into 0.0 so that no "-0" is written
    return round(lat, _DECIMALS) + 0.0, round(lon, _DECIMALS) + 0.0


def _point(lat: float, lon: float) -> str:
    lat, lon = _rounded(lat, lon)
    return f"{_number(lat)},{_number(lon)}"


def _number(value: float) -> str:
    text = f"{value:.{_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _web(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", url):
        raise CapError(f"web {url!r}: an absolute http(s) URL is required")
    return url


def _required_text(value: str, field: str) -> str:
    text = xml_text(value)
    if not text.strip():
        raise CapError(f"{field} is empty")
    return text


def _optional_text(value: str | None) -> str | None:
    """None for a missing or blank value (a blank DB column means "not given")."""
    if value is None:
        return None
    text = xml_text(value)
    return text if text.strip() else None


def _optional(parent: ET.Element, tag: str, value: str | None) -> None:
    if (text := _optional_text(value)) is not None:
        sub(parent, tag, text)


def _to_second(moment: datetime) -> datetime:
    # Compare instants as written. In UTC because two datetimes sharing a ZoneInfo compare by
    # wall clock, which is wrong around the autumn DST change; and to the second because two
    # times within one second are written identically.
    return moment.astimezone(UTC).replace(microsecond=0)


def _check_choice(value: str, allowed: frozenset[str], field: str) -> None:
    if value not in allowed:
        raise CapError(f"{field} {value!r}: expected one of {', '.join(sorted(allowed))}")
