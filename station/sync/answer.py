"""What one upload (or question) to the hub taught the station: :class:`Answer`.  Pure.

Apart from :mod:`station.sync.client` (the HTTP, httpx) so that the modules reading answers (lot
checks, the TUI's messages) do not import the HTTP stack: the live image's boot-to-TUI time counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["sent", "rejected", "retry", "halt"]
#: Added to the message of an answer that suggests a wrong hub URL (404, a redirect).
WRONG_URL_HINT = " (is the hub URL right?)"


@dataclass(frozen=True)
class Answer:
    """What one upload taught us.  ``halt``: end the pass (the hub or the network is in trouble)."""

    verdict: Verdict
    message: str
    retry_after: float | None = None
    code: str | None = None  # the hub's error code, when it sent one
    status: int | None = None  # the HTTP status, when there was an answer
    ends_pass: bool = False  # a "retry" that also ends the pass (a timeout: the hub is too slow)
    body: Any = None  # the decoded JSON of a 2xx answer (an upload's carries its inclusion proof)

    @property
    def halt(self) -> bool:
        return self.verdict == "halt" or self.ends_pass
