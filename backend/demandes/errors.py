"""Errors of the tracking core."""

from backend.exceptions import Conflict, DomainError


class InvalidTransition(Conflict):
    """The demande cannot go from its status to the one asked."""

    code = "invalid-transition"


class ReopenRefused(Conflict):
    """The demande cannot be reopened (not resolved, or too late)."""

    code = "reopen-refused"


class PhotoRefused(DomainError):
    """A photo was refused (not an image, too big, a decompression bomb, corrupt)."""

    status, code, title = 422, "photo-refused", "Photo refusée"
