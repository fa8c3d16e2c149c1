"""Liveness, readiness and the OpenAPI page."""

from __future__ import annotations

from tests.factories import Client


async def test_health_answers_without_database(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_the_database(client: Client) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def test_openapi_documents_every_operation_in_french(client: Client) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    schema = (await client.get("/docs/openapi.json")).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {"signUp", "logIn", "refreshSession", "registerDevice", "createStaff"} <= operations


async def test_every_response_carries_a_request_id(client: Client) -> None:
    ok = await client.get("/health")
    missing = await client.get("/nowhere")
    assert len(ok.headers["x-request-id"]) >= 8
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == missing.json()["requestId"]
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_a_sane_client_request_id_is_kept(client: Client) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "app-1234abcd"})
    assert response.headers["x-request-id"] == "app-1234abcd"
