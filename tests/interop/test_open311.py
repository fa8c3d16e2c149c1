"""Third-party apps speak Open311 GeoReport v2 to the commune: they list its services, file
reports with an API key, and follow public requests, in XML (mandatory) and JSON."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from litestar import Litestar

from backend.demandes.tables import Demande, Open311Key
from backend.exceptions import InvalidInput
from backend.interop.open311_service import Open311Error, create_api_key, parse_datetime
from backend.mail.tables import EmailMessage
from tests.demandes.factories import RENNES, Categories, jpeg, make_categories
from tests.factories import Client, Commune, bearer, log_in, make_commune

ROOT = "/open311/v2"
XML = "text/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
REFERENCE = re.compile(r"\d{4}-\d{6}")
W3C = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
LES_SAULES = (47.85262, 2.06151)  # 12 rue des Saules in the BAN peer's gazetteer
POTHOLE = "nid-de-poule"
GRAFFITI = "tag-ou-graffiti"
CERTIFICATE = "acte-de-naissance"  # a private category (public=False)


async def _setup(app: Litestar) -> tuple[Commune, Categories, str]:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    key = await create_api_key(commune.id, "FixMyStreet")
    return commune, categories, key


def _fields(key: str | None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "api_key": key,
        "service_code": POTHOLE,
        "lat": str(RENNES[0]),
        "long": str(RENNES[1]),
        "email": "camille.durand@exemple.fr",
        "first_name": "Camille",
        "last_name": "Durand",
        "phone": "06 12 34 56 78",
        "description": "Nid-de-poule profond devant le 12, dangereux pour les vélos.",
    }
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not None}


async def _post(client: Client, key: str | None, fmt: str = "json", **extra: Any) -> httpx.Response:
    # httpx sends a dict as application/x-www-form-urlencoded, as the spec requires.
    return await client.post(f"{ROOT}/requests.{fmt}", data=_fields(key, **extra))


async def _file(client: Client, key: str, **extra: Any) -> str:
    response = await _post(client, key, **extra)
    assert response.status_code == 200, response.text
    reference: str = response.json()[0]["service_request_id"]
    return reference


def _xml(response: httpx.Response) -> ET.Element:
    """The parsed XML body, after checking the spec's envelope: declaration, no namespace."""
    assert response.headers["content-type"] == XML
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.content)
    assert "}" not in root.tag and b"xmlns" not in response.content
    return root


def _json(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == JSON
    return response.json()


def _error(response: httpx.Response, status: int) -> str:
    """The description of a one-error document, in whichever format was asked."""
    assert response.status_code == status, response.text
    if response.request.url.path.endswith(".json"):
        body = _json(response)
        assert isinstance(body, list) and body[0]["code"] == status
        return str(body[0]["description"])
    root = _xml(response)
    assert root.tag == "errors" and [e.tag for e in root] == ["error"]
    assert root.findtext("error/code") == str(status)
    return root.findtext("error/description") or ""


async def _references(client: Client, **params: str) -> list[str]:
    response = await client.get(f"{ROOT}/requests.json", params=params)
    assert response.status_code == 200, response.text
    return [r["service_request_id"] for r in _json(response)]


async def _staff_id(client: Client, admin: dict[str, str], reference: str) -> str:
    inbox = (await client.get("/staff/v1/demandes", headers=admin)).json()["items"]
    return str(next(d["id"] for d in inbox if d["reference"] == reference))


async def test_discovery_describes_the_endpoint_in_xml_and_json(
    client: Client, app: Litestar
) -> None:
    await _setup(app)
    root = _xml(await client.get(f"{ROOT}/discovery.xml"))
    assert root.tag == "discovery"
    assert W3C.fullmatch(root.findtext("changeset") or "")
    assert "Rennes" in (root.findtext("contact") or "")
    assert "clé" in (root.findtext("key_service") or "")
    endpoints = root.findall("endpoints/endpoint")
    assert len(endpoints) == 1
    assert endpoints[0].findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoints[0].findtext("url") == "http://127.0.0.1:8000/open311/v2"
    assert endpoints[0].findtext("type") == "production"
    assert [f.text for f in endpoints[0].findall("formats/format")] == [
        "text/xml",
        "application/json",
    ]

    document = _json(await client.get(f"{ROOT}/discovery.json"))
    assert set(document) == {"changeset", "contact", "key_service", "endpoints"}
    assert document["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    assert document["endpoints"][0]["changeset"] == document["changeset"]


async def test_services_are_the_leaf_categories_in_xml_and_json(
    client: Client, app: Litestar
) -> None:
    await _setup(app)
    root = _xml(await client.get(f"{ROOT}/services.xml"))
    assert root.tag == "services"
    services = {s.findtext("service_code"): s for s in root.findall("service")}
    # "Voirie" has a child category: it is the group, not a service.
    assert list(services) == [CERTIFICATE, POTHOLE, GRAFFITI]
    pothole = services[POTHOLE]
    assert pothole.findtext("service_name") == "Nid-de-poule"
    assert pothole.findtext("group") == "Voirie"
    assert pothole.findtext("metadata") == "false"
    assert pothole.findtext("type") == "realtime"
    assert pothole.findtext("keywords") == "Nid-de-poule, Voirie"
    assert [c.tag for c in pothole] == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]

    listed = _json(await client.get(f"{ROOT}/services.json"))
    assert isinstance(listed, list)
    assert [s["service_code"] for s in listed] == [CERTIFICATE, POTHOLE, GRAFFITI]
    assert listed[1]["metadata"] is False and listed[1]["group"] == "Voirie"

    definition = _xml(await client.get(f"{ROOT}/services/{POTHOLE}.xml"))
    assert definition.tag == "service_definition"
    assert definition.findtext("service_code") == POTHOLE
    attributes = definition.find("attributes")
    assert attributes is not None and len(attributes) == 0
    assert _json(await client.get(f"{ROOT}/services/{POTHOLE}.json")) == {
        "service_code": POTHOLE,
        "attributes": [],
    }
    for unknown in ("nid-de-chameau", "voirie"):
        _error(await client.get(f"{ROOT}/services/{unknown}.xml"), 404)
        _error(await client.get(f"{ROOT}/services/{unknown}.json"), 404)
    _error(await client.get(f"{ROOT}/services/{POTHOLE}"), 404)  # no format suffix


async def test_a_request_filed_with_a_key_becomes_a_demande_for_the_staff(
    client: Client, app: Litestar
) -> None:
    commune, _, key = await _setup(app)
    response = await _post(client, key, fmt="xml")
    assert response.status_code == 200, response.text
    root = _xml(response)
    assert root.tag == "service_requests"
    request = root.find("request")
    assert request is not None
    reference = request.findtext("service_request_id") or ""
    assert REFERENCE.fullmatch(reference)
    assert "Voirie" in (request.findtext("service_notice") or "")
    assert request.find("token") is None  # never both an id and a token in the body
    token = response.headers["X-Open311-Token"]

    # Filed like any other demande: routed to the service, acknowledged (SVE) by e-mail.
    admin = bearer(await log_in(client, commune.admin["email"]))
    inbox = (await client.get("/staff/v1/demandes", headers=admin)).json()["items"]
    assert [(d["reference"], d["channel"], d["status"]) for d in inbox] == [
        (reference, "web", "acknowledged")
    ]
    assert inbox[0]["contactEmail"] == "camille.durand@exemple.fr"
    assert inbox[0]["contactName"] == "Camille Durand"
    assert inbox[0]["serviceId"] == str(commune.voirie_id)
    subjects = sorted(r["subject"] for r in await EmailMessage.select(EmailMessage.subject))
    assert subjects == [
        f"Accusé d'enregistrement – demande {reference}",
        f"Accusé de réception – demande {reference}",
    ]

    # The public list shows it, without any personal data.
    listing = await client.get(f"{ROOT}/requests.json")
    found = _json(listing)
    assert [r["service_request_id"] for r in found] == [reference]
    item = found[0]
    assert item["status"] == "open"
    assert item["service_code"] == POTHOLE and item["service_name"] == "Nid-de-poule"
    assert item["agency_responsible"] == "Voirie"
    assert item["lat"] == pytest.approx(RENNES[0]) and item["long"] == pytest.approx(RENNES[1])
    assert isinstance(item["lat"], float)
    for stamp in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3C.fullmatch(item[stamp]), stamp
    for private in ("camille", "durand", "06 12 34 56 78"):
        assert private not in listing.text.lower()

    # The token resolves to the request, in both formats.
    by_token = _json(await client.get(f"{ROOT}/tokens/{token}.json"))
    assert by_token == [{"service_request_id": reference, "token": token}]
    token_root = _xml(await client.get(f"{ROOT}/tokens/{token}.xml"))
    assert token_root.findtext("request/service_request_id") == reference
    _error(await client.get(f"{ROOT}/tokens/not-a-token.xml"), 404)


async def test_fixmystreet_style_post_keeps_links_and_attributes_for_the_agents(
    client: Client, app: Litestar
) -> None:
    commune, _, key = await _setup(app)
    body = [
        ("api_key", key),
        ("jurisdiction_id", "35238"),
        ("service_code", POTHOLE),
        ("lat", str(RENNES[0])),
        ("long", str(RENNES[1])),
        ("email", "fms@exemple.org"),
        ("description", "<p>Trou <b>énorme</b> &amp; profond</p><script>alert(1)</script>"),
        ("media_url", "https://fms.example/photo/1.jpg"),
        ("media_url", "https://fms.example/photo/2.jpg"),
        ("attribute[easting]", "351000"),
        ("attribute[closest_address]", "12 rue de la Paix"),
        ("account_id", "fms-42"),
    ]
    response = await client.post(
        f"{ROOT}/requests.xml",
        content=str(httpx.QueryParams(body)),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    root = _xml(response)
    assert response.status_code == 200, response.text
    assert root.findtext("request/account_id") == "fms-42"
    reference = root.findtext("request/service_request_id") or ""

    item = _json(await client.get(f"{ROOT}/requests/{reference}.json"))[0]
    assert item["description"] == "Trou énorme & profond"  # markup and script removed
    assert item["media_url"] is None  # remote media are not fetched nor republished

    admin = bearer(await log_in(client, commune.admin["email"]))
    demande_id = await _staff_id(client, admin, reference)
    staff = (await client.get(f"/staff/v1/demandes/{demande_id}", headers=admin)).json()
    entry = next(e for e in staff["timeline"] if e["kind"] == "open311")
    assert entry["public"] is False
    assert entry["data"]["mediaUrls"] == [
        "https://fms.example/photo/1.jpg",
        "https://fms.example/photo/2.jpg",
    ]
    assert entry["data"]["attributes"] == {
        "easting": ["351000"],
        "closest_address": ["12 rue de la Paix"],
    }
    assert "FixMyStreet" in entry["text"]


async def test_an_address_string_is_placed_by_the_geocoder(client: Client, app: Litestar) -> None:
    _, _, key = await _setup(app)
    reference = await _file(
        client,
        key,
        lat=None,
        long=None,
        address_string="12 Rue des Saules, Les Saules-sur-Loire",
    )
    item = _json(await client.get(f"{ROOT}/requests/{reference}.json"))[0]
    assert item["lat"] == pytest.approx(LES_SAULES[0])
    assert item["long"] == pytest.approx(LES_SAULES[1])
    assert item["address"] == "12 Rue des Saules 45150 Les Saules-sur-Loire"
    assert item["zipcode"] == "45150"
    row = await Demande.select(Demande.location_source).first()
    assert row is not None and row["location_source"] == "address"

    unknown = await _post(client, key, lat=None, long=None, address_string="Zzyzx qwfp")
    assert "address_string" in _error(unknown, 400)


async def test_a_missing_or_wrong_api_key_is_refused_with_403(
    client: Client, app: Litestar
) -> None:
    _, _, key = await _setup(app)
    assert "api_key" in _error(await _post(client, None, fmt="xml"), 403)
    assert "api_key" in _error(await _post(client, "not-our-key", fmt="json"), 403)
    assert "api_key" in _error(await _post(client, "", fmt="json"), 403)  # empty = absent
    # A key of another commune does not open this one.
    brest = await make_commune(app, insee="29019", name="Brest")
    brest_key = await create_api_key(brest.id, "Appli de Brest")
    _error(await _post(client, brest_key, jurisdiction_id="35238"), 403)
    # The key belongs in the body: one in the URL is not looked at.
    in_url = await client.post(
        f"{ROOT}/requests.json",
        params={"api_key": key},
        data=_fields(None, jurisdiction_id="35238"),
    )
    _error(in_url, 403)
    assert await Demande.count() == 0


async def test_incomplete_requests_are_refused_in_the_spec_format(
    client: Client, app: Litestar
) -> None:
    _, _, key = await _setup(app)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": ""}, 400, "service_code"),
        ({"service_code": "nid-de-chameau"}, 404, "service_code"),
        ({"lat": None, "long": None}, 400, "Emplacement"),
        ({"long": None}, 400, "lat et long"),
        ({"lat": "quarante-huit"}, 400, "lat"),
        ({"lat": "40.7128", "long": "-74.0060"}, 400, "lat/long"),  # New York, not France
        ({"lat": None, "long": None, "address_id": "45999_0420_00012"}, 400, "address_id"),
        ({"description": "x" * 4001}, 400, "description"),
        ({"email": None, "phone": None}, 400, "email"),
        ({"email": "pas-une-adresse"}, 400, "email"),
        ({"phone": "appelez-moi"}, 400, "phone"),
        ({"media_url": "ftp://example.org/a.jpg"}, 400, "media_url"),
    ]
    for extra, status, mention in cases:
        for fmt in ("xml", "json"):
            description = _error(await _post(client, key, fmt=fmt, **extra), status)
            assert mention in description, (extra, description)
    assert await Demande.count() == 0
    # A category open to anonymous reports needs no contact.
    await _file(client, key, service_code=GRAFFITI, email=None, phone=None)
    # A body that is not a form is refused the same way.
    response = await client.post(f"{ROOT}/requests.xml", json={"api_key": key})
    _error(response, 400)


async def test_get_requests_filters_by_status_service_dates_and_ids(
    client: Client, app: Litestar
) -> None:
    commune, _, key = await _setup(app)
    old = await _file(client, key, description="Ancien nid-de-poule.")
    first = await _file(client, key)
    graffiti = await _file(client, key, service_code=GRAFFITI, description="Tag sur le mur.")
    fixed = await _file(client, key)
    # `old` was filed 100 days ago: outside the default window of 90 days.
    long_ago = datetime.now(UTC) - timedelta(days=100)
    await Demande.update({Demande.created_at: long_ago}).where(Demande.reference == old)
    admin = bearer(await log_in(client, commune.admin["email"]))
    fixed_id = await _staff_id(client, admin, fixed)
    resolved = await client.post(
        f"/staff/v1/demandes/{fixed_id}/status",
        json={"status": "resolved", "message": "Rebouché ce matin."},
        headers=admin,
    )
    assert resolved.status_code == 200, resolved.text

    assert await _references(client) == [fixed, graffiti, first]  # newest first
    assert await _references(client, status="closed") == [fixed]
    assert await _references(client, status="open") == [graffiti, first]
    assert await _references(client, status="open,closed") == [fixed, graffiti, first]
    assert await _references(client, service_code=GRAFFITI) == [graffiti]
    assert await _references(client, service_code=f"{GRAFFITI},{POTHOLE}") == [
        fixed,
        graffiti,
        first,
    ]
    assert await _references(client, service_code="nid-de-chameau") == []
    # service_request_id overrides every other filter, dates and status included.
    assert await _references(
        client, service_request_id=f"{first},{old}", status="closed", service_code=GRAFFITI
    ) == [first, old]
    window = {
        "start_date": (long_ago - timedelta(days=1)).isoformat(),
        "end_date": (long_ago + timedelta(days=1)).isoformat(),
    }
    assert await _references(client, **window) == [old]
    assert await _references(client, start_date=window["start_date"]) == [old]
    assert await _references(client, end_date=window["end_date"]) == [old]
    # Empty parameters count as absent.
    assert await _references(client, status="", service_code="", start_date="") == [
        fixed,
        graffiti,
        first,
    ]
    # An offset's "+" that the client did not encode arrives as a space: still understood.
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    raw = await client.get(f"{ROOT}/requests.json?start_date={since}+00:00&status=closed")
    assert [r["service_request_id"] for r in _json(raw)] == [fixed]

    closed = _json(await client.get(f"{ROOT}/requests.json", params={"status": "closed"}))[0]
    assert closed["status_notes"] == "Rebouché ce matin."
    assert W3C.fullmatch(closed["updated_datetime"])
    opened = _json(await client.get(f"{ROOT}/requests/{first}.json"))[0]
    assert opened["status_notes"] == "Prise en compte"  # no reply yet: the status label

    too_long = {
        "start_date": "2026-01-01T00:00:00+01:00",
        "end_date": "2026-04-02T00:00:00+02:00",
    }
    assert "90 jours" in _error(await client.get(f"{ROOT}/requests.xml", params=too_long), 400)
    backwards = {"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-02-01T00:00:00Z"}
    _error(await client.get(f"{ROOT}/requests.json", params=backwards), 400)
    _error(await client.get(f"{ROOT}/requests.json", params={"start_date": "hier"}), 400)
    _error(await client.get(f"{ROOT}/requests.json", params={"status": "pending"}), 400)


async def test_one_request_by_id_is_still_a_list(client: Client, app: Litestar) -> None:
    _, _, key = await _setup(app)
    reference = await _file(client, key)
    found = _json(await client.get(f"{ROOT}/requests/{reference}.json"))
    assert isinstance(found, list) and len(found) == 1
    assert found[0]["service_request_id"] == reference
    root = _xml(await client.get(f"{ROOT}/requests/{reference}.xml"))
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [reference]
    request = root.find("request")
    assert request is not None
    fields = [c.tag for c in request]
    assert fields == [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ]
    _error(await client.get(f"{ROOT}/requests/2026-999999.xml"), 404)
    _error(await client.get(f"{ROOT}/requests/2026-999999.json"), 404)


async def test_private_and_hidden_demandes_never_appear(client: Client, app: Litestar) -> None:
    commune, _, key = await _setup(app)
    private = await client.post(
        f"{ROOT}/requests.json", data=_fields(key, service_code=CERTIFICATE)
    )
    assert private.status_code == 200, private.text
    certificate = private.json()[0]["service_request_id"]
    hidden = await _file(client, key)
    shown = await _file(client, key)
    admin = bearer(await log_in(client, commune.admin["email"]))
    moderated = await client.post(
        f"/staff/v1/demandes/{await _staff_id(client, admin, hidden)}/moderation",
        json={"hidden": True, "reason": "Propos injurieux"},
        headers=admin,
    )
    assert moderated.status_code == 204, moderated.text

    assert await _references(client) == [shown]
    assert await _references(client, service_request_id=f"{certificate},{hidden},{shown}") == [
        shown
    ]
    assert await _references(client, service_code=CERTIFICATE) == []
    for reference in (certificate, hidden):
        _error(await client.get(f"{ROOT}/requests/{reference}.json"), 404)
    # Its submitter can still resolve the token to the id it was already given.
    token = private.headers["X-Open311-Token"]
    assert _json(await client.get(f"{ROOT}/tokens/{token}.json"))[0]["service_request_id"] == (
        certificate
    )


async def test_photos_sent_with_the_request_are_published_unless_redacted(
    client: Client, app: Litestar
) -> None:
    commune, _, key = await _setup(app)
    fields = {k: str(v) for k, v in _fields(key).items()}
    response = await client.post(
        f"{ROOT}/requests.json",
        data=fields,
        files=[("photo1", ("IMG_1.jpg", jpeg(seed=5), "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    reference = response.json()[0]["service_request_id"]
    item = _json(await client.get(f"{ROOT}/requests/{reference}.json"))[0]
    assert item["media_url"].startswith("http://127.0.0.1:8000/media/")
    photo = await client.get(item["media_url"].removeprefix("http://127.0.0.1:8000"))
    assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"

    admin = bearer(await log_in(client, commune.admin["email"]))
    demande_id = await _staff_id(client, admin, reference)
    staff = (await client.get(f"/staff/v1/demandes/{demande_id}", headers=admin)).json()
    redacted = await client.post(
        f"/staff/v1/demandes/photos/{staff['photos'][0]['id']}/redact",
        json={"reason": "Un visage"},
        headers=admin,
    )
    assert redacted.status_code == 204, redacted.text
    assert _json(await client.get(f"{ROOT}/requests/{reference}.json"))[0]["media_url"] is None

    refused = await client.post(
        f"{ROOT}/requests.xml",
        data=fields,
        files=[("photo1", ("doc.pdf", b"%PDF-1.7 not a photo", "application/pdf"))],
    )
    _error(refused, 400)


async def test_the_jurisdiction_is_the_insee_code(client: Client, app: Litestar) -> None:
    _, _, key = await _setup(app)
    # One commune: jurisdiction_id is optional, and empty counts as absent.
    assert _json(await client.get(f"{ROOT}/services.json", params={"jurisdiction_id": ""}))
    assert _json(await client.get(f"{ROOT}/services.json", params={"jurisdiction_id": "35238"}))
    _error(await client.get(f"{ROOT}/services.xml", params={"jurisdiction_id": "99999"}), 404)

    await make_commune(app, insee="29019", name="Brest")
    # Several communes: it is required, everywhere but discovery.
    assert "jurisdiction_id" in _error(await client.get(f"{ROOT}/services.xml"), 400)
    _error(await client.get(f"{ROOT}/requests.json"), 400)
    _error(await _post(client, key), 400)
    assert (await client.get(f"{ROOT}/discovery.xml")).status_code == 200
    listed = await client.get(f"{ROOT}/services.json", params={"jurisdiction_id": "35238"})
    assert [s["service_code"] for s in _json(listed)] == [CERTIFICATE, POTHOLE, GRAFFITI]
    assert (
        _json(await client.get(f"{ROOT}/services.json", params={"jurisdiction_id": "29019"})) == []
    )
    assert (await _post(client, key, jurisdiction_id="35238")).status_code == 200


async def test_error_and_request_documents_stay_well_formed_xml(
    client: Client, app: Litestar
) -> None:
    _, _, key = await _setup(app)
    nasty = "<b>&amp;</b> \x01\x0b fin"
    description = _error(await _post(client, key, fmt="xml", service_code=nasty), 404)
    assert "<b>&amp;</b>" in description and "\x01" not in description
    # Characters XML cannot carry are dropped from the document, not from the demande.
    await _file(client, key, description="Trou\x07 avec <3 & des cailloux\x1b")
    root = _xml(await client.get(f"{ROOT}/requests.xml"))
    assert root.findtext("request/description") == "Trou avec <3 & des cailloux"
    unknown = await client.get(f"{ROOT}/no-such-thing.xml")
    assert "no-such-thing.xml" in _error(unknown, 404)


def test_w3c_dates_are_read_with_or_without_an_offset() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert parse_datetime("2026-01-31T00:00:00Z", "start_date", paris) == datetime(
        2026, 1, 31, tzinfo=UTC
    )
    # A "+" the client did not URL-encode arrives as a space.
    assert parse_datetime("2026-07-01T12:00:00 02:00", "start_date", paris) == datetime(
        2026, 7, 1, 10, tzinfo=UTC
    )
    # No offset: civil time in Paris (summer time here).
    assert parse_datetime("2026-07-01 12:00", "start_date", paris) == datetime(
        2026, 7, 1, 10, tzinfo=UTC
    )
    assert parse_datetime("2026-01-31", "end_date", paris) == datetime(2026, 1, 30, 23, tzinfo=UTC)
    with pytest.raises(Open311Error) as refused:
        parse_datetime("31/01/2026", "end_date", paris)
    assert refused.value.status == 400 and "end_date" in refused.value.description


async def test_an_api_key_is_stored_only_as_its_hash(app: Litestar) -> None:
    commune = await make_commune(app)
    key = await create_api_key(commune.id, "Tableau de bord open data")
    assert len(key) >= 40
    rows = await Open311Key.select()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert rows[0]["name"] == "Tableau de bord open data"
    assert key not in str(rows)
    with pytest.raises(InvalidInput):
        await create_api_key(commune.id, "  ")


async def test_the_georeport_client_reads_us_over_a_real_socket(
    app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    georeport = pytest.importorskip("georeport", reason="georeport 0.3.1 (test extra) missing")

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _, _, key = await _setup(app)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # Served on the test's own event loop, so both engines' connection pools stay usable; the
    # synchronous client (requests) runs in a thread.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}{ROOT}"
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            filed = []
            for code in (POTHOLE, GRAFFITI):
                response = await http.post("/requests.xml", data=_fields(key, service_code=code))
                assert response.status_code == 200, response.text
                filed.append(ET.fromstring(response.content).findtext("request/service_request_id"))

        for output in ("json", "xml"):
            geo = georeport.GeoReport(base, jurisdiction="35238", output_format=output)
            services = await asyncio.to_thread(geo.get_service_list)
            assert [s["service_code"] for s in services] == [CERTIFICATE, POTHOLE, GRAFFITI]
            definition = await asyncio.to_thread(geo.get_service_definition, POTHOLE)
            assert definition["service_code"] == POTHOLE
            found = await asyncio.to_thread(geo.get_service_requests, status="open")
            assert [r["service_request_id"] for r in found] == filed[::-1]
            some = await asyncio.to_thread(
                geo.get_service_requests, service_request_id=filed[0], service_code=GRAFFITI
            )
            one = some if isinstance(some, dict) else some[0]  # xmltodict: a lone item is a dict
            assert one["service_request_id"] == filed[0]
            single = await asyncio.to_thread(geo.get_service_request, filed[1])
            assert single["service_request_id"] == filed[1]
            assert single["service_code"] == GRAFFITI
    finally:
        server.should_exit = True
        await serving
