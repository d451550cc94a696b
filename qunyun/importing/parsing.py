"""Cell parsers for imports: dates, amounts, tags, gender, event kinds, masking of rejected values.

Every parser takes the raw cell (str from CSV; str, int, float or datetime from XLSX) and
returns the clean value, or raises `CellError` with a reason in Chinese and English.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from qunyun.pii import mask_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
EARLIEST = datetime(2000, 1, 1)
_ONE_DAY = timedelta(days=1)
# Excel's day 0 (the 1900 leap-year bug makes 1899-12-30 the right epoch for serials > 60).
_EXCEL_EPOCH = datetime(1899, 12, 30)
_SERIAL_MIN, _SERIAL_MAX = 20000.0, 80000.0  # 1954 .. 2119: plausible Excel serial dates


class CellError(ValueError):
    """A cell that cannot be trusted; `reason` is the operator-facing text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def now_local() -> datetime:
    """Naive wall-clock time in Asia/Shanghai: how imported timestamps are stored."""
    return datetime.now(SHANGHAI).replace(tzinfo=None)


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(value: object) -> str:
    """A cell as stripped text; XLSX numbers that are whole become '123', not '123.0'."""
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).strip()


# -- dates -------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:(?:\s+|T|\s*日?\s*)(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*[:：]?\s*(?P<S>\d{1,2})(?:\.\d{1,6})?\s*秒?)?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT_RE = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_SERIAL_RE = re.compile(r"^\d{5}(?:\.\d+)?$")


def _from_serial(serial: float) -> datetime:
    if not (_SERIAL_MIN <= serial <= _SERIAL_MAX):
        raise CellError(f"无法识别的日期 (unrecognised date serial): {serial:g}")
    # Round to the second: Excel stores times as binary fractions of a day.
    return _EXCEL_EPOCH + timedelta(seconds=round(serial * 86400))


def _check_range(dt: datetime, now: datetime) -> datetime:
    if dt < EARLIEST:
        raise CellError("日期早于2000年 (date before 2000)")
    if dt > now + timedelta(days=1):
        raise CellError("日期在未来 (date more than 1 day in the future)")
    return dt


def parse_datetime(value: object, now: datetime) -> datetime | None:
    """Parse a date/time cell to a naive Asia/Shanghai datetime; None when blank.

    Accepts 2026-11-01, 2026/11/1, 2026.11.01, 20261101, 2026-11-01 08:30(:00), ISO 8601 with
    'T' and an offset, 2026年11月1日 (8:30 / 8时30分), Excel serial numbers and datetime cells.
    Impossible dates, dates before 2000 and dates more than a day after `now` are rejected.
    """
    if value is None:
        return None
    if isinstance(value, str):
        raw = value.strip()
        if not raw:
            return None
        try:
            dt = datetime.fromisoformat(raw)  # the common case, fast and in C
        except ValueError:
            dt = _parse_date_text(raw)
    elif isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise CellError("无法识别的日期 (unrecognised date)")
        dt = _from_serial(float(value))
    else:  # a boolean, a bare time of day, anything else a spreadsheet can hold
        raise CellError(f"无法识别的日期 (unrecognised date): {value}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(SHANGHAI).replace(tzinfo=None)
    if dt < EARLIEST or dt > now + _ONE_DAY:
        return _check_range(dt, now)
    return dt


def _parse_date_text(raw: str) -> datetime:
    s = raw
    m = _DATE_RE.match(s)
    if m is None:
        s = unicodedata.normalize("NFKC", raw)  # full-width digits, ：
        m = _DATE_RE.match(s) or _COMPACT_RE.match(s)
    if m is None:
        if _SERIAL_RE.match(s):
            return _from_serial(float(s))
        raise CellError(f"无法识别的日期 (unrecognised date): {mask_text(raw)[:40]}")
    g = m.groupdict()
    try:
        dt = datetime(
            int(g["y"]), int(g["m"]), int(g["d"]),
            int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0),
        )
    except ValueError:
        raise CellError(f"日期不存在 (impossible date): {raw[:40]}") from None
    tz = re.search(r"(Z|[+-]\d{2}:?\d{2})$", s)
    if tz and (g.get("H") is not None):
        try:
            return datetime.fromisoformat(dt.isoformat() + tz.group(1).replace("Z", "+00:00"))
        except ValueError:
            pass
    return dt


# -- numbers -----------------------------------------------------------------------------------

_MONEY_STRIP = re.compile(r"[¥￥$,，\s]|元|RMB|CNY", re.IGNORECASE)


def parse_amount(value: object) -> float | None:
    """A money amount in yuan: '1,234.50', '¥99', '99元'; None when blank; ≥ 0 or rejected."""
    if type(value) is str:
        try:
            amount = float(value)  # fast path: a plain number
        except ValueError:
            amount = None
        if amount is not None and 0 <= amount < 1e15:
            return round(amount, 2)
    if value is None:
        return None
    if isinstance(value, bool):
        raise CellError(f"金额不是数字 (amount is not a number): {value}")
    if isinstance(value, int | float):
        amount = float(value)
    else:
        raw = value.strip()
        if not raw:
            return None
        cleaned = _MONEY_STRIP.sub("", unicodedata.normalize("NFKC", raw))
        try:
            amount = float(cleaned)
        except ValueError:
            raise CellError(
                f"金额不是数字 (amount is not a number): {mask_text(raw)[:40]}"
            ) from None
    if not math.isfinite(amount):
        raise CellError("金额不是数字 (amount is not a number)")
    if amount < 0:
        raise CellError(f"金额为负数 (negative amount): {amount:g}")
    return round(amount, 2)


# -- lists, vocabularies -----------------------------------------------------------------------

_LIST_SPLIT = re.compile(r"[;；,，、|｜\n]+")


def split_list(value: object) -> list[str]:
    """Tags / group names: split on ; ； , ， 、 | and newlines, stripped, de-duplicated."""
    if type(value) is str:
        if not value or value.isspace():
            return []
        if _LIST_SPLIT.search(value) is None:
            return [value.strip()]
    elif is_blank(value):
        return []
    seen: dict[str, None] = {}
    for part in _LIST_SPLIT.split(text(value)):
        part = part.strip()
        if part:
            seen.setdefault(part, None)
    return list(seen)


_GENDERS = {
    "男": "male", "男性": "male", "male": "male", "m": "male", "1": "male", "先生": "male",
    "女": "female", "女性": "female", "female": "female", "f": "female", "2": "female",
    "女士": "female",
    "未知": None, "unknown": None, "0": None, "保密": None, "-": None, "无": None,
}


def parse_gender(value: object) -> str | None:
    if is_blank(value):
        return None
    key = text(value).lower()
    if key in _GENDERS:
        return _GENDERS[key]
    raise CellError(f"无法识别的性别 (unrecognised gender): {mask_text(key)[:20]}")


EVENT_KIND_ALIASES = {
    "join": "join", "进群": "join", "入群": "join", "加群": "join", "加入群聊": "join",
    "加入": "join", "入群成功": "join",
    "leave": "leave", "退群": "leave", "退出群聊": "leave", "离群": "leave", "被移出群聊": "leave",
    "退出": "leave",
    "message": "message", "发言": "message", "消息": "message", "聊天": "message",
    "群发言": "message",
    "checkin": "checkin", "check-in": "checkin", "check_in": "checkin", "打卡": "checkin",
    "签到": "checkin",
    "like": "like", "点赞": "like",
    "comment": "comment", "评论": "comment",
    "share": "share", "分享": "share", "转发": "share",
    "click": "click", "点击": "click",
    "purchase": "purchase", "购买": "purchase", "下单": "purchase", "支付": "purchase",
    "成交": "purchase", "order": "purchase",
    "referral": "referral", "邀请": "referral", "裂变": "referral", "推荐": "referral",
    "邀请好友": "referral",
}


def parse_event_kind(value: object) -> str:
    if is_blank(value):
        raise CellError("缺少事件类型 (missing event type)")
    key = text(value).lower()
    kind = EVENT_KIND_ALIASES.get(key)
    if kind is None:
        raise CellError(f"无法识别的事件类型 (unknown event type): {mask_text(key)[:20]}")
    return kind


# -- masking for rejects and messages ----------------------------------------------------------

_SPACED_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)[\s\-]?\d{4}[\s\-]?(\d{4})(?!\d)")
_LONG_DIGITS = re.compile(r"\d{11,}")


def _mask_digits(match: re.Match) -> str:
    digits = match.group(0)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_value(field: str, value: object) -> str:
    """The form a rejected cell takes in the rejects file: no phone number survives whole."""
    raw = text(value)
    if field == "phone":
        digits = re.sub(r"\D", "", raw)
        if len(digits) < 8:
            return "*" * len(digits)
        return f"{digits[:3]}****{digits[-4:]}"
    masked = _SPACED_PHONE.sub(r"\1****\2", mask_text(raw))
    return _LONG_DIGITS.sub(_mask_digits, masked)
