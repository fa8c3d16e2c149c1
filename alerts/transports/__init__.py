"""Push transports: FCM (firebase-admin) and Web Push (pywebpush), one interface.

The delivery worker calls ``await transport.send([(PushMessage, target), ...])`` and acts on each
``SendResult.outcome``; see ``base`` for the contract.
"""

from .base import (
    FcmTarget,
    Outcome,
    PushMessage,
    SendResult,
    Target,
    Transport,
    TransportStats,
    Urgency,
    WebPushTarget,
)
from .fcm import FcmTransport
from .vapid import VapidKeyPair, VapidSigner, generate_vapid_key_pair
from .webpush import MAX_PLAINTEXT, WebPushTransport, encode_payload

__all__ = [
    "MAX_PLAINTEXT",
    "FcmTarget",
    "FcmTransport",
    "Outcome",
    "PushMessage",
    "SendResult",
    "Target",
    "Transport",
    "TransportStats",
    "Urgency",
    "VapidKeyPair",
    "VapidSigner",
    "WebPushTarget",
    "WebPushTransport",
    "encode_payload",
    "generate_vapid_key_pair",
]
