"""A resident reports a pothole from the phone: photos, position, duplicates, the public map."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from litestar import Litestar
from PIL import Image

from backend.demandes.jobs import fill_missing_addresses
from backend.demandes.tables import Demande, Photo, TimelineEntry
from backend.mail.tables import EmailMessage
from geo import make_geocoder
from tests.alerts.factories import device
from tests.demandes.factories import RENNES, jpeg, make_categories, report_fields
from tests.demandes.factories import file_report as _file
from tests.factories import Client, bearer, make_commune, sign_up
from tests.peers.ban import BanPeer

LES_SAULES = (47.85262, 2.06151)  # 12 rue des Saules in the BAN peer's gazetteer


def _media_files(app: Litestar) -> list[Path]:
    root = Path(app.state.settings.var_dir) / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_report_with_two_photos_is_filed_and_acknowledged(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    session = await sign_up(client, "camille@exemple.fr")
    phone = await device(client)
    response = await _file(
        client,
        report_fields(commune, categories.pothole),
        [jpeg(gps=RENNES, seed=1), jpeg(seed=2)],
        **phone,
        **bearer(session),
    )
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["reference"].startswith("2026-") and len(report["reference"]) == 11
    assert report["status"] == "acknowledged"
    assert report["serviceName"] == "Voirie"
    assert [e["kind"] for e in report["timeline"]] == [
        "created",
        "acknowledgment",
        "acknowledgment",
    ]
    receipt = report["timeline"][2]["text"]
    assert "Voirie" in receipt and "02 23 62 10 20" in receipt and "reçue le" in receipt
    assert len(report["photos"]) == 2

    # Photos are served stripped of every metadata field, in display size and thumbnail.
    display = await client.get(report["photos"][0]["url"].removeprefix("http://127.0.0.1:8000"))
    assert display.status_code == 200
    image = Image.open(io.BytesIO(display.content))
    assert not image.getexif()
    assert "exif" not in image.info
    thumb = await client.get(
        report["photos"][0]["thumbnailUrl"].removeprefix("http://127.0.0.1:8000")
    )
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320

    # The legal acknowledgments: in the app and by e-mail.
    inbox = (await client.get("/api/v1/inbox", headers=phone)).json()
    assert inbox["items"][0]["title"] == f"Demande {report['reference']} enregistrée"
    subjects = sorted(r["subject"] for r in await EmailMessage.select(EmailMessage.subject))
    assert subjects == [
        f"Accusé d'enregistrement – demande {report['reference']}",
        f"Accusé de réception – demande {report['reference']}",
    ]
    mine = await client.get("/api/v1/demandes", headers=bearer(session))
    assert [d["reference"] for d in mine.json()] == [report["reference"]]


async def test_the_photo_places_the_report_when_the_phone_gives_no_position(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    fields = report_fields(commune, categories.pothole, lat=None, lon=None)
    response = await _file(client, fields, [jpeg(gps=(48.1201, -1.6702))], **phone)
    assert response.status_code == 201, response.text
    assert abs(response.json()["lat"] - 48.1201) < 1e-4
    row = await Demande.select(Demande.location_source).first()
    assert row is not None and row["location_source"] == "photo"


async def test_refused_uploads_leave_nothing_behind(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    fields = report_fields(commune, categories.pothole)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 megapixels, a few kilobytes
    cases = {
        "not an image": b"%PDF-1.7 this is a pdf pretending to be a photo",
        "truncated": jpeg(seed=3)[:4000],
        "bomb": bomb.getvalue(),
    }
    for name, payload in cases.items():
        response = await _file(client, fields, [jpeg(seed=4), payload], **phone)
        assert response.status_code == 422, (name, response.text)
        body = response.json()
        assert body["code"] == "photo-refused", name
        assert body["errors"][0]["field"] == "photos[1]"
        assert "photo 2" in body["detail"]
    too_big = await _file(client, fields, [b"\xff\xd8" + b"0" * (30 * 1024 * 1024)], **phone)
    assert too_big.status_code == 413
    assert too_big.json()["detail"].startswith("Le fichier ou les données envoyés sont trop")
    no_place = await _file(
        client,
        report_fields(commune, categories.pothole, lat=None, lon=None),
        [jpeg(seed=5)],
        **phone,
    )
    assert no_place.status_code == 422
    abroad = await _file(
        client,
        report_fields(commune, categories.pothole, lat=40.7, lon=-74.0),
        [jpeg(seed=6)],
        **phone,
    )
    assert abroad.status_code == 422
    assert "en dehors de la France" in abroad.json()["detail"]
    six = await _file(client, fields, [jpeg(seed=i) for i in range(6)], **phone)
    assert six.status_code == 422
    assert await Demande.count() == 0
    assert await Photo.count() == 0
    assert _media_files(app) == []


async def test_a_geocoder_outage_never_blocks_a_report(
    client: Client, app: Litestar, ban_peer: BanPeer
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    ban_peer.fail_with(500)
    fields = report_fields(commune, categories.pothole, lat=LES_SAULES[0], lon=LES_SAULES[1])
    response = await _file(client, fields, [], **phone)
    assert response.status_code == 201
    assert response.json()["address"] == ""
    ban_peer.recover()
    settings = app.state.settings
    geocoder = make_geocoder("ban", settings.geocoder_url, 1.0)
    assert await fill_missing_addresses(geocoder) == 1
    row = await Demande.select(Demande.address).first()
    assert row is not None and row["address"].startswith("12 Rue des Saules")


async def test_a_retried_upload_files_one_report(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    headers = {**phone, "Idempotency-Key": "upload-7f3a"}
    fields = report_fields(commune, categories.pothole)
    photos = [jpeg(seed=9), jpeg(seed=10)]
    answers = await asyncio.gather(*(_file(client, fields, photos, **headers) for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["reference"] for a in answers}) == 1
    # One ran; the others waited for its answer and replayed it.
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == [
        "",
        "true",
        "true",
        "true",
    ]
    assert await Demande.count() == 1
    assert await Photo.count() == 2
    assert await TimelineEntry.count().where(TimelineEntry.kind == "created") == 1


async def test_similar_reports_nearby_are_suggested_nearest_first(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    near = report_fields(commune, categories.pothole, lat=48.1120, lon=-1.6800)  # ~80 m
    nearer = report_fields(commune, categories.pothole, lat=48.1115, lon=-1.6800)  # ~25 m
    far = report_fields(commune, categories.pothole, lat=48.1200, lon=-1.6800)  # ~1 km
    other = report_fields(commune, categories.graffiti, lat=48.1114, lon=-1.6800)
    for fields in (near, nearer, far, other):
        assert (await _file(client, fields, [jpeg(seed=1)], **phone)).status_code == 201
    response = await client.get(
        "/api/v1/reports/nearby",
        params={
            "communeId": str(commune.id),
            "categoryId": str(categories.pothole),
            "lat": RENNES[0],
            "lon": RENNES[1],
        },
    )
    assert response.status_code == 200, response.text
    suggestions = response.json()
    assert [s["distanceM"] for s in suggestions] == sorted(s["distanceM"] for s in suggestions)
    assert len(suggestions) == 2
    assert 70 <= suggestions[1]["distanceM"] <= 90
    assert suggestions[0]["thumbnailUrl"].endswith(".jpg")


async def test_the_public_map_shows_public_reports_without_personal_data(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    session = await sign_up(client, "camille@exemple.fr")
    await _file(
        client,
        report_fields(
            commune, categories.pothole, contactName="Camille Martin", contactPhone="0612345678"
        ),
        [],
        **bearer(session),
    )
    filed = await client.post(
        "/api/v1/demandes",
        json={
            "communeId": str(commune.id),
            "categoryId": str(categories.birth_certificate),
            "description": "Copie intégrale d'acte de naissance",
            "lat": RENNES[0],
            "lon": RENNES[1],
        },
        headers=bearer(session),
    )
    assert filed.status_code == 201
    bbox = "-1.70,48.10,-1.66,48.12"
    response = await client.get("/api/v1/reports/map", params={"bbox": bbox})
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    [feature] = collection["features"]  # the birth certificate request is not public
    assert feature["geometry"]["coordinates"] == [RENNES[1], RENNES[0]]
    text = response.text
    assert "Camille" not in text and "0612345678" not in text and "camille@" not in text
    outside = await client.get("/api/v1/reports/map", params={"bbox": "2.0,47.0,2.1,47.1"})
    assert outside.json()["features"] == []
    filtered = await client.get("/api/v1/reports/map", params={"bbox": bbox, "status": "resolved"})
    assert filtered.json()["features"] == []
    bad = await client.get("/api/v1/reports/map", params={"bbox": "1,2,3"})
    assert bad.status_code == 422
    public = await client.get(f"/api/v1/reports/{feature['id']}")
    assert "contactName" not in public.json() and public.json()["reference"]


async def test_residents_cannot_read_each_others_demandes(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    camille = await sign_up(client, "camille@exemple.fr")
    dominique = await sign_up(client, "dominique@exemple.fr")
    filed = await client.post(
        "/api/v1/demandes",
        json={
            "communeId": str(commune.id),
            "categoryId": str(categories.birth_certificate),
            "description": "Copie intégrale d'acte de naissance",
        },
        headers=bearer(camille),
    )
    demande_id = filed.json()["id"]
    assert (
        await client.get(f"/api/v1/demandes/{demande_id}", headers=bearer(camille))
    ).status_code == 200
    other = await client.get(f"/api/v1/demandes/{demande_id}", headers=bearer(dominique))
    assert other.status_code == 404
    anonymous = await client.get(f"/api/v1/demandes/{demande_id}")
    assert anonymous.status_code == 401
    private = await client.get(f"/api/v1/reports/{demande_id}")
    assert private.status_code == 404
