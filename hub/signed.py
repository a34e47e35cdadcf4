"""Reading a signed file a client hands the hub (chain head, revocation list): refusals as answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from certs.errors import CertError
from hub.errors import Rejected

T = TypeVar("T")


def read_signed(read: Callable[[bytes], T], data: bytes, limit: int, what: str) -> T:
    """``read(data)``, with every way it can fail as a 422 naming the reason (never a 500)."""
    if len(data) > limit:
        raise Rejected(f"a {what} is at most {limit} bytes", code="too_large")
    try:
        return read(data)
    except CertError as e:
        raise Rejected(f"not a valid {what}: {e.message}", code=e.reason) from e
    except ValueError as e:  # an integer of over 4,300 digits
        raise Rejected(f"not a valid {what}: {str(e)[:120]}", code="malformed") from None
