"""Fixed-window rate limits, in memory (one process) or in Redis (several API processes)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol, runtime_checkable

from backend.exceptions import RateLimited


@runtime_checkable
class RateLimiter(Protocol):
    """Counts hits per key and refuses past the limit."""

    async def hit(self, key: str, limit: int, window: int) -> None:
        """Count one hit; raise RateLimited(retry_after) past `limit` per `window` seconds."""

    async def aclose(self) -> None:
        """Release connections."""


def _window(window: int) -> tuple[int, int]:
    now = time.time()
    index = int(now // window)
    retry_after = max(1, math.ceil((index + 1) * window - now))
    return index, retry_after


class MemoryRateLimiter:
    """Counters in this process; right for one API process and for tests."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = asyncio.Lock()

    async def hit(self, key: str, limit: int, window: int) -> None:
        index, retry_after = _window(window)
        async with self._lock:
            current_index, count = self._counts.get(key, (index, 0))
            count = count + 1 if current_index == index else 1
            self._counts[key] = (index, count)
            if len(self._counts) > 100_000:  # bound memory: drop stale windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}
        if count > limit:
            raise RateLimited(retry_after)

    async def aclose(self) -> None:
        return None


class RedisRateLimiter:
    """Counters in Redis, shared by every API process (INCR is atomic)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def hit(self, key: str, limit: int, window: int) -> None:
        index, retry_after = _window(window)
        name = f"relais:rl:{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        if int(count) > limit:
            raise RateLimited(retry_after)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str) -> RateLimiter:
    """Redis when configured, else memory."""
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
