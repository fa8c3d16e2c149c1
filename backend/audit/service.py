"""Recording staff actions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from backend.audit.tables import AuditEntry


async def record(
    actor_id: UUID | None,
    action: str,
    target_type: str,
    target_id: object,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit trail (inside the caller's transaction)."""
    await AuditEntry.insert(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=detail or {},
        )
    )


async def entries_for(target_type: str, target_id: object) -> list[dict[str, Any]]:
    """The audit entries of one record, oldest first."""
    return (
        await AuditEntry.select()
        .where((AuditEntry.target_type == target_type) & (AuditEntry.target_id == str(target_id)))
        .order_by(AuditEntry._meta.primary_key)
    )
