"""Building the push transports from configuration (the worker and the VAPID key endpoint)."""

from __future__ import annotations

from pathlib import Path

from alerts.transports import FcmTransport, Transport, WebPushTransport, generate_vapid_key_pair
from alerts.transports.vapid import load_vapid_private_key, public_key_b64url


def vapid_private_key(configured: str, var_dir: Path) -> str:
    """The VAPID private key (PEM or base64url): configured as a value or a file path, else one
    generated once under var/ and kept, since every Web Push subscription is bound to it."""
    if configured:
        path = Path(configured)
        return path.read_text() if path.is_file() else configured
    path = var_dir / "vapid_private.pem"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_vapid_key_pair().private_pem)
        path.chmod(0o600)
    return path.read_text()


def vapid_public_key(configured: str, var_dir: Path) -> str:
    """The application server key the PWA passes to `pushManager.subscribe`."""
    return public_key_b64url(load_vapid_private_key(vapid_private_key(configured, var_dir)))


def build_transports(
    *,
    var_dir: Path,
    vapid_key: str,
    vapid_subject: str,
    fcm_project_id: str,
    fcm_credentials: str,
    fcm_endpoint: str,
) -> dict[str, Transport]:
    """Web Push always; FCM when a project and credentials are configured."""
    transports: dict[str, Transport] = {
        "webpush": WebPushTransport(vapid_private_key(vapid_key, var_dir), vapid_subject)
    }
    if fcm_project_id and fcm_credentials:
        transports["fcm"] = FcmTransport(
            fcm_project_id, fcm_credentials, endpoint_url=fcm_endpoint or None
        )
    return transports
