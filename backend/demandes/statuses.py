"""Statuses of a demande and the transitions allowed between them."""

from __future__ import annotations

LABELS = {
    "received": "Reçue",
    "acknowledged": "Prise en compte",
    "in_progress": "En cours de traitement",
    "resolved": "Résolue",
    "rejected": "Rejetée",
    "duplicate": "Doublon",
    "closed": "Clôturée",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"acknowledged", "in_progress", "rejected", "duplicate"}),
    "acknowledged": frozenset({"in_progress", "resolved", "rejected", "duplicate"}),
    "in_progress": frozenset({"resolved", "rejected", "duplicate"}),
    # A resolved demande goes back to work when reopened (by its requester, or by staff).
    "resolved": frozenset({"closed", "in_progress"}),
    "rejected": frozenset({"closed"}),
    "duplicate": frozenset({"closed"}),
    "closed": frozenset(),
}

OPEN = frozenset({"received", "acknowledged", "in_progress"})
FINISHED = frozenset({"resolved", "rejected", "duplicate", "closed"})


def can_go(current: str, target: str) -> bool:
    """Whether `current` → `target` is allowed."""
    return target in TRANSITIONS.get(current, frozenset())
