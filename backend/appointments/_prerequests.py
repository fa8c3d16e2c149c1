"""ANTS pre-request numbers at confirmation: their form, their status, and the per-person
limit of upcoming appointments (anti-hoarding)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.appointments.ants import (
    AntsClient,
    AntsRejected,
    AntsUnavailable,
    normalise_application_id,
)
from backend.appointments.errors import AntsDown, LimitReached, PreRequestRefused
from backend.appointments.tables import Booking
from backend.exceptions import FieldError, InvalidInput

STATUS_WORDS = {
    "validated": "",
    "declared": "n'est pas encore validée par l'ANTS : finalisez-la sur ants.gouv.fr",
    "unknown": "est inconnue de l'ANTS : vérifiez le numéro",
    "expired": "a expiré : refaites une pré-demande sur ants.gouv.fr",
    "consumed": "a déjà servi à déposer un dossier",
}


async def check_ants(ids: list[str], client: AntsClient, outage_policy: str) -> bool:
    """Check every number with the ANTS; returns False when ANTS was down and policy accepts."""
    try:
        statuses = await client.status(ids)
    except AntsUnavailable as exc:
        if outage_policy == "accept":
            return False
        raise AntsDown(
            "Le service de l'ANTS ne répond pas : vos numéros ne peuvent pas être vérifiés. "
            "Votre créneau reste réservé quelques minutes ; réessayez."
        ) from exc
    except AntsRejected as exc:
        raise AntsDown("Le service de l'ANTS refuse la vérification. Contactez la mairie.") from exc
    errors = []
    for index, application_id in enumerate(ids):
        status = statuses[application_id]
        if status.status != "validated":
            errors.append(
                FieldError(
                    f"antsIds[{index}]",
                    f"La pré-demande {application_id} "
                    f"{STATUS_WORDS.get(status.status, 'est refusée')}.",
                )
            )
        elif status.appointments:
            other = status.appointments[0]
            errors.append(
                FieldError(
                    f"antsIds[{index}]",
                    f"La pré-demande {application_id} a déjà un rendez-vous "
                    f"({other.meeting_point}, {other.appointment_date}) : annulez-le d'abord.",
                )
            )
    if errors:
        raise PreRequestRefused(" ".join(e.message for e in errors), errors=errors)
    return True


def normalised_ids(ants_ids: list[str], persons: int) -> list[str]:
    ids = []
    for index, raw in enumerate(ants_ids):
        try:
            ids.append(normalise_application_id(raw))
        except ValueError as exc:
            raise InvalidInput(
                str(exc), errors=[FieldError(f"antsIds[{index}]", str(exc))]
            ) from exc
    if len(ids) != persons:
        message = f"Un numéro de pré-demande par personne : {persons} attendu(s)."
        raise InvalidInput(message, errors=[FieldError("antsIds", message)])
    if len(set(ids)) != len(ids):
        message = "Chaque personne a son propre numéro de pré-demande."
        raise InvalidInput(message, errors=[FieldError("antsIds", message)])
    return ids


async def check_limit(booking: dict[str, Any], email: str, limit: int, now: datetime) -> None:
    condition = Booking.email == email
    if booking["account"] is not None:
        condition = condition | (Booking.account == booking["account"])
    active = await Booking.count().where(
        condition & (Booking.status == "confirmed") & (Booking.starts_at > now)
    )
    if active >= limit:
        raise LimitReached(
            f"Vous avez déjà {active} rendez-vous à venir : annulez-en un avant d'en "
            "prendre un autre."
        )
