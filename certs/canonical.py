"""Canonical JSON and strict base64url: the byte-exact encodings that get signed.

Canonical JSON here is: ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8, with two restrictions that make it identical to RFC 8785 (JCS) for every value a
certificate holds and unambiguous for any JSON library:

* no floating-point numbers (coverage is stored as integer parts per million);
* integers within +/- (2**53 - 1), so JavaScript and other double-based parsers read them exactly.

Parsing is strict: duplicate object keys, NaN/Infinity, floats and non-UTF-8 input are rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from certs.errors import MalformedEnvelope

MAX_SAFE_INT = 2**53 - 1
#: Deepest nesting of objects and lists a signed record may have (a certificate uses 5 levels).
MAX_DEPTH = 32

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class CanonicalError(ValueError):
    """A value cannot be represented in canonical JSON (programming error on the signing side)."""


def _check(value: Any, path: str, depth: int = 0) -> None:
    t = type(value)
    if t is str or t is bool or value is None:
        return
    if t is int:
        _check_int(value, path)
    elif t is dict or t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise CanonicalError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        _check_container(value, path, depth)
    else:
        _check_other(value, path, depth)


def _check_int(value: int, path: str) -> None:
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        # never str() the value: Python refuses to print integers of more than 4,300 digits
        raise CanonicalError(f"{path}: integer of {value.bit_length()} bits is outside the JSON-safe range")


def _check_container(value: Any, path: str, depth: int) -> None:
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise CanonicalError(f"{path}: object keys must be strings, got {type(k).__name__}")
            if type(v) is not str:  # fast path: most values are strings
                _check(v, f"{path}.{k}", depth + 1)
        return
    for i, v in enumerate(value):
        if type(v) is not str:
            _check(v, f"{path}[{i}]", depth + 1)


def _check_other(value: Any, path: str, depth: int) -> None:
    """Subclasses (StrEnum, IntEnum...) serialise as their base type; floats and objects are refused."""
    if isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        _check_int(int(value), path)
    elif isinstance(value, dict):
        _check(dict(value), path, depth)
    elif isinstance(value, float):
        raise CanonicalError(f"{path}: floating-point numbers are not allowed in a signed record")
    else:
        raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value`` (sorted keys, no spaces)."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate, reachable through a "\ud800" escape
        raise CanonicalError(f"string holds an invalid code point (U+{ord(text[e.start]):04X})") from e


def shown(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of an untrusted JSON value for an error message.

    Never ``repr`` of a container (deep nesting overflows the stack) nor ``str`` of a huge integer.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        text = repr(value[:limit])
        return text + "..." if len(value) > limit else text
    return f"<{type(value).__name__}>"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedEnvelope(f"duplicate JSON key {shown(k)}")
        out[k] = v
    return out


def _no_float(text: str) -> Any:
    raise MalformedEnvelope(f"floating-point number {shown(text)} is not allowed")


def _no_constant(text: str) -> Any:
    raise MalformedEnvelope(f"{text} is not valid JSON")


def parse_json(data: bytes | str, what: str = "JSON") -> Any:
    """Strictly parse JSON: UTF-8 only, no duplicate keys, no floats, no NaN.

    Every way the standard parser can fail on hostile input becomes :class:`MalformedEnvelope`:
    syntax errors, nesting deeper than the interpreter's recursion limit (``RecursionError``) and
    integers of more than 4,300 digits (Python's int/str conversion limit raises ``ValueError``).
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedEnvelope(f"{what} is not valid UTF-8 ({e.reason} at byte {e.start})") from e
    else:
        text = data
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_constant
        )
    except json.JSONDecodeError as e:
        raise MalformedEnvelope(
            f"{what} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e
    except RecursionError as e:
        raise MalformedEnvelope(f"{what} is nested too deeply") from e
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise MalformedEnvelope(f"{what} holds a number too long to read ({e})") from e


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str = "value") -> bytes:
    """Strict base64url decoding: URL-safe alphabet, no padding, no stray bits, canonical form only."""
    if not isinstance(text, str):
        raise MalformedEnvelope(f"{what} must be a base64url string")
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise MalformedEnvelope(f"{what} is not valid unpadded base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as e:
        raise MalformedEnvelope(f"{what} is not valid base64url: {e}") from e
    if b64url_encode(raw) != text:
        raise MalformedEnvelope(f"{what} is not in canonical base64url form")
    return raw
