"""An in-process HTTP client on the test's own event loop.

Litestar's AsyncTestClient runs the application in a separate thread and event loop; asyncpg
pools belong to one loop, and the concurrency tests need requests that really overlap. So the
tests speak HTTP to the app through httpx's ASGI transport on the test loop, with the app's
lifespan (startup/shutdown) driven here exactly as a server would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run the ASGI lifespan protocol around the block."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await to_app.get()

    async def send(message: dict[str, Any]) -> None:
        await from_app.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))  # type: ignore[arg-type]
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


@asynccontextmanager
async def http_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to the app, its lifespan running."""
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://relais.test") as client:
            yield client
