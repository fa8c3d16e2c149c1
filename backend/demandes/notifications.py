"""What residents receive about their demandes: the SVE acknowledgments (in the app and by
e-mail) and a notification at every step, to the requester and to followers."""

from __future__ import annotations

from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from alerts.outbox import Notification, notify, recipients_of_accounts
from alerts.targeting import Recipient, recipients_of_devices
from backend.demandes.statuses import LABELS
from backend.demandes.tables import Follower
from backend.mail.outbox import queue_email

PARIS = ZoneInfo("Europe/Paris")


def _when(value: Any) -> str:
    local = value.astimezone(PARIS)
    return local.strftime("%d/%m/%Y à %Hh%M")


async def _recipients(demande: dict[str, Any], with_followers: bool) -> list[Recipient]:
    accounts = [demande["requester"]] if demande["requester"] else []
    devices = [demande["device"]] if demande["device"] else []
    if with_followers:
        for row in await Follower.select(Follower.account, Follower.device).where(
            Follower.demande == demande["id"]
        ):
            if row["account"]:
                accounts.append(row["account"])
            if row["device"]:
                devices.append(row["device"])
    found = await recipients_of_accounts(accounts)
    found += await recipients_of_devices([UUID(str(d)) for d in devices])
    return found


async def acknowledge(
    demande: dict[str, Any], service: dict[str, Any], requester_email: str, daily_cap: int
) -> tuple[str, str]:
    """Send the acknowledgment of registration (AEE) and of receipt (ARE), CRPA L112-8/R112-5.

    Returns both texts, which the caller records in the timeline.
    """
    reference = demande["reference"]
    registered = (
        f"Votre demande n° {reference} a bien été enregistrée le "
        f"{_when(demande['created_at'])}. Conservez ce numéro pour la suivre."
    )
    contact = ", ".join(
        x for x in (service["address"], f"tél. {service['phone']}" if service["phone"] else "") if x
    )
    receipt = (
        f"Accusé de réception : votre demande n° {reference}, reçue le "
        f"{_when(demande['created_at'])}, est traitée par le service {service['name']}"
        + (f" ({contact})" if contact else "")
        + ". Vous serez informé(e) à chaque étape."
    )
    recipients = await _recipients(demande, with_followers=False)
    data = {"demandeId": str(demande["id"]), "reference": reference}
    await notify(
        Notification(
            kind="demande",
            subject=f"demande:{demande['id']}",
            title=f"Demande {reference} enregistrée",
            body=receipt,
            data=data,
            collapse_key=f"demande-{demande['id'].hex[:20]}",
            personal=True,
        ),
        recipients,
        daily_cap=daily_cap,
    )
    if requester_email:
        await queue_email(
            requester_email,
            f"Accusé d'enregistrement – demande {reference}",
            f"Bonjour,\n\n{registered}\n\nCeci est un message automatique.\n",
        )
        await queue_email(
            requester_email,
            f"Accusé de réception – demande {reference}",
            f"Bonjour,\n\n{receipt}\n\nCeci est un message automatique.\n",
        )
    return registered, receipt


async def tell_status(
    demande: dict[str, Any],
    status: str,
    message: str,
    requester_email: str,
    daily_cap: int,
) -> None:
    """A step of the demande: a notification to the requester and followers, an e-mail to the
    requester when they gave an address."""
    reference = demande["reference"]
    label = LABELS[status]
    body = message or f"Nouveau statut : {label}."
    await notify(
        Notification(
            kind="demande",
            subject=f"demande:{demande['id']}",
            title=f"Demande {reference} : {label}",
            body=body,
            data={"demandeId": str(demande["id"]), "reference": reference, "status": status},
            collapse_key=f"demande-{demande['id'].hex[:20]}",
            personal=True,
        ),
        await _recipients(demande, with_followers=True),
        daily_cap=daily_cap,
    )
    if requester_email:
        await queue_email(
            requester_email,
            f"Demande {reference} : {label}",
            f"Bonjour,\n\nVotre demande n° {reference} a changé de statut : {label}.\n\n"
            f"{message}\n\nCeci est un message automatique.\n".replace("\n\n\n", "\n\n"),
        )


async def tell_reply(
    demande: dict[str, Any], text: str, requester_email: str, daily_cap: int
) -> None:
    """A public reply from the service."""
    reference = demande["reference"]
    await notify(
        Notification(
            kind="demande",
            subject=f"demande:{demande['id']}",
            title=f"Réponse de la mairie – demande {reference}",
            body=text,
            data={"demandeId": str(demande["id"]), "reference": reference},
            collapse_key=f"demande-{demande['id'].hex[:20]}",
            personal=True,
        ),
        await _recipients(demande, with_followers=True),
        daily_cap=daily_cap,
    )
    if requester_email:
        await queue_email(
            requester_email,
            f"Réponse de la mairie – demande {reference}",
            f"Bonjour,\n\n{text}\n\nCeci est un message automatique.\n",
        )


async def tell_service(service: dict[str, Any], subject: str, body: str) -> None:
    """An e-mail to the service's address (new reopening, overdue reminder)."""
    if service["email"]:
        await queue_email(service["email"], subject, body)
