"""Errors of the hub.  Each maps to an HTTP status and a stable JSON error code.

The contract with the station's sync client (hub/README.md, "Answers"): 2xx stored; 4xx (except
401 and 429) is permanent: the certificate itself is wrong and sending it again cannot help; 401
means a bad or expired token; 429 and 503 are transient and carry ``Retry-After`` (seconds).
"""

from __future__ import annotations

from host.errors import TabulaError


class HubError(TabulaError):
    """Base of the hub's errors."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, str]:
        out = {"error": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class Unauthorized(HubError):
    status = 401
    code = "unauthorized"


class Forbidden(HubError):
    status = 403
    code = "forbidden"


class NotFound(HubError):
    status = 404
    code = "not_found"


class Conflict(HubError):
    status = 409
    code = "conflict"


class TooLarge(HubError):
    status = 413
    code = "payload_too_large"


class Rejected(HubError):
    """A certificate that fails verification (signature, trust, schema, chain)."""

    status = 422
    code = "invalid_certificate"


class AdminError(HubError):
    """An admin command could not be carried out (bad key, unknown organisation, ...)."""

    code = "admin_error"


class UnsupportedMediaType(HubError):
    status = 415
    code = "unsupported_media_type"


class Gone(HubError):
    """The resource existed; its content was removed on purpose (e.g. personal data, on request)."""

    status = 410
    code = "gone"


class Transient(HubError):
    """Try again later: the client keeps the item and retries after ``retry_after`` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TooManyRequests(Transient):
    status = 429
    code = "rate_limited"
