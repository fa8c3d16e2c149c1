"""An FCM HTTP v1 endpoint and its OAuth2 token endpoint on loopback, for tests and benchmarks.

firebase-admin really talks to it: ``write_service_account(path)`` writes a service-account
JSON whose ``token_uri`` is this peer's ``/token`` and whose RSA key the peer generated, so
google-auth signs a JWT assertion, the peer verifies it (RS256, ``iss``, ``aud``, ``kid``) and
issues a bearer token, which ``POST /v1/projects/{project}/messages:send`` then requires. The
message JSON is validated like FCM does (one target, string data, reserved keys, ``"3600s"``
TTLs, APNs headers, 4 KB) and answered with ``{"name": ...}`` or FCM's real error bodies.

In a test::

    with FcmService(project_id="relais-test") as fcm:
        sa_path = fcm.write_service_account(tmp_path / "sa.json")
        fcm.set_behaviour("tok-1", "unregistered")
        ...
        [received] = await fcm.wait_for(1)     # .token .message .http_version

As a process: ``python -m tests.peers.fcm_service --port 0 --service-account /tmp/sa.json``.

Behaviours per token: ok, unregistered (404 UNREGISTERED), quota (429 QUOTA_EXCEEDED +
Retry-After), unavailable (503), internal (500), invalid (400 INVALID_ARGUMENT),
sender_mismatch (403 SENDER_ID_MISMATCH), slow (``delay`` seconds, then ok); ``first=k``
limits any of them to the first k requests. HTTP/1.1 only: firebase-admin's httpx client asks
for HTTP/2 but, without TLS/ALPN, speaks HTTP/1.1 to a cleartext ``http://`` URL.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers.webpush_service import (
    Behaviour,
    LoopbackPeer,
    PeerRequest,
    Reply,
    json_reply,
    run_peer_process,
)

__all__ = ["FcmService", "ReceivedFcm"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth always sets the assertion's ``aud`` to Google's token endpoint, whatever the
# ``token_uri`` it posts to; accept that or our own URL.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_SCOPES = {
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
}
_SEND_RE = re.compile(r"/v1/projects/([^/]+)/messages:send")
_TTL_RE = re.compile(r"\d+(\.\d{1,9})?s")
_MESSAGE_FIELDS = {
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "token",
    "fid",
    "topic",
    "condition",
}
_TARGETS = ("token", "fid", "topic", "condition")
_ANDROID_FIELDS = {
    "collapse_key",
    "priority",
    "ttl",
    "restricted_package_name",
    "data",
    "notification",
    "fcm_options",
    "direct_boot_ok",
    "bandwidth_constrained_ok",
    "restricted_satellite_ok",
}
_RESERVED_DATA = {"from", "notification", "message_type"}
_PUSH_TYPES = {"alert", "background", "voip", "location", "complication", "fileprovider", "mdm"}
MAX_PAYLOAD = 4096


@dataclass(frozen=True, slots=True)
class ReceivedFcm:
    """One accepted ``messages:send`` call."""

    target: str  # the token / fid / topic / condition value
    message: dict[str, Any]
    validate_only: bool
    http_version: str
    name: str


def google_error(
    code: int, status: str, message: str, fcm_code: str | None = None, headers: Any = None
) -> Reply:
    """A Google API error body, with the FCM ``errorCode`` detail when given."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if fcm_code:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return json_reply(code, {"error": error}, headers)


class FcmService(LoopbackPeer):
    """FCM v1 ``messages:send`` + OAuth2 ``/token`` for one project and service account."""

    remote_methods = LoopbackPeer.remote_methods | {"set_behaviour", "service_account_info"}

    def __init__(
        self,
        project_id: str = "relais-test",
        host: str = "127.0.0.1",
        *,
        token_lifetime: int = 3600,
    ) -> None:
        super().__init__(host)
        self.project_id = project_id
        self.client_email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._key.public_key()
        self.token_lifetime = token_lifetime
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.token_requests = 0
        self._behaviours: dict[str, Behaviour] = {}
        self.attempts: Counter[str] = Counter()  # messages:send calls per target, any answer
        self.service_account_path: str | Path | None = None  # written once listening

    def on_ready(self) -> None:
        """In a peer process, write the service-account file once the port is known."""
        if self.service_account_path is not None:
            self.write_service_account(self.service_account_path)

    # -- setup -----------------------------------------------------------------------------
    def service_account_info(self) -> dict[str, str]:
        """The service-account JSON content (``token_uri`` points at this peer)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "auth_uri": f"{self.base_url}/auth",
            "token_uri": f"{self.base_url}/token",
        }

    def write_service_account(self, path: str | Path) -> Path:
        """Write the service-account JSON to ``path`` (mode 0600) and return it."""
        path = Path(path)
        path.write_text(json.dumps(self.service_account_info(), indent=2))
        path.chmod(0o600)
        return path

    def set_behaviour(self, token: str, kind: str, **options: Any) -> None:
        """How to answer sends to ``token`` (see module docstring and ``Behaviour``)."""
        self._behaviours[token] = Behaviour(kind, **options)

    def reset(self) -> None:
        """Forget recorded messages, counters and per-target attempts."""
        super().reset()
        self.attempts.clear()
        self.token_requests = 0

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token (the next send gets 401)."""
        self.access_tokens.clear()

    # -- HTTP ------------------------------------------------------------------------------
    async def handle(self, request: PeerRequest) -> Reply:
        """Route to the token endpoint or ``messages:send``."""
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        match = _SEND_RE.fullmatch(request.path)
        if request.method == "POST" and match:
            return await self._send(request, match.group(1))
        return google_error(404, "NOT_FOUND", f"no route {request.method} {request.path}")

    def _token(self, request: PeerRequest) -> Reply:
        """OAuth2 JWT-bearer grant (RFC 7523), as google-auth's service account flow uses."""
        self.token_requests += 1
        form = urllib.parse.parse_qs(request.body.decode())
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return json_reply(400, {"error": "unsupported_grant_type"})
        assertion = form["assertion"][0]
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self._public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_AUDIENCE, f"{self.base_url}/token"],
                issuer=self.client_email,
                options={"require": ["iat", "exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return json_reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if header.get("kid") != self.private_key_id:
            return json_reply(400, {"error": "invalid_grant", "error_description": "bad kid"})
        if not FCM_SCOPES & set(str(claims.get("scope", "")).split()):
            return json_reply(400, {"error": "invalid_scope"})
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens[token] = time.time() + self.token_lifetime
        doc = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return json_reply(200, doc)

    async def _send(self, request: PeerRequest, project: str) -> Reply:
        auth = request.headers.get("authorization", "")
        expiry = self.access_tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or expiry is None or expiry < time.time():
            return google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if project != self.project_id:
            return google_error(
                403, "PERMISSION_DENIED", "Permission denied on project", "SENDER_ID_MISMATCH"
            )
        try:
            doc = json.loads(request.body)
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = _validate(doc)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem, "INVALID_ARGUMENT")
        message = doc["message"]
        target = next(message[t] for t in _TARGETS if t in message)
        self.attempts[target] += 1

        behaviour = self._behaviours.get(target)
        if behaviour is not None and behaviour.active():
            reply = await self._misbehave(behaviour)
            if reply is not None:
                return reply
        name = f"projects/{project}/messages/{secrets.token_hex(8)}"
        self.received.append(
            ReceivedFcm(
                target=target,
                message=message,
                validate_only=bool(doc.get("validate_only", False)),
                http_version=request.http_version,
                name=name,
            )
        )
        return json_reply(200, {"name": name})

    async def _misbehave(self, behaviour: Behaviour) -> Reply | None:
        retry = [(b"retry-after", behaviour.retry_after.encode())] if behaviour.retry_after else []
        match behaviour.kind:
            case "unregistered":
                return google_error(
                    404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"
                )
            case "quota":
                quota_retry = retry or [(b"retry-after", b"30")]
                return google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Send messages'.",
                    "QUOTA_EXCEEDED",
                    quota_retry,
                )
            case "unavailable":
                return google_error(
                    503,
                    "UNAVAILABLE",
                    "The service is currently unavailable.",
                    "UNAVAILABLE",
                    retry,
                )
            case "internal":
                return google_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")
            case "invalid":
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token",
                    "INVALID_ARGUMENT",
                )
            case "sender_mismatch":
                return google_error(
                    403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"
                )
            case "slow":
                await asyncio.sleep(behaviour.delay)
                return None
        return None


def _validate(doc: Any) -> str | None:
    """FCM-like validation of a ``messages:send`` body; returns the error message or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), dict):
        return "Request must contain a 'message' object"
    if set(doc) - {"message", "validate_only"}:
        return f"Unknown name {sorted(set(doc) - {'message', 'validate_only'})}"
    message = doc["message"]
    unknown = set(message) - _MESSAGE_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)} at 'message'"
    targets = [t for t in _TARGETS if t in message]
    if len(targets) != 1 or not isinstance(message[targets[0]], str) or not message[targets[0]]:
        return "Exactly one of token, fid, topic or condition must be a non-empty string"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return "data must map strings to strings"
    for key in data:
        if key in _RESERVED_DATA or key.startswith(("google.", "gcm.")):
            return f"Invalid data payload key: {key}"
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or not all(
        isinstance(notification.get(k, ""), str) for k in ("title", "body", "image")
    ):
        return "notification title/body must be strings"
    android = message.get("android", {})
    if not isinstance(android, dict) or set(android) - _ANDROID_FIELDS:
        return "Invalid android config"
    if "ttl" in android and not (
        isinstance(android["ttl"], str) and _TTL_RE.fullmatch(android["ttl"])
    ):
        return f"Invalid value at 'message.android.ttl' ({android['ttl']!r}): Illegal duration"
    if android.get("priority", "normal").lower() not in ("high", "normal"):
        return "Invalid value at 'message.android.priority'"
    apns = message.get("apns", {})
    problem = _validate_apns(apns)
    if problem:
        return problem
    size = len(json.dumps({"notification": notification, "data": data}).encode())
    if size > MAX_PAYLOAD:
        return f"Message is too big ({size} > {MAX_PAYLOAD} bytes)"
    return None


def _validate_apns(apns: Any) -> str | None:
    if not isinstance(apns, dict) or set(apns) - {"headers", "payload", "fcm_options"}:
        return "Invalid apns config"
    headers = apns.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "apns.headers must map strings to strings"
    if headers.get("apns-priority", "10") not in ("10", "5", "1"):
        return "Invalid apns-priority"
    if not headers.get("apns-expiration", "0").isdigit():
        return "Invalid apns-expiration"
    if len(headers.get("apns-collapse-id", "").encode()) > 64:
        return "apns-collapse-id exceeds 64 bytes"
    if headers.get("apns-push-type", "alert") not in _PUSH_TYPES:
        return "Invalid apns-push-type"
    return None


if __name__ == "__main__":

    def _factory(args: Any) -> FcmService:
        peer = FcmService(project_id=args.project)
        peer.service_account_path = args.service_account
        return peer

    run_peer_process(sys.argv[1:], _factory)
