"""Open311 GeoReport v2 rules, as plain async functions (no web framework here).

One Relais installation is one jurisdiction per commune: `jurisdiction_id` is the commune's
INSEE code, optional while a single commune exists. Services are the commune's active leaf
categories (`service_code` = the category slug, stable and readable); requests are demandes,
filed through `file_demande` like any other channel, so routing, due dates and the SVE
acknowledgments happen exactly as for the app. Only public, non-hidden demandes of public
categories are ever listed, and never with a name, an e-mail address or a phone number.

Every refusal is an `Open311Error` carrying the HTTP status the spec asks for (404 unknown
resource, 403 API key, 400 anything else); the controller renders it as an error document.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import nh3

from backend.accounts.service import normalise_email
from backend.database import transaction
from backend.demandes import reports
from backend.demandes.service import NewDemande, add_entry, checked_location, file_demande
from backend.demandes.statuses import FINISHED, LABELS, OPEN
from backend.demandes.tables import (
    Category,
    Demande,
    Open311Key,
    Open311Token,
    Photo,
    TimelineEntry,
)
from backend.exceptions import FieldError, InvalidInput
from backend.organisation.service import get_commune
from backend.organisation.tables import Commune, Service
from geo import Geocoder, GeocodingUnavailable
from media import Limits, MediaStorage

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
PATH = "/open311/v2"
MAX_DESCRIPTION = 4000
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_MEDIA_URLS = 10
# Before any category exists, discovery still needs a sortable changeset.
FIRST_CHANGESET = datetime(2026, 1, 1, tzinfo=UTC)
# Timeline kinds whose public text explains the current status (status_notes).
_NOTE_KINDS = ("reply", "status")
_IN_CHUNKS = 500  # ids per IN (...) list: well under SQLite's bound on query parameters
_PHONE = re.compile(r"[0-9+ ().-]*")  # as the app's contact phone
_POSTCODE = re.compile(r"\b(\d{5})\b")
_OFFSET_WITH_SPACE = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


class Open311Error(Exception):
    """A refusal in the spec's terms: HTTP status and a description for the person."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _bad(description: str) -> Open311Error:
    return Open311Error(400, description)


# ---------------------------------------------------------------------------------------------
# Dates


def w3c(value: datetime | None, tz: ZoneInfo) -> str | None:
    """A W3C/ISO-8601 date-time with its offset in civil time (2026-03-02T14:05:00+01:00)."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_datetime(raw: str, name: str, tz: ZoneInfo) -> datetime:
    """A W3C date-time from a query string; a date or a time without offset is civil time.

    A `+` in an offset that the client forgot to URL-encode arrives as a space: it is put back.
    """
    text = raw.strip()
    if match := _OFFSET_WITH_SPACE.match(text):
        text = f"{match.group(1)}+{match.group(2)}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad(
            f"{name} invalide : date et heure W3C attendues, par exemple 2026-01-31T00:00:00Z."
        ) from exc
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


# ---------------------------------------------------------------------------------------------
# Jurisdiction, discovery, services


async def jurisdiction(jurisdiction_id: str | None) -> dict[str, Any]:
    """The commune a request speaks to: by INSEE code, or the only one when there is one."""
    code = (jurisdiction_id or "").strip()
    if code:
        row = await Commune.select().where(Commune.insee_code == code).first()
        if row is None:
            raise Open311Error(404, f"jurisdiction_id inconnu : {code} (code INSEE attendu).")
        return row
    rows = await Commune.select().order_by(Commune.insee_code).limit(2)
    if not rows:
        raise Open311Error(404, "Aucune commune n'est encore configurée sur ce serveur.")
    if len(rows) > 1:
        raise _bad(
            "jurisdiction_id obligatoire : ce serveur dessert plusieurs communes "
            "(indiquez le code INSEE de la commune)."
        )
    return rows[0]


async def _changeset(commune_id: UUID | None) -> datetime:
    """The last change of the services (categories): clients refresh their cache after it."""
    query = Category.select(Category.updated_at)
    if commune_id is not None:
        query = query.where(Category.commune == commune_id)
    row = await query.order_by(Category.updated_at, ascending=False).first()
    return max(row["updated_at"], FIRST_CHANGESET) if row else FIRST_CHANGESET


async def discovery(jurisdiction_id: str | None, public_url: str, tz: ZoneInfo) -> dict[str, Any]:
    """The service discovery document (an object, in JSON too).

    Discovery describes the endpoint, so it answers without a jurisdiction even when several
    communes share the server; with one (given or the only one) the contact is its town hall.
    """
    commune: dict[str, Any] | None = None
    if (jurisdiction_id or "").strip() or await Commune.count() == 1:
        commune = await jurisdiction(jurisdiction_id)
    if commune is not None:
        reach = " ".join(x for x in (commune["email"], commune["phone"]) if x)
        contact = f"Mairie de {commune['name']}" + (f" : {reach}" if reach else "")
        key_service = (
            f"Demandez une clé d'API à la mairie de {commune['name']}"
            + (f" ({reach})" if reach else "")
            + " : un administrateur de Relais la crée pour votre application."
        )
    else:
        contact = "Contactez la mairie de la commune concernée."
        key_service = (
            "Demandez une clé d'API à la mairie de la commune concernée : un administrateur "
            "de Relais la crée pour votre application."
        )
    changeset = w3c(await _changeset(commune["id"] if commune else None), tz)
    return {
        "changeset": changeset,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": public_url.rstrip("/") + PATH,
                "changeset": changeset,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


@dataclass(frozen=True)
class _Catalogue:
    """The commune's categories: every row by id, and the leaf ones offered as services."""

    by_id: dict[UUID, dict[str, Any]]
    services: list[dict[str, Any]]

    def by_code(self, code: str) -> dict[str, Any] | None:
        return next((c for c in self.services if c["slug"] == code), None)


async def _catalogue(commune_id: UUID) -> _Catalogue:
    rows = (
        await Category.select()
        .where(Category.commune == commune_id)
        .order_by(Category.position)
        .order_by(Category.name)
    )
    # A category with active children is a group (Voirie), not something one files under.
    parents = {r["parent"] for r in rows if r["active"] and r["parent"] is not None}
    services = [r for r in rows if r["active"] and r["id"] not in parents]
    return _Catalogue({r["id"]: r for r in rows}, services)


def _service_out(category: dict[str, Any], catalogue: _Catalogue) -> dict[str, Any]:
    parent = catalogue.by_id.get(category["parent"]) if category["parent"] else None
    group = parent["name"] if parent else ""
    keywords = [category["name"]] + ([group] if group else [])
    return {
        "service_code": category["slug"],
        "service_name": category["name"],
        "description": category["description"] or category["name"],
        # No attributes (no service definition fields): clients need not ask for them.
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": group,
    }


async def services(commune: dict[str, Any]) -> list[dict[str, Any]]:
    """GET services: the commune's active leaf categories, in display order."""
    catalogue = await _catalogue(commune["id"])
    return [_service_out(c, catalogue) for c in catalogue.services]


async def service_definition(commune: dict[str, Any], code: str) -> dict[str, Any]:
    """GET services/{code}: the definition (no attributes: `metadata` is false everywhere)."""
    catalogue = await _catalogue(commune["id"])
    if catalogue.by_code(code) is None:
        raise Open311Error(404, f"service_code inconnu : {code}.")
    return {"service_code": code, "attributes": []}


# ---------------------------------------------------------------------------------------------
# API keys


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(commune_id: UUID, name: str) -> str:
    """Create an API key for an Open311 client of the commune; returns the key, shown once.

    Only its SHA-256 is kept: a leaked database does not leak usable keys.
    """
    await get_commune(commune_id)
    label = name.strip()
    if not label or len(label) > 100:
        message = "Le nom de la clé (l'application cliente) fait 1 à 100 caractères."
        raise InvalidInput(message, errors=[FieldError("name", message)])
    key = secrets.token_urlsafe(32)
    await Open311Key.insert(Open311Key(commune=commune_id, name=label, key_hash=_key_hash(key)))
    return key


async def check_api_key(commune_id: UUID, key: str | None) -> str:
    """The name of the client holding this key of the commune; 403 otherwise."""
    if not key:
        raise Open311Error(403, "api_key manquant : une clé d'API est nécessaire pour déposer.")
    row = (
        await Open311Key.select(Open311Key.name)
        .where((Open311Key.key_hash == _key_hash(key)) & (Open311Key.commune == commune_id))
        .first()
    )
    if row is None:
        raise Open311Error(403, "api_key invalide pour cette commune.")
    return str(row["name"])


# ---------------------------------------------------------------------------------------------
# POST requests


@dataclass
class Submission:
    """The fields of a POST requests body (urlencoded or multipart); empty counts as absent."""

    api_key: str | None = None
    jurisdiction_id: str | None = None
    service_code: str | None = None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_urls: list[str] = field(default_factory=list)
    attributes: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Submission:
        """Read form pairs; `media_url` may repeat, `attribute[code]` and `attribute[code][]`
        (a multivaluelist) are gathered per code. Unknown fields are ignored."""
        found = cls()
        singles = {
            "api_key",
            "jurisdiction_id",
            "service_code",
            "lat",
            "long",
            "address_string",
            "address_id",
            "email",
            "device_id",
            "account_id",
            "first_name",
            "last_name",
            "phone",
            "description",
        }
        for name, raw in pairs:
            value = raw.strip()
            if not value:
                continue
            if name in singles:
                setattr(found, name, value)
            elif name in {"media_url", "media_url[]"}:
                found.media_urls.append(value)
            elif name.startswith("attribute[") and "]" in name:
                code = name[len("attribute[") : name.index("]")]
                if code:
                    found.attributes.setdefault(code, []).append(value)
        return found


@dataclass(frozen=True)
class Filed:
    """What a POST answers (the request list of one) and the token kept for polling clients."""

    body: list[dict[str, Any]]
    token: str
    reference: str


def clean_description(raw: str | None) -> str:
    """Plain text: markup and scripts removed, entities decoded, ≤ 4,000 characters."""
    if not raw:
        return ""
    # nh3 with no allowed tag keeps the text of tags and drops <script>/<style> content; its
    # output is HTML-escaped, so entities are decoded back to the characters the person typed.
    text = html.unescape(nh3.clean(raw, tags=set())).strip()
    if len(text) > MAX_DESCRIPTION:
        raise _bad(f"description trop longue : {MAX_DESCRIPTION} caractères au plus.")
    return text


def _coordinate(raw: str, name: str) -> float:
    try:
        value = float(raw.replace(",", "."))
    except ValueError as exc:
        raise _bad(f"{name} invalide : un nombre en degrés décimaux (WGS84) est attendu.") from exc
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise _bad(f"{name} invalide : un nombre en degrés décimaux (WGS84) est attendu.")
    return value


def _contact(form: Submission) -> tuple[str, str, str]:
    name = " ".join(x for x in (form.first_name, form.last_name) if x)
    email = form.email or ""
    phone = form.phone or ""
    if len(name) > 100:
        raise _bad("first_name et last_name : 100 caractères au plus à eux deux.")
    if email:
        try:  # the accounts' rule, so an address valid in the app is valid here
            email = normalise_email(email)
        except InvalidInput as exc:
            raise _bad(f"email invalide : {exc.detail}") from exc
        if len(email) > 254:
            raise _bad("email invalide : 254 caractères au plus.")
    if len(phone) > 30 or not _PHONE.fullmatch(phone):
        raise _bad("phone invalide : chiffres, espaces et + ( ) . - seulement, 30 au plus.")
    return name, email, phone


def _media_urls(urls: Sequence[str]) -> list[str]:
    if len(urls) > MAX_MEDIA_URLS:
        raise _bad(f"media_url : {MAX_MEDIA_URLS} adresses au plus.")
    for url in urls:
        if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
            raise _bad("media_url invalide : une adresse http(s) est attendue.")
    return list(urls)


async def address_of(geocoder: Geocoder, lat: float, lon: float) -> str:
    """The address at a position, as the app records it: "" when the geocoder is down (a job
    fills it in later), "-" when there is no address there."""
    try:
        found = await geocoder.reverse(lat, lon)
    except GeocodingUnavailable:
        return ""
    return found.label if found else "-"


async def _place(
    form: Submission, geocoder: Geocoder
) -> tuple[float, float, str, str]:  # lat, lon, address, location source
    if form.lat or form.long:
        if not (form.lat and form.long):
            raise _bad("lat et long vont ensemble : envoyez les deux.")
        lat, lon = _coordinate(form.lat, "lat"), _coordinate(form.long, "long")
        try:
            checked_location(lat, lon)
        except InvalidInput as exc:
            raise _bad(f"lat/long : {exc.detail}") from exc
        address = form.address_string or await address_of(geocoder, lat, lon)
        return lat, lon, address, "pin"
    if form.address_string:
        try:
            found = await geocoder.geocode(form.address_string)
        except GeocodingUnavailable as exc:
            raise _bad(
                "Le service d'adresses ne répond pas : réessayez plus tard ou envoyez lat et long."
            ) from exc
        if found is None:
            raise _bad(f"address_string introuvable : « {form.address_string} ».")
        return found.lat, found.lon, found.label, "address"
    if form.address_id:
        raise _bad("address_id n'est pas pris en charge : envoyez lat et long, ou address_string.")
    raise _bad("Emplacement manquant : envoyez lat et long, ou address_string.")


def _notice(category: dict[str, Any], service_name: str) -> str:
    days = category["sla_days"]
    return (
        f"Transmis au service {service_name} de la mairie ; délai de traitement visé : "
        f"{days} jour{'s' if days > 1 else ''}."
    )


async def file_request(
    commune: dict[str, Any],
    form: Submission,
    client_name: str,
    *,
    geocoder: Geocoder,
    storage: MediaStorage,
    limits: Limits,
    daily_cap: int,
    uploads: Sequence[tuple[str, bytes]] = (),
) -> Filed:
    """POST requests: check the fields, place the request, file it as a "web" demande.

    `client_name` is the API key's name (checked by `check_api_key`). Photos uploaded with the
    request (multipart, as FixMyStreet sends them) go through the media pipeline first; remote
    `media_url`s are recorded for the agents, never fetched.
    """
    if not form.service_code:
        raise _bad("service_code manquant.")
    catalogue = await _catalogue(commune["id"])
    category = catalogue.by_code(form.service_code)
    if category is None:
        raise Open311Error(404, f"service_code inconnu : {form.service_code}.")
    description = clean_description(form.description)
    name, email, phone = _contact(form)
    media_urls = _media_urls(form.media_urls)
    if not (email or phone) and not category["allows_anonymous"]:
        raise _bad("email ou phone manquant : la mairie doit pouvoir tenir le demandeur informé.")
    lat, lon, address, source = await _place(form, geocoder)
    processed = await reports.process_photos(list(uploads), limits) if uploads else []
    stored = await reports.store_photos(storage, processed)
    token = secrets.token_urlsafe(24)
    try:
        async with transaction():
            row = await file_demande(
                NewDemande(
                    commune_id=commune["id"],
                    category_id=category["id"],
                    # The spec makes description optional; a demande always says what it is.
                    description=description or category["name"],
                    channel="web",
                    contact_name=name,
                    contact_email=email,
                    contact_phone=phone,
                    anonymous=not (email or phone),
                    lat=lat,
                    lon=lon,
                    location_source=source,
                    address=address,
                    photos=stored.photos,
                ),
                daily_cap,
            )
            lines = [f"Reçue par Open311 de « {client_name} »."]
            lines += [f"Média joint (non téléchargé) : {url}" for url in media_urls]
            lines += [f"Attribut {code} : {', '.join(v)}" for code, v in form.attributes.items()]
            # Internal: the client's own identifiers and links are for agents, not the public.
            await add_entry(
                row["id"],
                "open311",
                public=False,
                text="\n".join(lines),
                data={
                    "client": client_name,
                    "deviceId": form.device_id,
                    "accountId": form.account_id,
                    "mediaUrls": media_urls,
                    "attributes": form.attributes,
                },
            )
            await Open311Token.insert(Open311Token(token=token, demande=row["id"]))
    except BaseException:
        # Nothing half-written: the files of a request that was not filed are removed.
        await reports.discard_photos(storage, stored)
        raise
    service = await Service.select(Service.name).where(Service.id == row["service"]).first()
    notice = _notice(category, service["name"] if service else "")
    body = [
        {
            "service_request_id": row["reference"],
            "service_notice": notice,
            "account_id": form.account_id,
        }
    ]
    return Filed(body, token, row["reference"])


async def token(commune: dict[str, Any], value: str) -> list[dict[str, Any]]:
    """GET tokens/{token}: the request id behind a token of this commune."""
    row = (
        await Open311Token.select(Open311Token.token, Open311Token.demande.reference)
        .where((Open311Token.token == value) & (Open311Token.demande.commune == commune["id"]))
        .first()
    )
    if row is None:
        raise Open311Error(404, f"token inconnu : {value}.")
    return [{"service_request_id": row["demande.reference"], "token": row["token"]}]


# ---------------------------------------------------------------------------------------------
# GET requests


@dataclass(frozen=True)
class RequestsQuery:
    """Filters of GET requests, already checked."""

    references: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # ours (received, …), from open/closed


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))


def requests_query(
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> RequestsQuery:
    """Check GET requests parameters (empty = absent) and apply the spec's default window.

    `service_request_id` overrides every other filter. Without dates the window is the last
    90 days; with one date it spans 90 days from (or up to) it; with both, at most 90 days.
    """
    references = _csv(service_request_id)
    if references:
        if len(references) > MAX_REQUESTS:
            raise _bad(f"service_request_id : {MAX_REQUESTS} identifiants au plus.")
        return RequestsQuery(references=references)
    now = now or datetime.now(UTC)
    start = parse_datetime(start_date, "start_date", tz) if start_date else None
    end = parse_datetime(end_date, "end_date", tz) if end_date else None
    if start is not None and end is not None:
        if end < start:
            raise _bad("end_date précède start_date.")
        if end - start > MAX_SPAN:
            raise _bad("start_date et end_date couvrent 90 jours au plus.")
    elif start is not None:
        end = start + MAX_SPAN
    elif end is not None:
        start = end - MAX_SPAN
    else:
        start = now - MAX_SPAN
    statuses: list[str] = []
    for value in _csv(status):
        if value.lower() == "open":
            statuses += sorted(OPEN)
        elif value.lower() == "closed":
            statuses += sorted(FINISHED)
        else:
            raise _bad(f"status inconnu : {value} (open ou closed).")
    return RequestsQuery(
        codes=_csv(service_code), start=start, end=end, statuses=tuple(dict.fromkeys(statuses))
    )


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    for index in range(0, len(values), _IN_CHUNKS):
        yield list(values[index : index + _IN_CHUNKS])


async def _first_photos(ids: Sequence[UUID]) -> dict[UUID, str]:
    found: dict[UUID, str] = {}
    for chunk in _chunks(ids):
        rows = (
            await Photo.select(Photo.demande, Photo.display_key)
            .where(Photo.demande.is_in(chunk) & (Photo.redacted == False))  # noqa: E712
            .order_by(Photo.position)
        )
        for row in rows:
            found.setdefault(row["demande"], row["display_key"])
    return found


async def _status_notes(ids: Sequence[UUID]) -> dict[UUID, str]:
    latest: dict[UUID, str] = {}
    for chunk in _chunks(ids):
        rows = (
            await TimelineEntry.select(TimelineEntry.demande, TimelineEntry.text)
            .where(
                TimelineEntry.demande.is_in(chunk)
                & (TimelineEntry.public == True)  # noqa: E712
                & TimelineEntry.kind.is_in(list(_NOTE_KINDS))
                & (TimelineEntry.text != "")
            )
            .order_by(TimelineEntry.id)
        )
        for row in rows:
            latest[row["demande"]] = row["text"]  # oldest first: the last one wins
    return latest


def _zipcode(address: str) -> str | None:
    # BAN labels read "12 Rue des Saules 45150 Les Saules-sur-Loire": the postcode is in there.
    match = _POSTCODE.search(address)
    return match.group(1) if match else None


# Only these columns are read: contact and requester columns never leave the database here.
_PUBLIC_COLUMNS = (
    Demande.id,
    Demande.reference,
    Demande.category,
    Demande.service,
    Demande.description,
    Demande.status,
    Demande.lat,
    Demande.lon,
    Demande.address,
    Demande.due_at,
    Demande.created_at,
    Demande.updated_at,
)


async def find_requests(
    commune: dict[str, Any], query: RequestsQuery, storage: MediaStorage, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """GET requests: public, visible demandes of public categories, newest first, ≤ 1000."""
    catalogue = await _catalogue(commune["id"])
    public = {cid: c for cid, c in catalogue.by_id.items() if c["public"]}
    where: Any = (
        (Demande.commune == commune["id"])
        & (Demande.public == True)  # noqa: E712
        & (Demande.hidden == False)  # noqa: E712
    )
    if query.references:
        where &= Demande.reference.is_in(list(query.references))
        category_ids = list(public)
    else:
        category_ids = [
            cid for cid, c in public.items() if not query.codes or c["slug"] in query.codes
        ]
        if query.start is not None:
            where &= Demande.created_at >= query.start
        if query.end is not None:
            where &= Demande.created_at <= query.end
        if query.statuses:
            where &= Demande.status.is_in(list(query.statuses))
    if not category_ids:
        return []
    # A category made private later hides its past requests too.
    where &= Demande.category.is_in(category_ids)
    rows = (
        await Demande.select(*_PUBLIC_COLUMNS)
        .where(where)
        .order_by(Demande.created_at, ascending=False)
        .limit(MAX_REQUESTS)
    )
    return await _requests_out(rows, public, storage, tz)


async def find_request(
    commune: dict[str, Any], reference: str, storage: MediaStorage, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """GET requests/{id}: a list of one, or 404 (private and hidden ones are not found)."""
    found = await find_requests(commune, RequestsQuery(references=(reference,)), storage, tz)
    if not found:
        raise Open311Error(404, f"service_request_id inconnu : {reference}.")
    return found


async def _requests_out(
    rows: list[dict[str, Any]],
    categories: dict[UUID, dict[str, Any]],
    storage: MediaStorage,
    tz: ZoneInfo,
) -> list[dict[str, Any]]:
    ids = [r["id"] for r in rows]
    photos = await _first_photos(ids)
    notes = await _status_notes(ids)
    service_ids = list({r["service"] for r in rows})
    services_by_id = {
        s["id"]: s["name"]
        for chunk in _chunks(service_ids)
        for s in await Service.select(Service.id, Service.name).where(Service.id.is_in(chunk))
    }
    out = []
    for row in rows:
        category = categories[row["category"]]
        agency = services_by_id.get(row["service"], "")
        address = row["address"] if row["address"] != "-" else ""
        out.append(
            {
                "service_request_id": row["reference"],
                "status": "open" if row["status"] in OPEN else "closed",
                "status_notes": notes.get(row["id"]) or LABELS.get(row["status"], ""),
                "service_name": category["name"],
                "service_code": category["slug"],
                "description": row["description"],
                "agency_responsible": agency,
                "service_notice": _notice(category, agency),
                "requested_datetime": w3c(row["created_at"], tz),
                "updated_datetime": w3c(row["updated_at"], tz),
                "expected_datetime": w3c(row["due_at"], tz),
                "address": address,
                "address_id": None,
                "zipcode": _zipcode(address),
                "lat": row["lat"],
                "long": row["lon"],
                "media_url": storage.url_for(photos[row["id"]]) if row["id"] in photos else None,
            }
        )
    return out
