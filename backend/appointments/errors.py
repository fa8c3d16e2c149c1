"""Errors of appointment booking, in words a resident understands."""

from backend.exceptions import Conflict, DomainError


class SlotTaken(Conflict):
    """Someone else took the slot (or it no longer exists)."""

    code = "slot-taken"


class OutsideBookingWindow(DomainError):
    """Too soon (minimum notice) or not yet released (rolling horizon)."""

    status, code, title = 422, "outside-booking-window", "Créneau hors période de réservation"


class HoldExpired(Conflict):
    """The short hold on the slot ran out before confirmation."""

    code = "hold-expired"


class PreRequestRefused(DomainError):
    """An ANTS pre-request number cannot be used for this appointment."""

    status, code, title = 422, "pre-request-refused", "Numéro de pré-demande refusé"


class LimitReached(Conflict):
    """Too many active appointments for one person (anti-hoarding)."""

    code = "appointment-limit"


class AntsDown(DomainError):
    """The ANTS coordination service did not answer and the policy is to refuse."""

    status, code, title = 503, "ants-unavailable", "Service de l'ANTS indisponible"
