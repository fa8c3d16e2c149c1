"""The public CAP 1.2 feed: what aggregators read, valid against the OASIS schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import feedparser
import xmlschema
from litestar import Litestar

from tests.alerts.factories import alert_body
from tests.alerts.test_cap import _schema_dir
from tests.factories import Client, bearer, log_in, make_commune

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SCHEMA = xmlschema.XMLSchema(_schema_dir() / "cap12.xsd")


async def test_alert_update_and_cancel_are_valid_cap_with_references(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    staff = bearer(await log_in(client, commune.admin["email"]))
    body = alert_body(translations={"en": {"headline": "Vilaine river flood"}})
    alert = (await client.post("/staff/v1/alerts", json=body, headers=staff)).json()
    draft = await client.get(f"/cap/v1/alerts/{alert['messageId']}")
    assert draft.status_code == 404  # drafts are not published
    sent = (await client.post(f"/staff/v1/alerts/{alert['id']}/send", headers=staff)).json()

    feed = await client.get("/cap/v1/alerts")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo
    [entry] = parsed.entries
    assert entry.title == "Crue de la Vilaine"
    assert entry.link.endswith(f"/cap/v1/alerts/{sent['messageId']}")
    unchanged = await client.get("/cap/v1/alerts", headers={"If-None-Match": feed.headers["etag"]})
    assert unchanged.status_code == 304

    original = await client.get(f"/cap/v1/alerts/{sent['messageId']}")
    assert original.headers["content-type"].startswith("application/cap+xml")
    SCHEMA.validate(original.content)
    root = ET.fromstring(original.content)
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert root.findtext("cap:sent", namespaces=NS)[-6:] in {"+01:00", "+02:00"}
    languages = [i.findtext("cap:language", namespaces=NS) for i in root.findall("cap:info", NS)]
    assert languages == ["fr-FR", "en-GB"]
    polygon = root.find("cap:info/cap:area/cap:polygon", NS)
    assert polygon is not None
    pairs = polygon.text.split() if polygon.text else []
    assert pairs[0] == pairs[-1] and len(pairs) >= 4  # closed, lat,lon
    identifier = root.findtext("cap:identifier", namespaces=NS)

    updated = (
        await client.post(
            f"/staff/v1/alerts/{alert['id']}/update",
            json={"headline": "Crue majeure de la Vilaine"},
            headers=staff,
        )
    ).json()
    update_doc = (await client.get(f"/cap/v1/alerts/{updated['messageId']}")).content
    SCHEMA.validate(update_doc)
    update_root = ET.fromstring(update_doc)
    assert update_root.findtext("cap:msgType", namespaces=NS) == "Update"
    assert identifier in (update_root.findtext("cap:references", namespaces=NS) or "")
    [entry] = feedparser.parse((await client.get("/cap/v1/alerts")).content).entries
    assert entry.title == "Crue majeure de la Vilaine"  # the feed shows the newest message only

    cancelled = (
        await client.post(f"/staff/v1/alerts/{alert['id']}/cancel", json={}, headers=staff)
    ).json()
    cancel_doc = (await client.get(f"/cap/v1/alerts/{cancelled['messageId']}")).content
    SCHEMA.validate(cancel_doc)
    references = ET.fromstring(cancel_doc).findtext("cap:references", namespaces=NS) or ""
    assert identifier in references and updated["identifier"] in references
    assert feedparser.parse((await client.get("/cap/v1/alerts")).content).entries == []


async def test_circle_alerts_publish_a_cap_circle(client: Client, app: Litestar) -> None:
    commune = await make_commune(app)
    staff = bearer(await log_in(client, commune.admin["email"]))
    area = {"kind": "circle", "center": {"lat": 48.11, "lon": -1.68}, "radiusM": 1500}
    alert = (await client.post("/staff/v1/alerts", json=alert_body(area), headers=staff)).json()
    sent = (await client.post(f"/staff/v1/alerts/{alert['id']}/send", headers=staff)).json()
    document = (await client.get(f"/cap/v1/alerts/{sent['messageId']}")).content
    SCHEMA.validate(document)
    circle = ET.fromstring(document).findtext("cap:info/cap:area/cap:circle", namespaces=NS)
    assert circle == "48.11,-1.68 1.5"
