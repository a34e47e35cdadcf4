"""HTTP to the hub: one idempotent upload, under an overall deadline, and what its answer means.

Each queued document is uploaded with ``PUT /api/v1/certificates/{id}`` (or ``/api/v1/reports/{id}``,
``/api/v1/destructions/{id}`` for a destruction record: same answers as a certificate)
carrying the exact bytes that were queued and the station's bearer token; certificates also go up to
``batch`` at a time with ``POST /api/v1/certificates:batch`` (the same bytes, base64), whose answer
holds each item's status and body, read exactly as a single upload's (:meth:`SyncClient.upload_batch`).  The id is the
idempotency key: the hub answers 201 the first time, 200 for a byte-identical re-upload and 409 for
different bytes under the same id.  So a response lost after the hub stored the certificate, or a
drainer killed before it recorded the answer, only causes a harmless re-upload.

What an answer means (:class:`Answer`; :mod:`station.sync.drain` acts on it):

* 2xx, or any answer saying the same bytes are stored: *sent*.  A 409 naming this very certificate
  (an older hub racing two identical uploads) is checked by sending once more: it is never *rejected*;
* 400, 403, 409, 410, 413, 415, 422 and other 4xx: the hub refused this document for good:
  *rejected*, with the hub's reason (``{"error": code, "message": ...}``);
* 401 (bad or expired token), 403 ``station_revoked``, 404 (wrong URL) and redirects: a configuration
  problem; the pass halts, no document is blamed;
* 429: the hub asks to slow down; the pass halts until its ``Retry-After``;
* 408, 425, 5xx (503 with ``Retry-After``), a connection broken mid-answer: a transient failure of
  this document, which waits out its own backoff while the others go on;
* the hub unreachable (refused, DNS, TLS verification): the pass halts, no document is blamed;
* no complete answer within the per-operation ``timeout`` or the whole request's ``deadline``: this
  document's transient failure, and the pass halts (the hub is too slow for anything else).

The deadline is enforced on the sockets themselves (every connect, send and read waits at most what
is left of it), so a hub that trickles its answer a byte at a time cannot hold an upload longer.
This module is the only one that imports httpx (import-linter contract).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import ssl
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from station.sync.answer import WRONG_URL_HINT, Answer
from station.sync.config import SyncConfig
from station.sync.errors import SyncConfigError
from station.sync.outbox import Item

USER_AGENT = "tabula-station-sync/2"
_HALT_CODES = {"station_revoked", "token_expired", "unauthorized"}
_WRITE_CHUNK = 16 * 1024  # each send of the body waits at most what is left of the deadline


# --- the deadline, on the sockets ------------------------------------------------------------------


class _Deadline:
    """The end of the request in flight (monotonic seconds), shared by every socket of the pool."""

    def __init__(self) -> None:
        self.at: float | None = None

    def left(self, timeout: float | None, exc: type[Exception]) -> float | None:
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise exc("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)

    @property
    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_CHUNK):
            chunk = buffer[start : start + _WRITE_CHUNK]
            self._stream.write(chunk, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


#: Certificates are sent in batches (an older hub without this route gets them one by one).
BATCH_PATH = "/api/v1/certificates:batch"
#: Bytes of certificates per batch at most (the hub takes 8 MiB of base64 and JSON); certificates per
#: batch: the configuration's ``batch``.
BATCH_BYTES = 4 * 1024 * 1024
#: Added to a 404's message: for an upload it most often means a wrong URL (station.sync.lots drops it
#: when the 404 is the hub's answer to a lot lookup: the lot is unknown).

#: The hub's route for each kind of queued document.
ROUTES = {"certificate": "certificates", "report": "reports", "destruction": "destructions"}


def _transport(context: ssl.SSLContext, deadline: _Deadline) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=context)
    # httpx has no option to choose the network backend: its transport only wraps an httpcore pool, so
    # put in an equivalent pool whose sockets obey the deadline (httpcore's public API).  Environment
    # proxies are not used: the station talks to its hub directly.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context, network_backend=_DeadlineBackend(deadline), retries=0
    )
    return transport


def _ssl_context(config: SyncConfig) -> ssl.SSLContext:
    if config.ca_bundle is None:
        return httpx.create_ssl_context()
    if not config.ca_bundle.is_file():
        raise SyncConfigError(f"the CA bundle {config.ca_bundle} does not exist")
    try:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    except (ssl.SSLError, OSError) as e:
        raise SyncConfigError(f"the CA bundle {config.ca_bundle} is not usable: {e}") from e


# --- what an answer means --------------------------------------------------------------------------


def _hub_error(response: httpx.Response) -> tuple[str, str | None, object]:
    """The hub's reason as a line, its error code, and the decoded JSON body (None when not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}", None, None
    if isinstance(body, dict) and "error" in body:
        code = str(body.get("error"))
        return f"HTTP {response.status_code} {code}: {body.get('message', '')}", code, body
    return f"HTTP {response.status_code}: {str(body)[:200]}", None, body


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON (or not UTF-8): nothing to keep from it
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:  # an HTTP date
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None  # unreadable: our own backoff applies
    return max(0.0, min(3600.0, seconds)) if math.isfinite(seconds) else None


def classify(response: httpx.Response) -> Answer:
    """The meaning of the hub's answer to one upload (see the module's docstring)."""
    code = response.status_code
    if 200 <= code < 300:
        return Answer("sent", f"HTTP {code}", status=code, body=_json_body(response))
    reason, hub_code, body = _hub_error(response)
    return _refusal(code, reason, hub_code, body, _retry_after(response), response.headers.get("location"))


def _refusal(
    code: int,
    reason: str,
    hub_code: str | None,
    body: object,
    retry_after: float | None,
    location: str | None,
) -> Answer:
    """What a non-2xx answer to one upload means (a whole answer's, or one item's of a batch)."""
    if isinstance(body, dict) and body.get("status") == "already_stored":
        return Answer("sent", reason, status=code)
    if code == 401 or hub_code in _HALT_CODES:
        return Answer(
            "halt", reason + " (is the station token right, and still valid?)", code=hub_code, status=code
        )
    if code == 404:
        return Answer("halt", reason + WRONG_URL_HINT, code=hub_code, status=code)
    if 300 <= code < 400:
        return Answer(
            "halt", f"HTTP {code}: the hub redirects to {location or '?'} (set the URL to it)", status=code
        )
    if code == 429:
        return Answer("halt", reason, retry_after, hub_code, code)
    if code in (408, 425) or code >= 500:
        return Answer("retry", reason, retry_after, hub_code, code)
    if 400 <= code < 500:
        return Answer("rejected", reason, code=hub_code, status=code)
    return Answer("retry", f"unexpected answer: HTTP {code}", status=code)


def classify_item(doc: object) -> Answer | None:
    """The meaning of one item's result in a batch answer (None: not a result this client reads)."""
    if not isinstance(doc, dict):
        return None
    code = doc.get("http_status")
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    if 200 <= code < 300:
        return Answer("sent", f"HTTP {code}", status=code, body=doc)
    hub_code = str(doc["error"]) if "error" in doc else None
    reason = f"HTTP {code} {hub_code}: {doc.get('message', '')}" if hub_code else f"HTTP {code}"
    wait = doc.get("retry_after")
    retry_after = (
        float(min(3600, max(0, wait))) if isinstance(wait, int | float) and math.isfinite(wait) else None
    )
    return _refusal(code, reason, hub_code, doc, retry_after, None)


def _item_answers(body: Any, items: list[Item]) -> list[Answer] | None:
    """Each item's answer in a batch answer, in order (None: not one result per item, by id)."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(items):
        return None
    answers = []
    for result, item in zip(results, items, strict=True):
        answer = classify_item(result)
        if answer is None or result.get("certificate_id") != item.doc_id:
            return None
        answers.append(answer)
    return answers


def _names_itself(answer: Answer, item: Item) -> bool:
    """A 409 that says this very certificate holds the place: it is stored (an older hub's race)."""
    return (
        answer.verdict == "rejected"
        and answer.status == 409
        and answer.code != "id_conflict"
        and item.doc_id in answer.message
    )


class SyncClient:
    """One HTTP connection pool to the hub, authenticated with the station's token."""

    def __init__(self, config: SyncConfig) -> None:
        config.check_transport()  # before the token is even read
        token = config.token()
        self.deadline = config.deadline
        self.batch_items = config.batch
        self.batch_supported = config.batch > 1  # and until the hub shows it has no batch route
        self._deadline = _Deadline()
        self._http = httpx.Client(
            base_url=config.base_url(),
            transport=_transport(_ssl_context(config), self._deadline),
            timeout=httpx.Timeout(config.timeout),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upload(self, item: Item) -> Answer:
        answer = self._put(item)
        if _names_itself(answer, item):
            # Ask again: a hub that stored these very bytes answers 200 now that the race is over.
            again = self._put(item)
            if again.verdict == "sent" or _names_itself(again, item):
                return Answer(
                    "sent", f"{answer.message} (the hub holds this certificate)", status=again.status
                )
            return again
        return answer

    def upload_batch(self, items: list[Item]) -> list[Answer] | None:
        """Certificates of this station in one request (``POST /api/v1/certificates:batch``): one
        answer per item, each meaning what it would for a single upload.  A whole-request failure
        (network, 429, 503, 401, a deadline) is every item's answer.  None: the hub cannot take this
        batch (an older hub without the route, from then on not asked again; a batch it refused as
        a whole): send the items one by one."""
        if not self.batch_supported:
            return None
        doc = {
            "certificates": [
                {"certificate_id": i.doc_id, "body": base64.b64encode(i.body).decode()} for i in items
            ]
        }
        answer = self.request("POST", BATCH_PATH, content=json.dumps(doc).encode())
        if answer.status in (404, 405):
            self.batch_supported = False
            return None
        if answer.verdict == "rejected":
            return None
        if answer.verdict != "sent":
            return [answer] * len(items)
        answers = _item_answers(answer.body, items)
        if answers is None:
            return None  # an answer this client cannot match to its items: one by one instead
        # A 409 naming the item itself (a hub racing identical uploads) is checked as upload() does.
        return [self.upload(i) if _names_itself(a, i) else a for a, i in zip(answers, items, strict=True)]

    def _put(self, item: Item) -> Answer:
        path = f"/api/v1/{ROUTES[item.kind]}/{item.doc_id}"
        return self.request("PUT", path, content=item.body)

    def log_proof(self, certificate_id: str) -> Answer:
        """The hub's inclusion proof of a certificate it holds (``body``: the proof document)."""
        return self.request("GET", "/api/v1/log/proof", params={"certificate_id": certificate_id})

    def log_key(self) -> Answer:
        return self.request("GET", "/api/v1/log/key.pem", raw=True)

    def lot(self, reference: str) -> Answer:
        """The hub's lot ``reference`` in this station's organisation (404 ``unknown_lot``: none);
        :mod:`station.sync.lots` reads the answer.  A query parameter: references may hold '/'."""
        return self.request("GET", "/api/v1/lots", params={"reference": reference})

    def publish_chain_head(self, body: bytes) -> Answer:
        return self.request("POST", "/api/v1/chain-heads", content=body)

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        raw: bool = False,
    ) -> Answer:
        """One request under the deadline; ``raw``: a 2xx answer's ``body`` is its bytes, not JSON."""
        self._deadline.at = time.monotonic() + self.deadline
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.ConnectTimeout as e:
            return Answer("halt", f"hub unreachable: timeout while connecting ({e})")
        except httpx.TimeoutException as e:
            if self._deadline.passed:
                return Answer(
                    "retry", f"no complete answer within the {self.deadline:g} s deadline", ends_pass=True
                )
            return Answer("retry", f"timeout talking to the hub ({type(e).__name__})", ends_pass=True)
        except httpx.ConnectError as e:
            return Answer("halt", f"hub unreachable: {e}")
        except (httpx.TransportError, httpx.DecodingError) as e:
            return Answer("retry", f"network error: {type(e).__name__}: {e}")
        finally:
            self._deadline.at = None
        answer = classify(response)
        if raw and answer.verdict == "sent":
            return dataclasses.replace(answer, body=response.content)
        return answer
