"""What every channel adapter returns: an outcome the ledger can act on without guessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted it
    RETRY = "retry"  # certainly not delivered; safe to try again (rate limit, busy, no connection)
    FAILED = "failed"  # the provider refused it for good
    UNKNOWN = "unknown"  # it may or may not have been delivered (timeout after sending)


@dataclass
class SendResult:
    outcome: Outcome
    code: int | None = None
    msgid: str | None = None
    detail: str = ""
    # Customer mass messages: recipients the provider would not deliver to.
    fail_list: list[str] = field(default_factory=list)
