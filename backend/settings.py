"""Settings read from the environment (`RELAIS_*`), one frozen object per process."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _rate(name: str, default: str) -> tuple[int, int]:
    """Parse a rate "N/SECONDS" (N requests per window of SECONDS)."""
    raw = os.environ.get(name) or default
    count, _, window = raw.partition("/")
    return int(count), int(window)


def _secret_key(var_dir: Path) -> str:
    """The signing key: from the environment, else a per-installation key kept under var/.

    A generated key keeps a development install working across restarts without set-up; a
    production deployment sets RELAIS_SECRET_KEY so every API process shares it.
    """
    env = os.environ.get("RELAIS_SECRET_KEY")
    if env:
        return env
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Settings:
    """Every knob of Relais; see the README's configuration table."""

    var_dir: Path
    database_url: str
    secret_key: str
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    redis_url: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    rate_auth_per_ip: tuple[int, int] = (30, 300)
    rate_auth_per_account: tuple[int, int] = (10, 900)
    idempotency_ttl: int = 24 * 3600
    argon2_memory_kib: int = 65536
    geocoder: str = "ban"
    geocoder_url: str = ""
    geocoder_timeout: float = 3.0
    fcm_project_id: str = ""
    fcm_credentials: str = ""
    fcm_endpoint: str = ""
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:contact@relais.invalid"
    daily_push_cap: int = 3
    delivery_batch: int = 500
    delivery_poll_seconds: float = 0.25
    delivery_max_attempts: int = 8
    delivery_lease_seconds: float = 60.0
    alert_sender: str = "relais@commune.invalid"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "Mairie <ne-pas-repondre@commune.invalid>"
    reopen_days: int = 30
    ants_url: str = "https://api-coordination.rendezvouspasseport.ants.gouv.fr/api"
    ants_token: str = ""
    ants_hub_token: str = ""
    ants_outage_policy: str = "refuse"
    appointment_limit_per_person: int = 2
    rate_slots_per_ip: tuple[int, int] = (120, 60)
    rate_booking_per_ip: tuple[int, int] = (20, 600)
    media_max_bytes: int = 15 * 1024 * 1024
    timezone: str = "Europe/Paris"
    extra: dict[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        """A copy with some values changed (tests and the CLI use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings() -> Settings:
    """Read the environment now (no cache)."""
    var_dir = Path(os.environ.get("RELAIS_VAR_DIR") or ROOT / "var")
    default_db = f"sqlite:///{var_dir / 'relais.sqlite3'}"
    return Settings(
        var_dir=var_dir,
        database_url=os.environ.get("RELAIS_DATABASE_URL") or default_db,
        secret_key=_secret_key(var_dir),
        public_url=os.environ.get("RELAIS_PUBLIC_URL") or "http://127.0.0.1:8000",
        host=os.environ.get("RELAIS_HOST") or "127.0.0.1",
        port=_int("RELAIS_PORT", 8000),
        log_level=os.environ.get("RELAIS_LOG_LEVEL") or "INFO",
        redis_url=os.environ.get("RELAIS_REDIS_URL") or "",
        access_token_ttl=_int("RELAIS_ACCESS_TOKEN_TTL", 900),
        refresh_token_ttl=_int("RELAIS_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        rate_auth_per_ip=_rate("RELAIS_RATE_AUTH_PER_IP", "30/300"),
        rate_auth_per_account=_rate("RELAIS_RATE_AUTH_PER_ACCOUNT", "10/900"),
        idempotency_ttl=_int("RELAIS_IDEMPOTENCY_TTL", 24 * 3600),
        argon2_memory_kib=_int("RELAIS_ARGON2_MEMORY_KIB", 65536),
        geocoder=os.environ.get("RELAIS_GEOCODER") or "ban",
        geocoder_url=os.environ.get("RELAIS_GEOCODER_URL") or "",
        geocoder_timeout=float(os.environ.get("RELAIS_GEOCODER_TIMEOUT") or 3.0),
        fcm_project_id=os.environ.get("RELAIS_FCM_PROJECT_ID") or "",
        fcm_credentials=os.environ.get("RELAIS_FCM_CREDENTIALS") or "",
        fcm_endpoint=os.environ.get("RELAIS_FCM_ENDPOINT") or "",
        vapid_private_key=os.environ.get("RELAIS_VAPID_PRIVATE_KEY") or "",
        vapid_subject=os.environ.get("RELAIS_VAPID_SUBJECT") or "mailto:contact@relais.invalid",
        daily_push_cap=_int("RELAIS_DAILY_PUSH_CAP", 3),
        delivery_batch=_int("RELAIS_DELIVERY_BATCH", 500),
        delivery_poll_seconds=float(os.environ.get("RELAIS_DELIVERY_POLL_SECONDS") or 0.25),
        delivery_max_attempts=_int("RELAIS_DELIVERY_MAX_ATTEMPTS", 8),
        delivery_lease_seconds=float(os.environ.get("RELAIS_DELIVERY_LEASE_SECONDS") or 60.0),
        alert_sender=os.environ.get("RELAIS_ALERT_SENDER") or "relais@commune.invalid",
        smtp_host=os.environ.get("RELAIS_SMTP_HOST") or "",
        smtp_port=_int("RELAIS_SMTP_PORT", 25),
        smtp_user=os.environ.get("RELAIS_SMTP_USER") or "",
        smtp_password=os.environ.get("RELAIS_SMTP_PASSWORD") or "",
        smtp_starttls=(os.environ.get("RELAIS_SMTP_STARTTLS") or "").lower()
        in {"1", "true", "yes"},
        mail_from=os.environ.get("RELAIS_MAIL_FROM") or "Mairie <ne-pas-repondre@commune.invalid>",
        reopen_days=_int("RELAIS_REOPEN_DAYS", 30),
        ants_url=os.environ.get("RELAIS_ANTS_URL")
        or "https://api-coordination.rendezvouspasseport.ants.gouv.fr/api",
        ants_token=os.environ.get("RELAIS_ANTS_TOKEN") or "",
        ants_hub_token=os.environ.get("RELAIS_ANTS_HUB_TOKEN") or "",
        ants_outage_policy=os.environ.get("RELAIS_ANTS_OUTAGE_POLICY") or "refuse",
        appointment_limit_per_person=_int("RELAIS_APPOINTMENT_LIMIT", 2),
        rate_slots_per_ip=_rate("RELAIS_RATE_SLOTS_PER_IP", "120/60"),
        rate_booking_per_ip=_rate("RELAIS_RATE_BOOKING_PER_IP", "20/600"),
        media_max_bytes=_int("RELAIS_MEDIA_MAX_BYTES", 15 * 1024 * 1024),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
