"""An ASGI middleware in front of every route: security headers, per-client rate limits, a cap on
requests in progress.

* **Security headers** on every answer: a Content-Security-Policy allowing nothing but the page's
  own stylesheet (no script at all) and no framing, ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` (verification URLs carry ids).
* **Rate limits** (token buckets, :class:`Limits`; a batch upload counts more than one request,
  :data:`hub.batch.ITEMS_PER_REQUEST`, at most a burst's worth): requests with a bearer token are counted per
  token (a workshop's stations often share one address), the others per client address (behind a
  reverse proxy, run ``serve --forwarded-allow-ips`` so the address is the client's).  Over the
  limit: 429 with ``Retry-After``.  The public lookups verify a signature, so they get the smaller
  budget; verdicts are also cached per stored certificate (:meth:`hub.service.Hub.check_stored`).
* **Concurrency cap**: over ``max_in_flight`` requests in progress, 503 with ``Retry-After``.

All of this state is per process and only ever *refuses* work: N hub processes behind one
PostgreSQL stay correct (each enforces its own share of the limits).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STYLE = (
    "body{font-family:sans-serif;max-width:44em;margin:2em auto;padding:0 1em}"
    ".ok{color:#075e07}.bad{color:#a40000}td{padding:.2em .8em .2em 0;vertical-align:top}"
)


def _style_hash() -> str:
    return base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_style_hash()}'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS]
#: Scope key of ``charge(extra) -> seconds to wait`` (0: taken): more of this client's budget.
CHARGE = "tabula.rate_charge"


@dataclass(frozen=True)
class Limits:
    """Per-client budgets (requests per second, burst) and the in-progress cap; 0 rate = no limit."""

    public_rate: float = 20.0
    public_burst: int = 60
    station_rate: float = 300.0
    station_burst: int = 600
    max_in_flight: int = 128


class Buckets:
    """Token buckets by key; thread-safe; forgets idle full buckets so memory stays bounded."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int, now: float | None = None, cost: float = 1.0) -> float:
        """0 when allowed (``cost`` tokens taken, at most a burst's worth); else the seconds to wait."""
        if rate <= 0:
            return 0.0
        cost = min(cost, float(burst))
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._state.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= cost:
                self._state[key] = (tokens - cost, now)
                return 0.0
            self._state[key] = (tokens, now)
            if len(self._state) > self.MAX_KEYS:
                self._forget(now, rate, burst)
            return (cost - tokens) / rate

    def _forget(self, now: float, rate: float, burst: int) -> None:
        full = [k for k, (t, last) in self._state.items() if t + (now - last) * rate >= burst]
        for k in full:
            del self._state[k]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return None


class Guard:
    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.buckets = Buckets()
        self.in_flight = 0

    def _budget(self, scope: Scope) -> tuple[str, float, int]:
        auth = _header(scope, b"authorization")
        if auth is not None:
            return (
                "t:" + hashlib.sha256(auth).hexdigest(),
                self.limits.station_rate,
                self.limits.station_burst,
            )
        client = scope.get("client") or ("?", 0)
        return "a:" + str(client[0]), self.limits.public_rate, self.limits.public_burst

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = self._budget(scope)
        wait = self.buckets.take(*budget)
        if wait > 0:
            await _refuse(send, 429, "rate_limited", "too many requests from this client", wait)
            return
        # A request carrying several uploads (a batch) takes the rest of its cost from the same budget.
        # (At most what the bucket can hold besides this request's own token: a batch always passes
        # once the bucket is full again.)
        scope[CHARGE] = lambda extra: self.buckets.take(*budget, cost=min(extra, budget[2] - 1))
        if self.limits.max_in_flight and self.in_flight >= self.limits.max_in_flight:
            await _refuse(send, 503, "overloaded", "the hub is busy", 1.0)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, _with_headers(send))
        finally:
            self.in_flight -= 1


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *_RAW_HEADERS]
        await send(message)

    return wrapped


async def _refuse(send: Send, status: int, code: str, message: str, wait: float) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        *_RAW_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
