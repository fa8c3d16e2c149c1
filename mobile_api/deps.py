"""Dependencies shared by the API controllers."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from backend.accounts.service import TokenSettings
from backend.auth import provide_principal
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from geo import Geocoder
from media import MediaStorage


def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def provide_token_settings(request: Request[Any, Any, Any]) -> TokenSettings:
    """What the accounts service needs to issue tokens."""
    s: Settings = request.app.state.settings
    return TokenSettings(s.secret_key, s.access_token_ttl, s.refresh_token_ttl, s.argon2_memory_kib)


def provide_limiter(request: Request[Any, Any, Any]) -> RateLimiter:
    """The rate limiter (memory or Redis)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def provide_geocoder(request: Request[Any, Any, Any]) -> Geocoder:
    """The geocoder (BAN by default) built at start-up."""
    geocoder: Geocoder = request.app.state.geocoder
    return geocoder


def provide_storage(request: Request[Any, Any, Any]) -> MediaStorage:
    """Where photos are stored (a local directory by default)."""
    storage: MediaStorage = request.app.state.storage
    return storage


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The client's address as the server sees it (run behind a proxy with proxy headers on)."""
    return request.client.host if request.client else "unknown"


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "token_settings": Provide(provide_token_settings, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
    "principal": Provide(provide_principal),
    "geocoder": Provide(provide_geocoder, sync_to_thread=False),
    "storage": Provide(provide_storage, sync_to_thread=False),
}
