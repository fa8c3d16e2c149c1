"""Bare ceilings of the push transports: how fast can one process push, with nothing else?

Run: ``.venv/bin/python -m tests.bench.bench_transports [--n 5000] [--reps 5]``

Each transport sends N prepared messages to its loopback peer, which runs in a separate process
so that the peer's work (VAPID check, decryption, JSON validation) does not steal the
transport's event loop. Reported figures are medians over ``--reps`` runs, after a warm-up run
(connections open, OAuth2 token fetched). Also measured: the Web Push CPU cost alone (encrypt +
VAPID header, no HTTP), and, for FCM over a simulated 20 ± 10 ms round trip, our semaphore
pipeline against ``send_each_async`` in chunks of ``max_concurrency`` (the design choice).

The delivery-worker benchmark imports ``bare_rate`` and ``PeerProcess`` to get its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from firebase_admin import messaging
from pywebpush import WebPusher

from alerts.transports import (
    FcmTarget,
    FcmTransport,
    Outcome,
    PushMessage,
    Target,
    Transport,
    Urgency,
    VapidSigner,
    WebPushTarget,
    WebPushTransport,
    encode_payload,
    generate_vapid_key_pair,
)
from alerts.transports.fcm import build_fcm_message
from alerts.transports.vapid import load_vapid_private_key
from tests.peers.webpush_service import RemotePeer

ROOT = Path(__file__).resolve().parents[2]


async def bare_rate(transport: Transport, batch: Sequence[tuple[PushMessage, Target]]) -> float:
    """Messages per second of one ``transport.send(batch)``; every message must be SENT."""
    started = time.perf_counter()
    results = await transport.send(batch)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.outcome is not Outcome.SENT]
    if failed:
        raise RuntimeError(f"{len(failed)} messages not sent, e.g. {failed[0]}")
    return len(batch) / elapsed


class PeerProcess:
    """A peer (``tests.peers.<module>``) in its own process, driven through ``RemotePeer``."""

    def __init__(self, module: str, *args: str) -> None:
        self.argv = [sys.executable, "-m", f"tests.peers.{module}", "--port", "0", *args]
        self.process: subprocess.Popen[str] | None = None
        self.remote: RemotePeer | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"peer did not start: {self.argv} said {line!r}")
        self.base_url = line.split()[1]
        self.remote = RemotePeer(self.base_url)
        return self

    def call(self, method: str, **kwargs: Any) -> Any:
        """Call a remote peer method (``create_subscription``, ``set_latency``, ``stats``...)."""
        assert self.remote is not None
        return self.remote.call(method, **kwargs)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.remote is not None:
            self.remote.close()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def sample_message(i: int) -> PushMessage:
    """A typical crisis alert (~200 B of JSON)."""
    return PushMessage(
        delivery_id=i,
        title="Alerte inondation — Tours",
        body="Crue de la Loire : évacuez les quais et les caves avant 18 h. Suivez les consignes.",
        data={"kind": "alert", "id": "2026-000123", "url": "/alertes/2026-000123"},
        collapse_key="urn:oid:2.49.0.1.250.0:2026-000123",
        urgency=Urgency.HIGH,
        ttl_seconds=6 * 3600,
    )


async def median_rate(make: Callable[[], Awaitable[float]], reps: int) -> tuple[float, list[float]]:
    """Median of ``reps`` measurements, with all of them."""
    rates = [await make() for _ in range(reps)]
    return statistics.median(rates), rates


# --- the measurements -----------------------------------------------------------------------


async def bench_webpush(n: int, reps: int, subscriptions: int, decrypt: bool) -> dict[str, Any]:
    """Web Push transport against the Web Push peer process."""
    vapid = generate_vapid_key_pair()
    args = () if decrypt else ("--no-decrypt",)
    with PeerProcess("webpush_service", *args) as peer:
        subs = [peer.call("create_subscription") for _ in range(subscriptions)]
        targets = [WebPushTarget(s["endpoint"], s["p256dh"], s["auth"]) for s in subs]
        batch: list[tuple[PushMessage, Target]] = [
            (sample_message(i), targets[i % len(targets)]) for i in range(n)
        ]
        transport = WebPushTransport(vapid.private_pem, "mailto:bench@relais.example")
        try:
            await bare_rate(transport, batch[: min(n, 500)])  # warm-up: connections
            median, rates = await median_rate(lambda: bare_rate(transport, batch), reps)
        finally:
            await transport.aclose()
        received = peer.call("stats")["received"]
    return {"median": median, "runs": rates, "received": received}


async def bench_fcm(n: int, reps: int, max_concurrency: int) -> dict[str, Any]:
    """FCM transport against the FCM peer process (OAuth2 + v1 JSON validation)."""
    with tempfile.TemporaryDirectory() as tmp:
        sa_path = Path(tmp) / "sa.json"
        with PeerProcess("fcm_service", "--service-account", str(sa_path)) as peer:
            batch: list[tuple[PushMessage, Target]] = [
                (sample_message(i), FcmTarget(f"token-{i}")) for i in range(n)
            ]
            transport = FcmTransport(
                "relais-test",
                sa_path,
                endpoint_url=peer.base_url,
                max_concurrency=max_concurrency,
            )
            try:
                await bare_rate(transport, batch[: min(n, 500)])  # warm-up: token, connections
                median, rates = await median_rate(lambda: bare_rate(transport, batch), reps)
            finally:
                await transport.aclose()
            received = peer.call("stats")["received"]
    return {"median": median, "runs": rates, "received": received}


async def bench_fcm_strategies(n: int, reps: int, max_concurrency: int) -> dict[str, float]:
    """Semaphore pipeline (ours) vs ``send_each_async`` in chunks, over a jittery round trip."""
    with tempfile.TemporaryDirectory() as tmp:
        sa_path = Path(tmp) / "sa.json"
        with PeerProcess("fcm_service", "--service-account", str(sa_path)) as peer:
            transport = FcmTransport(
                "relais-test", sa_path, endpoint_url=peer.base_url, max_concurrency=max_concurrency
            )
            try:
                batch: list[tuple[PushMessage, Target]] = [
                    (sample_message(i), FcmTarget(f"token-{i}")) for i in range(n)
                ]
                await bare_rate(transport, batch[:max_concurrency])
                peer.call("set_latency", latency=0.010, jitter=0.020)
                pipeline, _ = await median_rate(lambda: bare_rate(transport, batch), reps)

                app = transport._app
                fcm_messages = [
                    build_fcm_message(m, FcmTarget(f"token-{m.delivery_id}")) for m, _ in batch
                ]

                async def chunked() -> float:
                    started = time.perf_counter()
                    for start in range(0, n, max_concurrency):
                        chunk = fcm_messages[start : start + max_concurrency]
                        response = await messaging.send_each_async(chunk, app=app)
                        assert response.failure_count == 0
                    return n / (time.perf_counter() - started)

                chunks, _ = await median_rate(chunked, reps)
            finally:
                await transport.aclose()
    return {"semaphore_pipeline": pipeline, "chunked_send_each_async": chunks}


def bench_encryption(n: int, reps: int) -> dict[str, float]:
    """Web Push CPU cost without HTTP: aes128gcm encryption + VAPID header, per message."""
    key = load_vapid_private_key(generate_vapid_key_pair().private_pem)
    subject = "mailto:bench@relais.example"
    signer = VapidSigner(key, subject)
    subscriptions: list[dict[str, Any]] = []
    for i in range(100):  # what browsers would hand us
        browser_key = ec.generate_private_key(ec.SECP256R1())
        raw = browser_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        subscriptions.append(
            {
                "endpoint": f"https://push{i % 3}.example/push/{i}",
                "keys": {"p256dh": _b64url(raw), "auth": _b64url(os.urandom(16))},
            }
        )
    payload = encode_payload(sample_message(0))

    def run(fresh_jwt: bool) -> float:
        started = time.perf_counter()
        for i in range(n):
            info = subscriptions[i % len(subscriptions)]
            if fresh_jwt:  # what pywebpush's webpush() does on every call
                VapidSigner(key, subject).authorization(info["endpoint"])
            else:
                signer.authorization(info["endpoint"])
            WebPusher(info).encode(payload, "aes128gcm")
        return n / (time.perf_counter() - started)

    return {
        "encrypt+cached_vapid": statistics.median(run(False) for _ in range(reps)),
        "encrypt+fresh_vapid_jwt": statistics.median(run(True) for _ in range(reps)),
    }


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every measurement and print a summary (and one JSON line for tooling)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages per run")
    parser.add_argument("--reps", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--skip-strategies", action="store_true")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {"n": args.n, "reps": args.reps, "cpus": os.cpu_count()}
    out["webpush_encrypt_only"] = bench_encryption(args.n, args.reps)
    out["webpush"] = await bench_webpush(args.n, args.reps, subscriptions=200, decrypt=True)
    out["webpush_peer_no_decrypt"] = await bench_webpush(
        args.n, args.reps, subscriptions=200, decrypt=False
    )
    out["fcm"] = await bench_fcm(args.n, args.reps, max_concurrency=50)
    if not args.skip_strategies:
        out["fcm_rtt_20ms"] = await bench_fcm_strategies(
            min(args.n, 3000), max(1, args.reps // 2), max_concurrency=50
        )

    enc = out["webpush_encrypt_only"]

    def spread(key: str) -> str:
        runs = out[key]["runs"]
        return f"{out[key]['median']:8.0f}   ({min(runs):.0f}-{max(runs):.0f})"

    print(f"Bare transport ceilings — {args.n} messages x {args.reps} runs, msg/s median (range)")
    print(f"  web push, encrypt + cached VAPID (no HTTP) {enc['encrypt+cached_vapid']:8.0f}")
    print(f"  web push, encrypt + JWT signed per message {enc['encrypt+fresh_vapid_jwt']:8.0f}")
    print(f"  web push -> peer process (decrypting)      {spread('webpush')}")
    print(f"  web push -> peer process (not decrypting)  {spread('webpush_peer_no_decrypt')}")
    print(f"  fcm      -> peer process                   {spread('fcm')}")
    if "fcm_rtt_20ms" in out:
        s = out["fcm_rtt_20ms"]
        print("  fcm over a 10-30 ms round trip, 50 in flight:")
        print(f"    semaphore pipeline (FcmTransport)        {s['semaphore_pipeline']:8.0f}")
        print(f"    send_each_async in chunks of 50          {s['chunked_send_each_async']:8.0f}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    asyncio.run(main())
