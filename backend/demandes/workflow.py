"""Staff processing of demandes: the readable set per agent, status changes (also in bulk),
assignment, replies and notes, merging duplicates, moderation, reopening, overdue lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from backend.accounts.tables import StaffAssignment
from backend.database import is_postgres, transaction
from backend.demandes import notifications
from backend.demandes.errors import InvalidTransition, ReopenRefused
from backend.demandes.service import add_entry, requester_email
from backend.demandes.statuses import LABELS, OPEN, can_go
from backend.demandes.tables import Demande, Follower, Photo
from backend.exceptions import FieldError, InvalidInput, NotFound, PermissionDenied
from backend.organisation.tables import Service


@dataclass(frozen=True)
class StaffScope:
    """Which demandes a staff member may see: admins the whole commune, agents their services."""

    commune_id: UUID
    account_id: UUID
    role: str
    service_ids: tuple[UUID, ...]

    def condition(self) -> Any:
        """The WHERE clause of "demandes this staff member may read"."""
        where: Any = Demande.commune == self.commune_id
        if self.role != "admin":
            where = where & Demande.service.is_in(list(self.service_ids) or [UUID(int=0)])
        return where


async def staff_scope(commune_id: UUID, account_id: UUID, role: str) -> StaffScope:
    """The scope of a signed-in staff member."""
    if role not in {"agent", "admin"}:
        raise PermissionDenied("Le traitement des demandes est réservé aux agents des services.")
    rows = await StaffAssignment.select(StaffAssignment.service).where(
        StaffAssignment.account == account_id
    )
    return StaffScope(commune_id, account_id, role, tuple(r["service"] for r in rows))


async def demande_for_staff(scope: StaffScope, demande_id: UUID) -> dict[str, Any]:
    """A demande this staff member may handle; others are not found (no existence leak)."""
    row = await Demande.select().where((Demande.id == demande_id) & scope.condition()).first()
    if row is None:
        raise NotFound("Cette demande est introuvable ou relève d'un autre service.")
    return row


@dataclass(frozen=True)
class InboxFilter:
    """Filters of a service inbox."""

    statuses: tuple[str, ...] = ()
    service_id: UUID | None = None
    category_id: UUID | None = None
    channel: str | None = None
    overdue: bool = False
    query: str = ""


async def inbox(
    scope: StaffScope, filters: InboxFilter, before: datetime | None, limit: int
) -> tuple[list[dict[str, Any]], datetime | None]:
    """Demandes of the scope, newest first, filtered; cursor = created_at of the last one."""
    query = Demande.select().where(scope.condition())
    if filters.statuses:
        query = query.where(Demande.status.is_in(list(filters.statuses)))
    if filters.service_id is not None:
        query = query.where(Demande.service == filters.service_id)
    if filters.category_id is not None:
        query = query.where(Demande.category == filters.category_id)
    if filters.channel:
        query = query.where(Demande.channel == filters.channel)
    if filters.overdue:
        query = query.where((Demande.due_at < datetime.now(UTC)) & Demande.status.is_in(list(OPEN)))
    if filters.query:
        needle = f"%{filters.query.strip()}%"
        # SQLite's LIKE already ignores ASCII case; PostgreSQL needs ILIKE.
        text = (
            Demande.description.ilike(needle) if is_postgres() else Demande.description.like(needle)
        )
        query = query.where(Demande.reference.like(needle) | text)
    if before is not None:
        query = query.where(Demande.created_at < before)
    rows = await query.order_by(Demande.created_at, ascending=False).limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["created_at"] if more and rows else None)


async def change_status(
    scope: StaffScope,
    demande_id: UUID,
    status: str,
    *,
    message: str = "",
    reason: str = "",
    duplicate_of: UUID | None = None,
    daily_cap: int = 3,
) -> dict[str, Any]:
    """Move a demande along its workflow; every change is a timeline entry and a notification."""
    demande = await demande_for_staff(scope, demande_id)
    current = demande["status"]
    if status not in LABELS:
        raise InvalidInput("Statut inconnu.", errors=[FieldError("status", "Statut inconnu.")])
    if not can_go(current, status):
        raise InvalidTransition(
            f"Impossible de passer de « {LABELS[current]} » à « {LABELS[status]} »."
        )
    if status == "rejected" and not reason.strip():
        message_ = "Un rejet doit être motivé : indiquez la raison au demandeur."
        raise InvalidInput(message_, errors=[FieldError("reason", message_)])
    target: dict[str, Any] | None = None
    if status == "duplicate":
        if duplicate_of is None or duplicate_of == demande_id:
            message_ = "Indiquez la demande dont celle-ci est le doublon."
            raise InvalidInput(message_, errors=[FieldError("duplicateOf", message_)])
        target = await demande_for_staff(scope, duplicate_of)
    now = datetime.now(UTC)
    values: dict[Any, Any] = {Demande.status: status, Demande.updated_at: now}
    if status == "resolved":
        values[Demande.resolved_at] = now
    if status == "closed":
        values[Demande.closed_at] = now
    if status == "rejected":
        values[Demande.rejection_reason] = reason.strip()
    if status == "duplicate":
        values[Demande.duplicate_of] = duplicate_of
    public_text = message or (reason.strip() if status == "rejected" else "")
    if target is not None and not public_text:
        public_text = (
            f"Ce signalement était déjà connu (demande {target['reference']}) : vous êtes "
            "désormais informé(e) de son suivi."
        )
    async with transaction():
        changed = (
            await Demande.update(values)
            .where((Demande.id == demande_id) & (Demande.status == current))
            .returning(Demande.id)
        )
        if not changed:  # someone else changed it meanwhile
            raise InvalidTransition("La demande vient d'être modifiée. Rechargez-la.")
        await add_entry(
            demande_id,
            "status",
            status_from=current,
            status_to=status,
            text=public_text,
            author=scope.account_id,
            data={"duplicateOf": str(duplicate_of)} if duplicate_of else {},
        )
        if target is not None:
            await _move_followers(demande, target)
        await notifications.tell_status(
            demande, status, public_text, await requester_email(demande), daily_cap
        )
    return await demande_for_staff(scope, demande_id)


async def _move_followers(duplicate: dict[str, Any], target: dict[str, Any]) -> None:
    """Whoever followed the duplicate now follows the original (and so does its requester)."""
    rows = await Follower.select().where(Follower.demande == duplicate["id"])
    people = [(r["account"], r["device"]) for r in rows]
    people.append((duplicate["requester"], duplicate["device"]))
    for account, device in people:
        if account is None and device is None:
            continue
        key = f"{target['id']}:{'account' if account else 'device'}:{account or device}"
        if not await Follower.exists().where(Follower.follow_key == key):
            await Follower.insert(
                Follower(demande=target["id"], account=account, device=device, follow_key=key)
            )
    await add_entry(
        target["id"],
        "merged",
        public=False,
        text=f"Doublon rattaché : {duplicate['reference']}.",
        data={"duplicate": str(duplicate["id"])},
    )


async def change_status_many(
    scope: StaffScope,
    demande_ids: list[UUID],
    status: str,
    *,
    message: str,
    reason: str,
    daily_cap: int,
) -> dict[str, str]:
    """Bulk status change; each demande succeeds or fails on its own (id → "ok" or why not)."""
    results: dict[str, str] = {}
    for demande_id in demande_ids:
        try:
            await change_status(
                scope, demande_id, status, message=message, reason=reason, daily_cap=daily_cap
            )
            results[str(demande_id)] = "ok"
        except (InvalidTransition, InvalidInput, NotFound) as exc:
            results[str(demande_id)] = exc.detail
    return results


async def assign(
    scope: StaffScope, demande_id: UUID, agent_id: UUID | None, service_id: UUID | None
) -> dict[str, Any]:
    """Give the demande to another service and/or an agent of its service."""
    demande = await demande_for_staff(scope, demande_id)
    values: dict[Any, Any] = {Demande.updated_at: datetime.now(UTC)}
    new_service = service_id or demande["service"]
    if service_id is not None:
        found = await Service.exists().where(
            (Service.id == service_id) & (Service.commune == scope.commune_id)
        )
        if not found:
            raise InvalidInput(
                "Ce service n'existe pas.", errors=[FieldError("serviceId", "Service inconnu.")]
            )
        values[Demande.service] = service_id
    if agent_id is not None:
        works_there = await StaffAssignment.exists().where(
            (StaffAssignment.account == agent_id) & (StaffAssignment.service == new_service)
        )
        if not works_there:
            message = "Cet agent ne fait pas partie du service chargé de la demande."
            raise InvalidInput(message, errors=[FieldError("agentId", message)])
        values[Demande.agent] = agent_id
    async with transaction():
        await Demande.update(values).where(Demande.id == demande_id)
        await add_entry(
            demande_id,
            "assignment",
            public=False,
            author=scope.account_id,
            data={
                "serviceId": str(new_service),
                "agentId": str(agent_id) if agent_id else None,
            },
        )
    # Reassigned elsewhere, it leaves this agent's scope: read it back unscoped.
    row = await Demande.select().where(Demande.id == demande_id).first()
    assert row is not None
    return row


async def reply(scope: StaffScope, demande_id: UUID, text: str, daily_cap: int) -> None:
    """A public answer to the requester (and followers)."""
    demande = await demande_for_staff(scope, demande_id)
    async with transaction():
        await add_entry(demande_id, "reply", text=text, author=scope.account_id)
        await notifications.tell_reply(demande, text, await requester_email(demande), daily_cap)


async def note(scope: StaffScope, demande_id: UUID, text: str) -> None:
    """An internal note, never shown to the resident."""
    await demande_for_staff(scope, demande_id)
    await add_entry(demande_id, "note", public=False, text=text, author=scope.account_id)


async def moderate(scope: StaffScope, demande_id: UUID, hidden: bool, reason: str) -> None:
    """Hide a report from the public map (or show it again)."""
    await demande_for_staff(scope, demande_id)
    async with transaction():
        await Demande.update({Demande.hidden: hidden}).where(Demande.id == demande_id)
        await add_entry(
            demande_id,
            "moderation",
            public=False,
            text=reason,
            author=scope.account_id,
            data={"hidden": hidden},
        )


async def redact_photo(scope: StaffScope, photo_id: UUID, reason: str) -> None:
    """Take a photo out of public view (a face, a licence plate)."""
    photo = await Photo.select().where(Photo.id == photo_id).first()
    if photo is None:
        raise NotFound("Cette photo est introuvable.")
    await demande_for_staff(scope, photo["demande"])
    async with transaction():
        await Photo.update({Photo.redacted: True}).where(Photo.id == photo_id)
        await add_entry(
            photo["demande"],
            "moderation",
            public=False,
            text=reason,
            author=scope.account_id,
            data={"redactedPhoto": str(photo_id)},
        )


async def reopen(
    demande: dict[str, Any], reason: str, reopen_days: int, daily_cap: int
) -> dict[str, Any]:
    """The requester says it is not fixed: back to the service, within `reopen_days`."""
    if demande["status"] != "resolved":
        raise ReopenRefused("Seule une demande résolue peut être rouverte.")
    resolved_at = demande["resolved_at"] or demande["updated_at"]
    if datetime.now(UTC) - resolved_at > timedelta(days=reopen_days):
        raise ReopenRefused(
            f"Le délai de {reopen_days} jours pour rouvrir cette demande est dépassé : déposez "
            "une nouvelle demande."
        )
    async with transaction():
        changed = (
            await Demande.update(
                {
                    Demande.status: "in_progress",
                    Demande.resolved_at: None,
                    Demande.updated_at: datetime.now(UTC),
                }
            )
            .where((Demande.id == demande["id"]) & (Demande.status == "resolved"))
            .returning(Demande.id)
        )
        if not changed:
            raise ReopenRefused("La demande vient de changer. Rechargez-la.")
        await add_entry(
            demande["id"],
            "reopened",
            status_from="resolved",
            status_to="in_progress",
            text=reason,
            author=demande["requester"],
        )
        service = await Service.select().where(Service.id == demande["service"]).first()
        assert service is not None
        await notifications.tell_service(
            service,
            f"Demande {demande['reference']} rouverte par le demandeur",
            f"Le demandeur indique que le problème n'est pas résolu :\n\n{reason}\n",
        )
        await notifications.tell_status(
            demande,
            "in_progress",
            "Votre demande est rouverte et transmise de nouveau au service.",
            await requester_email(demande),
            daily_cap,
        )
    row = await Demande.select().where(Demande.id == demande["id"]).first()
    assert row is not None
    return row


async def overdue(scope: StaffScope) -> list[dict[str, Any]]:
    """Open demandes past their due date, oldest due first."""
    return (
        await Demande.select()
        .where(
            scope.condition()
            & Demande.status.is_in(list(OPEN))
            & (Demande.due_at < datetime.now(UTC))
        )
        .order_by(Demande.due_at)
    )
