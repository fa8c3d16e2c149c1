"""Composition root: `create_app()` wires settings, database, HTTP routers and error mapping."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.logging.config import LoggingConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from piccolo.engine.base import Engine

from backend import database
from backend.appointments.ants import AntsClient
from backend.errors import EXCEPTION_HANDLERS, problem
from backend.idempotency.middleware import IdempotencyMiddleware
from backend.interop.ants_editor import AntsEditorController
from backend.interop.cap import CapController
from backend.interop.feeds import FeedController
from backend.interop.open311 import Open311Controller
from backend.media_api import MediaController
from backend.ratelimit import make_rate_limiter
from backend.request_context import RequestIdMiddleware, add_request_id_header
from backend.settings import Settings, get_settings
from backend.staff_api.controllers import staff_router
from geo import make_geocoder
from media import LocalMediaStorage
from mobile_api.deps import DEPENDENCIES
from mobile_api.router import api_router

VERSION = "0.1.0"


@get("/health", operation_id="health", tags=["Exploitation"], include_in_schema=True)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/ready", operation_id="ready", tags=["Exploitation"])
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Readiness: the database answers."""
    if await database.is_reachable():
        return Response({"status": "ready", "database": "ok"})
    return problem(
        request,
        status=503,
        code="database-unavailable",
        title="Service indisponible",
        detail="La base de données ne répond pas. Réessayez dans quelques instants.",
    )


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """Build the Litestar application.

    `engine` lets tests share one engine (and its pool) across apps; otherwise the app builds
    its own from `settings.database_url` and owns its pool.
    """
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or database.engine_from_url(settings.database_url)
    database.bind_engine(engine)
    limiter = make_rate_limiter(settings.redis_url)
    ants = AntsClient(settings.ants_url, settings.ants_token)
    storage = LocalMediaStorage(settings.var_dir / "media", f"{settings.public_url}/media")
    geocoder = make_geocoder(
        settings.geocoder, settings.geocoder_url or None, settings.geocoder_timeout
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owns_engine:  # a served process (tests share an engine and build many apps)
            await database.start(engine)
            # What exists at start-up lives as long as the process: out of the collector's
            # sight, full collections stop walking it (pauses of tens of ms: latency spikes).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await limiter.aclose()
            await ants.aclose()
            if owns_engine:
                await database.stop(engine)

    return Litestar(
        route_handlers=[
            health,
            ready,
            api_router(),
            staff_router(),
            CapController,
            Open311Controller,
            FeedController,
            AntsEditorController,
            MediaController,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestIdMiddleware, IdempotencyMiddleware],
        before_send=[add_request_id_header],
        # The root logger is `configure_logging`'s (request ids, RELAIS_LOG_LEVEL): Litestar's
        # default config would replace its handler and set it to INFO.
        logging_config=LoggingConfig(configure_root_logger=False),
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "rate_limiter": limiter,
                "geocoder": geocoder,
                "storage": storage,
                "ants": ants,
            }
        ),
        openapi_config=OpenAPIConfig(
            title="Relais API",
            version=VERSION,
            description=(
                "API de Relais, l'application citoyenne des communes : signalements, "
                "rendez-vous, suivi des demandes, actualités et alertes."
            ),
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=False,
    )
