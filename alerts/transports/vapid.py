"""VAPID (RFC 8292): our application server identity towards Web Push services.

One key pair identifies Relais; the PWA subscribes with the public key (``applicationServerKey``)
and every push carries ``Authorization: vapid t=<ES256 JWT>, k=<public key>``. Signing costs
~30 µs, so the JWT is cached per audience (``scheme://host[:port]`` of the push service) and
renewed well before it expires.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

__all__ = [
    "VapidKeyPair",
    "VapidSigner",
    "audience_of",
    "generate_vapid_key_pair",
    "load_vapid_private_key",
    "public_key_b64url",
]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    text = "".join(text.split())
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_b64url(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """Uncompressed P-256 point (65 bytes), base64url without padding: the PWA's
    ``applicationServerKey`` and the ``k=`` of the VAPID header."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    raw = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(raw)


def load_vapid_private_key(value: str | bytes | Path) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key from PEM (SEC1 or PKCS#8), a PEM file path (``Path``), the
    32-byte raw scalar in base64url (what ``web-push generate-vapid-keys`` prints) or
    base64/base64url DER.
    """
    if isinstance(value, Path):
        value = value.read_bytes()
    data = value.encode() if isinstance(value, str) else value
    if b"-----BEGIN" in data:
        key = serialization.load_pem_private_key(data, password=None)
    else:
        raw = _b64url_decode(data.decode().replace("+", "-").replace("/", "_"))
        if len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("VAPID key must be a P-256 (secp256r1) EC private key")
    return key


@dataclass(frozen=True, slots=True)
class VapidKeyPair:
    """A fresh VAPID identity, in the forms settings and the PWA need."""

    private_pem: str
    """PKCS#8 PEM: what ``RELAIS_VAPID_PRIVATE_KEY`` holds."""
    private_b64url: str
    """The same key as a 32-byte raw scalar, base64url (the web-push CLI format)."""
    public_b64url: str
    """Application server key for ``pushManager.subscribe({applicationServerKey})``."""


def generate_vapid_key_pair() -> VapidKeyPair:
    """Generate a new P-256 VAPID key pair (for ``relais`` CLI, demos and tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return VapidKeyPair(pem, _b64url(scalar), public_key_b64url(key))


def audience_of(endpoint: str) -> str:
    """The VAPID ``aud``: origin of the push endpoint, ``scheme://host[:port]``."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"not an http(s) push endpoint: {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class VapidSigner:
    """Signs and caches one VAPID ``Authorization`` header per audience.

    pywebpush's own helpers mutate the caller's ``vapid_claims`` (``aud`` from the first
    endpoint sticks) and sign per call; here each audience gets fresh claims and one signature
    per ``lifetime``, renewed ``renew_before`` seconds ahead of ``exp`` so a header handed out
    is never close to expiry when the push service checks it.
    """

    def __init__(
        self,
        private_key: str | bytes | Path | ec.EllipticCurvePrivateKey,
        subject: str,
        *,
        lifetime: float = 12 * 3600,
        renew_before: float = 3600,
        clock: Callable[[], float] = time.time,
        max_audiences: int = 1024,
    ) -> None:
        if not (subject.startswith("mailto:") or subject.startswith("https://")):
            raise ValueError("VAPID subject must be a mailto: or https: URI")
        if not 0 < renew_before < lifetime <= 24 * 3600:
            raise ValueError("need 0 < renew_before < lifetime <= 24 h (RFC 8292)")
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            private_key = load_vapid_private_key(private_key)
        self._vapid = Vapid02(private_key)
        self._subject = subject
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._clock = clock
        self._max_audiences = max_audiences
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()  # the cache may be read from a thread pool too
        self.public_key_b64url = public_key_b64url(private_key)

    def authorization(self, endpoint: str) -> str:
        """``Authorization`` header value for a push to ``endpoint`` (cached per audience)."""
        audience = audience_of(endpoint)
        now = self._clock()
        cached = self._cache.get(audience)
        if cached is not None and now < cached[1] - self._renew_before:
            return cached[0]
        with self._lock:
            exp = int(now + self._lifetime)
            # A new dict per signature: never share claims between audiences.
            claims: dict[str, str | int] = {"aud": audience, "exp": exp, "sub": self._subject}
            header = self._vapid.sign(claims)["Authorization"]
            if len(self._cache) >= self._max_audiences and audience not in self._cache:
                self._cache.pop(next(iter(self._cache)))  # oldest first: dicts keep order
            self._cache[audience] = (header, float(exp))
            return str(header)


def _keygen_main() -> None:  # pragma: no cover - tiny CLI helper
    """``python -m alerts.transports.vapid``: print a new key pair."""
    pair = generate_vapid_key_pair()
    out = sys.stdout
    out.write(pair.private_pem)
    out.write(f"private (raw, base64url): {pair.private_b64url}\n")
    out.write(f"public  (applicationServerKey): {pair.public_b64url}\n")


if __name__ == "__main__":  # pragma: no cover
    _keygen_main()
