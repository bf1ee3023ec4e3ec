"""Score caches: SRM logits keyed by ``(srm fingerprint, state, action)``.

Values are plain floats (strings in Redis, never pickle). Every backend reads and writes a whole
expansion at once, so a node call costs one round trip whatever K is. A Redis value that is not a
float this module wrote, or not one an SRM can produce (see ``MAX_PLAUSIBLE_LOGIT``), is a miss:
the pair is scored again and overwritten, and one warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

# A trained SRM's logits lie within about ±50 (sigmoid(40) is 1 - 4e-18) and a sequence-classifier head
# on layer-normed features does not reach thousands; fp16 cannot even hold more than 65504. A cached
# value beyond ±1e4 is therefore corruption or tampering, never a score: it would decide the softmax alone.
MAX_PLAUSIBLE_LOGIT = 1e4
# Exactly what ``repr(float)`` writes for a finite number: no underscores, spaces, "inf" or "nan".
_FLOAT_TEXT = re.compile(rb"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def score_key(fingerprint: str, state: str, action: str) -> str:
    """A fixed-length key; the parts are length-prefixed so no two triples collide by concatenation."""
    h = hashlib.sha256()
    for part in (fingerprint, state, action):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


@runtime_checkable
class ScoreCache(Protocol):
    def get_many(self, keys: Sequence[str]) -> list[float | None]:
        """Values aligned with ``keys``; None for a miss."""
        ...

    def set_many(self, mapping: Mapping[str, float]) -> None:
        ...


class InMemoryScoreCache:
    """A thread-safe LRU of at most ``maxsize`` scores, private to the process."""

    def __init__(self, maxsize: int = 100_000) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get_many(self, keys: Sequence[str]) -> list[float | None]:
        out: list[float | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                out.append(value)
        return out

    def set_many(self, mapping: Mapping[str, float]) -> None:
        with self._lock:
            for key, value in mapping.items():
                self._data[key] = float(value)
                self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)


class RedisScoreCache:
    """Scores shared across processes and runs in Redis, under ``namespace:``, with an optional TTL.

    If Redis stops answering, reads and writes go to an in-memory LRU and one warning is logged;
    after ``retry_after`` seconds the next call tries Redis again.
    """

    def __init__(self, url: str, namespace: str = "srm", ttl: int | None = None, *, retry_after: float = 30.0,
                 socket_timeout: float = 2.0, fallback: InMemoryScoreCache | None = None) -> None:
        import redis

        if ttl is not None and ttl < 1:
            raise ValueError(f"ttl must be a whole number of seconds >= 1, got {ttl}")
        self.namespace = namespace
        self.ttl = ttl
        self.retry_after = retry_after
        self.fallback = fallback or InMemoryScoreCache()
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        # Raw bytes: one undecodable value must be a miss, not an error for the whole MGET.
        self._client = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                            socket_connect_timeout=socket_timeout, decode_responses=False)
        self._down_since: float | None = None
        self._warned_bad_value = False

    @property
    def client(self):
        return self._client

    @property
    def available(self) -> bool:
        """False while Redis is considered down (between a failure and the next retry)."""
        return self._down_since is None

    def _redis_key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _should_try(self) -> bool:
        return self._down_since is None or time.monotonic() - self._down_since >= self.retry_after

    def _went_down(self, exc: Exception) -> None:
        if self._down_since is None:
            log.warning("Redis score cache unavailable (%s); using the in-memory cache and retrying every %.0f s",
                        exc, self.retry_after)
        self._down_since = time.monotonic()

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.info("Redis score cache reachable again")
            self._down_since = None

    def get_many(self, keys: Sequence[str]) -> list[float | None]:
        if not keys:
            return []
        if self._should_try():
            try:
                raw = self._client.mget([self._redis_key(k) for k in keys])
            except self._errors as exc:
                self._went_down(exc)
            else:
                self._came_back()
                values = [parse_score(v) for v in raw]
                bad = [k for k, v, r in zip(keys, values, raw) if v is None and r is not None]
                if bad and not self._warned_bad_value:
                    log.warning("Redis score cache: %d value(s) under %r are not scores an SRM can produce (first: "
                                "%s:%s); they count as misses and are rescored and overwritten; this warning is "
                                "shown once", len(bad), self.namespace, self.namespace, bad[0])
                    self._warned_bad_value = True
                return values
        return self.fallback.get_many(keys)

    def set_many(self, mapping: Mapping[str, float]) -> None:
        if not mapping:
            return
        self.fallback.set_many(mapping)
        if not self._should_try():
            return
        values = {self._redis_key(k): repr(float(v)) for k, v in mapping.items()}
        try:
            if self.ttl is None:
                self._client.mset(values)
            else:
                pipe = self._client.pipeline(transaction=False)
                for key, value in values.items():
                    pipe.set(key, value, ex=self.ttl)
                pipe.execute()
        except self._errors as exc:
            self._went_down(exc)
        else:
            self._came_back()


def parse_score(value: bytes | str | None) -> float | None:
    """A stored score, or None for a miss, for anything ``set_many`` would not have written (bytes that
    are not a plain decimal float) and for a float beyond ``MAX_PLAUSIBLE_LOGIT``."""
    if value is None:
        return None
    data = value.encode("utf-8", "replace") if isinstance(value, str) else bytes(value)
    if len(data) > 32 or not _FLOAT_TEXT.fullmatch(data):
        return None
    number = float(data)
    return number if math.isfinite(number) and abs(number) <= MAX_PLAUSIBLE_LOGIT else None
