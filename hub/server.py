"""How the hub is served: uvicorn with limits on slow and numerous clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no deadline for the
request itself: a client sending its headers (or body) a byte at a time holds a connection for
ever, and a thousand of them ("slowloris") fill the server.  :class:`DeadlineH11Protocol` gives
every request ``read_timeout`` seconds from its first byte (or from the connection's opening) to
arrive whole; past it the connection is closed.  Header size is capped by h11
(``h11_max_incomplete_event_size``), bodies by the routes (1 MiB), connections by
``limit_concurrency`` (uvicorn answers 503 beyond it) and requests in progress by
:class:`hub.guard.Guard`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("hub.server")


@dataclass(frozen=True)
class ServerLimits:
    read_timeout: float = 15.0  # seconds for a whole request (headers and body) to arrive
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_connections: int = 2048  # uvicorn's limit_concurrency: beyond it, 503
    max_header_bytes: int = 16 * 1024
    backlog: int = 2048


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request to be received in full."""

    read_timeout: float = ServerLimits.read_timeout
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            if self._deadline is None:
                self._arm()  # the first bytes of a new request on a kept-alive connection
        else:
            self._disarm()  # request received whole (or the connection is over)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            log.info(
                "closing a connection from %s: request not received within %.0f s",
                self.client,
                self.read_timeout,
            )
            self.transport.close()


def protocol_class(read_timeout: float) -> type[DeadlineH11Protocol]:
    return type("HubH11Protocol", (DeadlineH11Protocol,), {"read_timeout": read_timeout})


def uvicorn_options(limits: ServerLimits | None = None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` / ``uvicorn.run`` enforcing ``limits``."""
    lim = limits or ServerLimits()
    return {
        "http": protocol_class(lim.read_timeout),
        "timeout_keep_alive": lim.keep_alive,
        "limit_concurrency": lim.max_connections,
        "h11_max_incomplete_event_size": lim.max_header_bytes,
        "backlog": lim.backlog,
        "server_header": False,
    }
