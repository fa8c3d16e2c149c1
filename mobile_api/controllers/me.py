"""The signed-in citizen's profile."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts import service as accounts
from backend.accounts.service import TokenSettings
from backend.auth import Principal
from backend.guards import account_required
from mobile_api.controllers.auth import _session
from mobile_api.schemas import AccountOut, PasswordChange, ProfileUpdate, Session, changes


class MeController(Controller):
    """Profile and password of the signed-in account."""

    path = "/me"
    tags = ["Compte"]
    guards = [account_required]

    @get("/", operation_id="getProfile")
    async def get_profile(self, principal: NamedDependency[Principal]) -> AccountOut:
        """The signed-in account."""
        assert principal.account_id is not None
        return AccountOut.from_row(await accounts.get_account(principal.account_id))

    @patch("/", operation_id="updateProfile")
    async def update_profile(
        self, data: JSONBody[ProfileUpdate], principal: NamedDependency[Principal]
    ) -> AccountOut:
        """Change the display name, phone or language."""
        assert principal.account_id is not None
        row = await accounts.update_profile(principal.account_id, changes(data))
        return AccountOut.from_row(row)

    @post("/password", operation_id="changePassword", status_code=HTTP_200_OK)
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        token_settings: NamedDependency[TokenSettings],
    ) -> Session:
        """Change the password; every other session is closed and a new one is returned."""
        assert principal.account_id is not None
        pair = await accounts.change_password(
            principal.account_id, data.current_password, data.new_password, token_settings
        )
        return _session(pair)
