"""Open311 GeoReport v2: filing a service request (POST requests.[fmt]) and its tokens."""

from __future__ import annotations

import html
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nh3

from backend.accounts.service import normalise_email
from backend.database import transaction
from backend.demandes import reports
from backend.demandes.service import NewDemande, add_entry, checked_location, file_demande
from backend.demandes.tables import Open311Token
from backend.exceptions import InvalidInput
from backend.interop._open311_base import (
    MAX_DESCRIPTION,
    MAX_MEDIA_URLS,
    PHONE,
    Open311Error,
    bad,
    load_catalogue,
    notice_text,
)
from backend.organisation.tables import Service
from geo import Geocoder, GeocodingUnavailable
from media import Limits, MediaStorage


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
        raise bad(f"description trop longue : {MAX_DESCRIPTION} caractères au plus.")
    return text


def _coordinate(raw: str, name: str) -> float:
    try:
        value = float(raw.replace(",", "."))
    except ValueError as exc:
        raise bad(f"{name} invalide : un nombre en degrés décimaux (WGS84) est attendu.") from exc
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise bad(f"{name} invalide : un nombre en degrés décimaux (WGS84) est attendu.")
    return value


def _contact(form: Submission) -> tuple[str, str, str]:
    name = " ".join(x for x in (form.first_name, form.last_name) if x)
    email = form.email or ""
    phone = form.phone or ""
    if len(name) > 100:
        raise bad("first_name et last_name : 100 caractères au plus à eux deux.")
    if email:
        try:  # the accounts' rule, so an address valid in the app is valid here
            email = normalise_email(email)
        except InvalidInput as exc:
            raise bad(f"email invalide : {exc.detail}") from exc
        if len(email) > 254:
            raise bad("email invalide : 254 caractères au plus.")
    if len(phone) > 30 or not PHONE.fullmatch(phone):
        raise bad("phone invalide : chiffres, espaces et + ( ) . - seulement, 30 au plus.")
    return name, email, phone


def _media_urls(urls: Sequence[str]) -> list[str]:
    if len(urls) > MAX_MEDIA_URLS:
        raise bad(f"media_url : {MAX_MEDIA_URLS} adresses au plus.")
    for url in urls:
        if not url.lower().startswith(("http://", "https://")) or len(url) > 2000:
            raise bad("media_url invalide : une adresse http(s) est attendue.")
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
            raise bad("lat et long vont ensemble : envoyez les deux.")
        lat, lon = _coordinate(form.lat, "lat"), _coordinate(form.long, "long")
        try:
            checked_location(lat, lon)
        except InvalidInput as exc:
            raise bad(f"lat/long : {exc.detail}") from exc
        address = form.address_string or await address_of(geocoder, lat, lon)
        return lat, lon, address, "pin"
    if form.address_string:
        try:
            found = await geocoder.geocode(form.address_string)
        except GeocodingUnavailable as exc:
            raise bad(
                "Le service d'adresses ne répond pas : réessayez plus tard ou envoyez lat et long."
            ) from exc
        if found is None:
            raise bad(f"address_string introuvable : « {form.address_string} ».")
        return found.lat, found.lon, found.label, "address"
    if form.address_id:
        raise bad("address_id n'est pas pris en charge : envoyez lat et long, ou address_string.")
    raise bad("Emplacement manquant : envoyez lat et long, ou address_string.")


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
        raise bad("service_code manquant.")
    catalogue = await load_catalogue(commune["id"])
    category = catalogue.by_code(form.service_code)
    if category is None:
        raise Open311Error(404, f"service_code inconnu : {form.service_code}.")
    description = clean_description(form.description)
    name, email, phone = _contact(form)
    media_urls = _media_urls(form.media_urls)
    if not (email or phone) and not category["allows_anonymous"]:
        raise bad("email ou phone manquant : la mairie doit pouvoir tenir le demandeur informé.")
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
    notice = notice_text(category, service["name"] if service else "")
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
