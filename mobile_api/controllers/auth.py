"""Sign-up, login, token refresh and logout."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from alerts.devices import attach_to_account
from backend.accounts import service as accounts
from backend.accounts.service import TokenPair, TokenSettings
from backend.auth import Principal
from backend.ratelimit import RateLimiter
from backend.settings import Settings
from mobile_api.deps import client_ip
from mobile_api.schemas import AccountOut, Credentials, RefreshRequest, Session, SignUp


def _session(pair: TokenPair) -> Session:
    return Session(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        account=AccountOut.from_row(pair.account),
    )


async def _limit(
    limiter: RateLimiter, settings: Settings, request: Request[Any, Any, Any], email: str
) -> None:
    await limiter.hit(f"auth:ip:{client_ip(request)}", *settings.rate_auth_per_ip)
    await limiter.hit(f"auth:account:{email.strip().casefold()}", *settings.rate_auth_per_account)


class AuthController(Controller):
    """Citizen and staff authentication."""

    path = "/auth"
    tags = ["Compte"]

    @post(
        "/signup",
        operation_id="signUp",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
    )
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignUp],
        settings: NamedDependency[Settings],
        token_settings: NamedDependency[TokenSettings],
        limiter: NamedDependency[RateLimiter],
        principal: NamedDependency[Principal],
    ) -> Session:
        """Create a citizen account and sign in (the calling device is attached to it)."""
        await _limit(limiter, settings, request, data.email)
        account = await accounts.create_account(
            email=data.email,
            password=data.password,
            display_name=data.display_name,
            role="citizen",
            settings=token_settings,
        )
        if principal.device_id is not None:
            await attach_to_account(principal.device_id, account["id"])
        return _session(await accounts.start_session(account, token_settings))

    @post("/login", operation_id="logIn", status_code=HTTP_200_OK)
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        settings: NamedDependency[Settings],
        token_settings: NamedDependency[TokenSettings],
        limiter: NamedDependency[RateLimiter],
        principal: NamedDependency[Principal],
    ) -> Session:
        """Sign in with e-mail and password (rate limited per address and per account)."""
        await _limit(limiter, settings, request, data.email)
        pair = await accounts.login(data.email, data.password, token_settings)
        if principal.device_id is not None:
            await attach_to_account(principal.device_id, pair.account["id"])
        return _session(pair)

    @post("/refresh", operation_id="refreshSession", status_code=HTTP_200_OK)
    async def refresh(
        self, data: JSONBody[RefreshRequest], token_settings: NamedDependency[TokenSettings]
    ) -> Session:
        """Exchange a refresh token for a new pair; a reused token closes the session."""
        return _session(await accounts.refresh(data.refresh_token, token_settings))

    @post("/logout", operation_id="logOut", status_code=HTTP_204_NO_CONTENT)
    async def log_out(self, data: JSONBody[RefreshRequest]) -> None:
        """Close the session of this refresh token."""
        await accounts.logout(data.refresh_token)
