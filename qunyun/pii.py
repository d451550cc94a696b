"""Personal data: phone normalisation and the masking every log, artifact and report uses."""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"[\s\-()（）.+]")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(raw: str | None) -> str | None:
    """Return the 11-digit mainland mobile number in `raw`, None when blank.

    Accepts +86 / 0086 / 86 prefixes, spaces, dashes, dots and brackets. Raises ValueError
    when something is there but is not a mainland mobile number.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # Excel numeric cells
        text = text[:-2]
    if not text:
        return None
    digits = _NON_DIGITS.sub("", text)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
            break
    if not _MAINLAND_MOBILE.match(digits):
        raise ValueError(f"不是有效的手机号 (invalid mobile number): {mask_text(text)}")
    return digits


def mask_phone(phone: str | None) -> str:
    """138****8000: the only form in which a phone number leaves the database."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """Mask every mainland mobile number that appears inside free text."""
    return _PHONE_IN_TEXT.sub(r"\1****\2", text)
