"""``AntsClient`` against the loopback ANTS coordination API (real HTTP, no mocks, no database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from backend.appointments.ants import (
    APPLICATION_ID_MESSAGE,
    AntsAppointment,
    AntsClient,
    AntsRejected,
    AntsStatus,
    AntsUnavailable,
    format_appointment_date,
    normalise_application_id,
)
from tests.peers.ants import AntsPeer

MAIRIE = ("Mairie de Relais-sur-Loire", "45999-1")  # meeting_point, meeting_point_id
OURS = "https://relais.example/rdv/gerer/tok-1"
ELSEWHERE = "https://autre-editeur.example/rdv/42"


@pytest.fixture(scope="module")
def ants_server() -> Iterator[AntsPeer]:
    """One peer for the module; state is cleared before each test."""
    with AntsPeer() as peer:
        yield peer


@pytest.fixture
def ants(ants_server: AntsPeer) -> AntsPeer:
    """The peer, empty and healthy."""
    ants_server.clear()
    return ants_server


@pytest.fixture
async def ants_client(ants: AntsPeer) -> AsyncIterator[AntsClient]:
    """A client with the peer's token and a short timeout."""
    client = AntsClient(ants.base_url, ants.token, timeout=2.0)
    yield client
    await client.aclose()


# --- application ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ab12345678 ", "AB12345678"),
        ("AB 1234 5678", "AB12345678"),
        ("1234567890", "1234567890"),
        ("\tab12345678\n", "AB12345678"),
    ],
)
def test_application_id_normalised(raw: str, expected: str) -> None:
    assert normalise_application_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["AB1234567", "AB123456789", "AB1234567!", "AB-1234567", "", "ÉB12345678"]
)
def test_application_id_refused(raw: str) -> None:
    with pytest.raises(ValueError) as info:
        normalise_application_id(raw)
    assert str(info.value) == APPLICATION_ID_MESSAGE


def test_appointment_date_is_paris_wall_clock() -> None:
    # 08:30 UTC in June is 10:30 in Paris (CEST); in January 09:30 (CET).
    assert format_appointment_date(datetime(2025, 6, 2, 8, 30, tzinfo=UTC)) == (
        "2025-06-02 10:30:00"
    )
    assert format_appointment_date(datetime(2025, 1, 6, 8, 30, tzinfo=UTC)) == (
        "2025-01-06 09:30:00"
    )
    assert format_appointment_date(datetime(2025, 6, 2, 10, 30)) == "2025-06-02 10:30:00"


# --- status ----------------------------------------------------------------------------------


async def test_status_validated_consumed_unknown(ants: AntsPeer, ants_client: AntsClient) -> None:
    ants.set_status("AB12345678", "validated")
    ants.set_status("CD12345678", "consumed")

    result = await ants_client.status(["AB12345678", "CD12345678", "EF12345678"])

    assert list(result) == ["AB12345678", "CD12345678", "EF12345678"]
    assert result["AB12345678"] == AntsStatus("AB12345678", "validated", [])
    assert result["AB12345678"].bookable
    assert result["CD12345678"].status == "consumed"
    assert not result["CD12345678"].bookable
    assert result["EF12345678"].status == "unknown"
    assert not result["EF12345678"].bookable


async def test_status_shows_appointment_booked_elsewhere(
    ants: AntsPeer, ants_client: AntsClient
) -> None:
    ants.set_status("AB12345678", "validated")
    ants.add_appointment(
        "AB12345678",
        "Mairie de Lyon 3e",
        "69383-2",
        "2025-06-03 14:15:00",
        ELSEWHERE,
        editor_comment="Venir 10 minutes avant",
    )

    [status] = (await ants_client.status(["AB12345678"])).values()

    assert status.status == "validated"
    assert status.appointments == [
        AntsAppointment(
            management_url=ELSEWHERE,
            meeting_point="Mairie de Lyon 3e",
            meeting_point_id="69383-2",
            appointment_date="2025-06-03 14:15:00",
            editor_comment="Venir 10 minutes avant",
        )
    ]
    assert not status.bookable
    assert not status.bookable_except(OURS)
    assert status.bookable_except(ELSEWHERE)


async def test_status_sends_repeated_keys_and_token(
    ants: AntsPeer, ants_client: AntsClient
) -> None:
    await ants_client.status(
        [" ab12345678", "CD 1234 5678", "AB12345678"], meeting_point_id="45999-1"
    )

    [call] = ants.calls
    assert (call.method, call.path, call.token_ok, call.body_length) == ("GET", "/status", True, 0)
    # Repeated keys, no brackets, no comma list; normalised and de-duplicated.
    assert call.query == [
        ("application_ids", "AB12345678"),
        ("application_ids", "CD12345678"),
        ("meeting_point_id", "45999-1"),
    ]


async def test_status_checks_ids_before_calling(ants: AntsPeer, ants_client: AntsClient) -> None:
    with pytest.raises(ValueError):
        await ants_client.status(["AB12345678", "AB1234"])
    assert await ants_client.status([]) == {}
    assert ants.calls == []


async def test_ids_left_out_of_the_answer_are_unknown(
    ants: AntsPeer, ants_client: AntsClient
) -> None:
    ants.fail_with(200, body='{"ab12345678": {"status": "validated"}}', times=1)

    result = await ants_client.status(["AB12345678", "CD12345678"])

    assert result["AB12345678"] == AntsStatus("AB12345678", "validated", [])
    assert result["CD12345678"] == AntsStatus("CD12345678", "unknown", [])


@pytest.mark.parametrize(
    "body", ["<html>maintenance</html>", "[]", '{"AB12345678": "validated"}', '{"AB12345678": {}}']
)
async def test_unreadable_status_is_unavailability(
    ants: AntsPeer, ants_client: AntsClient, body: str
) -> None:
    ants.fail_with(200, body=body)
    with pytest.raises(AntsUnavailable, match="unreadable"):
        await ants_client.status(["AB12345678"])


# --- declare / delete ------------------------------------------------------------------------


async def test_declare_then_status_shows_it(ants: AntsPeer, ants_client: AntsClient) -> None:
    ants.set_status("AB12345678", "validated")

    await ants_client.declare("ab12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)

    [call] = ants.calls
    assert (call.method, call.path, call.body_length) == ("POST", "/appointments", 0)
    assert call.query == [
        ("application_id", "AB12345678"),
        ("meeting_point", MAIRIE[0]),
        ("meeting_point_id", MAIRIE[1]),
        ("appointment_date", "2025-06-02 10:30:00"),
        ("management_url", OURS),
    ]
    status = (await ants_client.status(["AB12345678"]))["AB12345678"]
    assert status.appointments == [
        AntsAppointment(OURS, MAIRIE[0], MAIRIE[1], "2025-06-02 10:30:00")
    ]
    assert not status.bookable
    assert status.bookable_except(OURS)


async def test_delete_returns_rowcount(ants: AntsPeer, ants_client: AntsClient) -> None:
    await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)

    assert await ants_client.delete("AB12345678", *MAIRIE, "2025-06-02 10:30:00") == 1
    # A retried delete (e.g. after a timeout whose request did land) finds nothing.
    assert await ants_client.delete("AB12345678", *MAIRIE, "2025-06-02 10:30:00") == 0

    assert ants.calls[-1].method == "DELETE"
    assert ants.calls[-1].params("appointment_date") == ["2025-06-02 10:30:00"]
    assert ants.calls[-1].params("management_url") == []
    assert (await ants_client.status(["AB12345678"]))["AB12345678"].appointments == []


async def test_move_is_delete_then_create(ants: AntsPeer, ants_client: AntsClient) -> None:
    ants.set_status("AB12345678", "validated")
    await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)

    assert await ants_client.delete("AB12345678", *MAIRIE, "2025-06-02 10:30:00") == 1
    await ants_client.declare("AB12345678", *MAIRIE, "2025-06-04 16:00:00", OURS)

    status = (await ants_client.status(["AB12345678"]))["AB12345678"]
    assert [a.appointment_date for a in status.appointments] == ["2025-06-04 16:00:00"]
    assert [c.method for c in ants.calls] == ["POST", "DELETE", "POST", "GET"]


async def test_declare_same_management_url_twice_keeps_one(
    ants: AntsPeer, ants_client: AntsClient
) -> None:
    # The peer keys appointments on (application_id, management_url), like the ANTS seems to.
    await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)
    await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)
    assert len(ants.appointments_of("AB12345678")) == 1


async def test_bad_date_never_leaves(ants: AntsPeer, ants_client: AntsClient) -> None:
    for bad in ("2025-06-02T10:30:00", "2025-06-02 10:30", "2025-02-30 10:30:00"):
        with pytest.raises(ValueError, match="YYYY-MM-DD HH:MM:SS"):
            await ants_client.declare("AB12345678", *MAIRIE, bad, OURS)
        with pytest.raises(ValueError):
            await ants_client.delete("AB12345678", *MAIRIE, bad)
    assert ants.calls == []


async def test_success_false_is_rejection(ants: AntsPeer, ants_client: AntsClient) -> None:
    ants.fail_with(200, body='{"success": false}')
    with pytest.raises(AntsRejected):
        await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)


# --- failures --------------------------------------------------------------------------------


async def test_bad_token_is_rejection(ants: AntsPeer) -> None:
    async with AntsClient(ants.base_url, "not-the-token") as client:
        with pytest.raises(AntsRejected) as info:
            await client.status(["AB12345678"])
        assert info.value.status_code == 401
        assert info.value.detail == "X-RDV-OPT-AUTH-TOKEN header invalid"
        with pytest.raises(AntsRejected):
            await client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)
        with pytest.raises(AntsRejected):
            await client.delete("AB12345678", *MAIRIE, "2025-06-02 10:30:00")
    assert [c.token_ok for c in ants.calls] == [False, False, False]
    assert ants.appointments == {}


async def test_other_4xx_is_rejection(ants: AntsPeer, ants_client: AntsClient) -> None:
    ants.fail_with(422)
    with pytest.raises(AntsRejected) as info:
        await ants_client.delete("AB12345678", *MAIRIE, "2025-06-02 10:30:00")
    assert info.value.status_code == 422


@pytest.mark.parametrize("code", [500, 502, 503, 504, 429])
async def test_server_errors_are_unavailability(
    ants: AntsPeer, ants_client: AntsClient, code: int
) -> None:
    ants.fail_with(code, times=1)
    with pytest.raises(AntsUnavailable) as info:
        await ants_client.status(["AB12345678"])
    assert info.value.status_code == code
    # Only the next call failed: the client is usable again, no state was lost.
    assert (await ants_client.status(["AB12345678"]))["AB12345678"].status == "unknown"


async def test_timeout_is_unavailability(ants: AntsPeer) -> None:
    ants.slow(0.6, times=1)
    async with AntsClient(ants.base_url, ants.token, timeout=0.15) as client:
        with pytest.raises(AntsUnavailable, match="timeout"):
            await client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)
        await ants.idle()
        # The slow request still landed after we gave up: why declarations must be idempotent.
        assert len(ants.appointments_of("AB12345678")) == 1
        assert (await client.status(["AB12345678"]))["AB12345678"].appointments


async def test_connection_refused_is_unavailability(
    ants: AntsPeer, ants_client: AntsClient
) -> None:
    await ants_client.status(["AB12345678"])  # a keep-alive connection now sits in the pool
    ants.down()
    try:
        with pytest.raises(AntsUnavailable):
            await ants_client.status(["AB12345678"])
        with pytest.raises(AntsUnavailable):
            await ants_client.declare("AB12345678", *MAIRIE, "2025-06-02 10:30:00", OURS)
    finally:
        ants.up()
    assert (await ants_client.status(["AB12345678"]))["AB12345678"].status == "unknown"


# --- the peer itself -------------------------------------------------------------------------


async def test_peer_ignores_bodies_and_checks_dates(ants: AntsPeer) -> None:
    """Parameters only count in the query string; the date format is enforced (422)."""
    headers = {"x-rdv-opt-auth-token": ants.token}
    fields = {
        "application_id": "AB12345678",
        "meeting_point": MAIRIE[0],
        "meeting_point_id": MAIRIE[1],
        "appointment_date": "2025-06-02 10:30:00",
        "management_url": OURS,
    }
    async with httpx.AsyncClient(base_url=ants.base_url + "/", headers=headers) as raw:
        as_json = await raw.post("appointments", json=fields)
        as_form = await raw.post("appointments", data=fields)
        iso = await raw.post("appointments", params={**fields, "appointment_date": "2025-06-02"})
        ok = await raw.post("appointments", params=fields)
    assert as_json.status_code == as_form.status_code == 422
    assert {e["loc"][1] for e in as_json.json()["detail"]} == set(fields)
    assert iso.status_code == 422
    assert ok.json() == {"success": True}
    assert ants.calls[0].body_length > 0
    assert len(ants.appointments_of("AB12345678")) == 1
