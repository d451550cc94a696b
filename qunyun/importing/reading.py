"""Reading export files: encoding detection, CSV/XLSX streaming, header → field mapping.

`open_table` yields a `Table` whose `rows` iterate `(row_number, cells)` lazily: CSV goes
through the csv module over a decoded text stream, XLSX through openpyxl's read-only mode;
neither loads the whole file. Row numbers are the file's own line/row numbers (header = 1
when it is the first line), so an operator can find the row in Excel.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from qunyun.errors import BadInput
from qunyun.pii import mask_text

Progress = Callable[[int, int], None]  # (done, total) in bytes (CSV) or rows (XLSX)

SAMPLE_BYTES = 1 << 20
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")

# Header aliases, compared after `normalize_header` (NFKC, lower case, no spaces/*/quotes,
# full-width brackets folded). The mapping file (--mapping) handles anything else.
_ID = (
    "客户id", "客户编号", "客户唯一id", "客户userid", "外部联系人id", "外部联系人userid",
    "外部联系人", "external_userid", "externaluserid", "external_id", "externalid",
    "用户id", "会员id", "会员编号", "客户外部id", "userid", "customer_id", "member_id",
)
MEMBER_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": _ID,
    "nickname": (
        "昵称", "客户昵称", "微信昵称", "客户名称", "客户名", "名称", "姓名", "客户姓名",
        "nickname", "name",
    ),
    "phone": (
        "手机号", "手机", "手机号码", "电话", "电话号码", "联系电话", "联系方式",
        "客户手机号", "手机号(选填)", "mobile", "phone", "phone_number",
    ),
    "gender": ("性别", "gender", "sex"),
    "source_channel": (
        "来源渠道", "来源", "渠道", "添加渠道", "添加来源", "客户来源", "获客渠道",
        "渠道来源", "source", "channel", "source_channel",
    ),
    "tags": (
        "标签", "客户标签", "企业标签", "个人标签", "标签名称", "用户标签", "tags", "tag",
    ),
    "groups": (
        "所在群", "所在群聊", "群聊", "群", "群名称", "群聊名称", "所在社群", "社群", "所属群",
        "groups", "group",
    ),
    "joined_at": (
        "入群时间", "进群时间", "加入时间", "加群时间", "添加时间", "添加好友时间",
        "首次添加时间", "成为客户时间", "joined_at", "join_time",
    ),
    "last_active_at": (
        "最近互动时间", "最后互动时间", "最近活跃时间", "最后活跃时间", "最近联系时间",
        "最后联系时间", "最近互动", "最后发言时间", "last_active_at", "last_active",
    ),
    "total_spend": (
        "累计消费(元)", "累计消费", "累计消费金额", "累计消费金额(元)", "累计消费额",
        "消费金额", "消费金额(元)", "总消费", "总消费(元)", "消费总额", "累计金额",
        "total_spend",
    ),
    "note": ("备注", "客户备注", "备注信息", "描述", "客户描述", "note", "remark", "notes"),
    "owner_userid": (
        "跟进人", "添加人", "跟进人id", "添加人id", "跟进人userid", "添加人userid",
        "跟进员工", "所属员工", "所属客服", "负责人", "客户负责人", "owner", "owner_userid",
    ),
}
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": _ID,
    "kind": (
        "事件", "事件类型", "行为", "行为类型", "类型", "动作", "事件名称", "event",
        "event_type", "kind", "type", "action",
    ),
    "occurred_at": (
        "发生时间", "时间", "事件时间", "行为时间", "触发时间", "日期", "互动时间",
        "occurred_at", "time", "timestamp", "datetime",
    ),
    "group": (
        "群", "所在群", "群名称", "群聊", "群聊名称", "社群", "所属群", "group", "group_name",
    ),
    "group_external_id": ("群id", "群聊id", "chat_id", "chatid", "group_id"),
    "campaign": ("活动", "活动名称", "活动id", "所属活动", "活动编号", "campaign"),
    "amount": (
        "金额", "金额(元)", "订单金额", "支付金额", "实付金额", "实付金额(元)", "消费金额",
        "amount",
    ),
}
# Fields more than one column may feed (their values are merged).
MULTI_COLUMN_FIELDS = frozenset({"tags"})
IGNORE = {"", "ignore", "skip", "-", "忽略"}


def normalize_header(name: object) -> str:
    s = unicodedata.normalize("NFKC", str(name or ""))
    s = s.replace("\ufeff", "").strip().strip("\"'").lower()
    s = re.sub(r"[\s*＊:：]", "", s)
    return s.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")")


@dataclass
class Table:
    path: Path
    encoding: str | None  # None for XLSX
    header_row: int
    headers: list[str]
    columns: dict[str, list[int]]  # field -> column indexes
    unmapped: list[str]
    rows: Iterator[tuple[int, list]] = field(repr=False)


def load_mapping(path: str | Path | None, fields: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Read `{columns: {"我的列名": field, ...}}`; a field of null/ignore drops the column."""
    if path is None:
        return {}
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise BadInput(f"映射文件不存在 (mapping file not found): {p}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"映射文件无法解析 (mapping file is not valid YAML): {p}: {exc}") from None
    cols = doc.get("columns") if isinstance(doc, dict) else None
    if not isinstance(cols, dict):
        raise BadInput(f"映射文件需要 columns: {{列名: 字段}} (mapping needs 'columns'): {p}")
    out: dict[str, str] = {}
    for header, target in cols.items():
        t = "" if target is None else str(target).strip()
        if t.lower() in IGNORE:
            out[normalize_header(header)] = ""
        elif t in fields:
            out[normalize_header(header)] = t
        else:
            raise BadInput(
                f"映射文件 {p}: 列 '{header}' 的目标字段未知 (unknown target field '{t}'); "
                f"可用 (allowed): {', '.join(fields)}"
            )
    return out


def _map_headers(
    headers: list[str], fields: dict[str, tuple[str, ...]], mapping: dict[str, str], path: Path
) -> tuple[dict[str, list[int]], list[str]]:
    aliases = {normalize_header(a): f for f, names in fields.items() for a in names}
    columns: dict[str, list[int]] = {}
    unmapped: list[str] = []
    for i, h in enumerate(headers):
        key = normalize_header(h)
        if not key:
            continue
        target = mapping[key] if key in mapping else aliases.get(key)
        if not target:
            if key not in mapping:
                unmapped.append(str(h))
            continue
        if target in columns and target not in MULTI_COLUMN_FIELDS:
            first = headers[columns[target][0]]
            raise BadInput(
                f"{path.name}: 列 '{first}' 和 '{h}' 都对应字段 {target} "
                f"(two columns map to the same field); 用 --mapping 把其中一列设为 ignore"
            )
        columns.setdefault(target, []).append(i)
    return columns, unmapped


# -- encodings ---------------------------------------------------------------------------------


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        return False


def detect_encoding(path: Path, sample: bytes | None = None) -> str:
    """UTF-8 (BOM or not) first, then GB18030 (a superset of GBK), then charset-normalizer."""
    if sample is None:
        with path.open("rb") as fh:
            sample = fh.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise BadInput(f"{path}: 不是文本文件 (not a text file: contains NUL bytes)")
    if _decodes(sample, "utf-8"):
        return "utf-8"
    if _decodes(sample, "gb18030"):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None or best.encoding is None:
        raise BadInput(
            f"{path}: 无法识别文件编码 (cannot detect the text encoding); 用 --encoding 指定"
        )
    return best.encoding


def _check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise BadInput(f"未知编码 (unknown encoding): {name}") from None


class _CountingReader(io.RawIOBase):
    """Wraps a binary file and counts the bytes read, for a byte-based progress bar."""

    def __init__(self, raw):
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self.count += n or 0
        return n


# -- tables ------------------------------------------------------------------------------------


def _find_header(
    rows: Iterator[tuple[int, list]],
    fields: dict[str, tuple[str, ...]],
    mapping: dict[str, str],
    required: tuple[str, ...],
    path: Path,
    kind: str,
) -> tuple[int, list[str], dict[str, list[int]], list[str]]:
    """The header is the first row (of the first 10 non-blank) that names the id column; a
    title line such as "客户列表 导出时间…" above it is skipped."""
    seen: list[str] = []
    for _, (row_no, cells) in zip(range(10), rows, strict=False):
        headers = ["" if c is None else str(c) for c in cells]
        columns, unmapped = _map_headers(headers, fields, mapping, path)
        if "external_id" in columns:
            missing = [f for f in required if f not in columns]
            if missing:
                raise BadInput(
                    f"{path.name}: 第{row_no}行表头缺少必需列 (header row {row_no} lacks required "
                    f"column): {', '.join(missing)}; 表头 (headers): {', '.join(headers)}"
                )
            return row_no, headers, columns, unmapped
        if not seen:
            seen = headers
    if not seen:
        raise BadInput(f"{path.name}: 文件没有内容 (file has no rows)")
    raise BadInput(
        f"{path.name}: 找不到客户ID列 (no customer id column for {kind}); 表头 (headers): "
        f"{mask_text(', '.join(seen))[:300]}; 用 --mapping 指定 (use --mapping)"
    )


def _csv_rows(reader, path: Path, encoding: str) -> Iterator[tuple[int, list]]:
    start = 1
    try:
        for cells in reader:
            row_no = start
            start = reader.line_num + 1
            if cells and any(c.strip() for c in cells):
                yield row_no, cells
    except UnicodeDecodeError:
        line = _locate_decode_error(path, encoding) or start
        raise BadInput(
            f"{path}: 第{line}行无法按 {encoding} 解码 (cannot decode row {line} as {encoding}); "
            "用 --encoding 指定编码 (pass --encoding)"
        ) from None
    except csv.Error as exc:
        raise BadInput(f"{path}: 第{start}行 CSV 格式错误 (malformed CSV at row {start}): {exc}") \
            from None


def _locate_decode_error(path: Path, encoding: str) -> int | None:
    """The 1-based line where decoding first fails (error path only: rescans the file)."""
    if "16" in encoding or "32" in encoding:
        return None
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return n
    return None


def _xlsx_rows(ws) -> Iterator[tuple[int, list]]:
    for row_no, cells in enumerate(ws.iter_rows(values_only=True), start=1):
        if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
            yield row_no, list(cells)


@contextmanager
def open_table(
    path: str | Path,
    fields: dict[str, tuple[str, ...]],
    *,
    kind: str,
    required: tuple[str, ...] = ("external_id",),
    encoding: str | None = None,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Table]:
    """Open an export and map its header; raise BadInput for anything that is not a table."""
    p = Path(path)
    mapping = mapping or {}
    if not p.is_file():
        raise BadInput(f"文件不存在 (file not found): {p}")
    size = p.stat().st_size
    if size == 0:
        raise BadInput(f"{p}: 空文件 (the file is empty, 0 bytes)")
    with p.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    is_zip = head.startswith(b"PK\x03\x04")
    if p.suffix.lower() in XLSX_SUFFIXES or is_zip:
        with _open_xlsx(p, sheet) as (ws, total):
            rows = _xlsx_rows(ws)
            header_row, headers, columns, unmapped = _find_header(
                rows, fields, mapping, required, p, kind
            )
            yield Table(p, None, header_row, headers, columns, unmapped,
                        _with_progress(rows, progress, total, None))
        return
    if p.suffix.lower() == ".xls" or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise BadInput(f"{p}: 不支持旧版 .xls，请另存为 .xlsx 或 CSV (save as .xlsx or CSV)")
    enc = _check_encoding(encoding) if encoding else detect_encoding(p, head)
    if encoding and b"\x00" in head and not enc.startswith("utf-16") and not enc.startswith(
        "utf_16"
    ):
        raise BadInput(f"{p}: 不是文本文件 (not a text file: contains NUL bytes)")
    with p.open("rb", buffering=0) as raw:
        counter = _CountingReader(raw)
        stream = io.TextIOWrapper(
            io.BufferedReader(counter, 1 << 16), encoding=enc, newline="", errors="strict"
        )
        first_line = head[:4096].decode(enc, errors="ignore").split("\n", 1)[0]
        delimiter = "\t" if p.suffix.lower() == ".tsv" or (
            "\t" in first_line and "," not in first_line
        ) else ","
        reader = csv.reader(stream, delimiter=delimiter)
        rows = _csv_rows(reader, p, enc)
        header_row, headers, columns, unmapped = _find_header(
            rows, fields, mapping, required, p, kind
        )
        yield Table(p, enc, header_row, headers, columns, unmapped,
                    _with_progress(rows, progress, size, counter))


def _with_progress(rows, progress, total, counter) -> Iterator[tuple[int, list]]:
    if progress is None:
        yield from rows
        return
    n = 0
    for item in rows:
        yield item
        n += 1
        if n % 5000 == 0:
            progress(counter.count if counter else n, total)
    progress(total, total)


@contextmanager
def _open_xlsx(p: Path, sheet: str | None):
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise BadInput(f"{p}: 不是有效的 xlsx 文件 (not a valid .xlsx workbook): {exc}") from None
    try:
        if sheet is not None:
            if sheet not in wb.sheetnames:
                raise BadInput(
                    f"{p}: 没有工作表 (no sheet) '{sheet}'; "
                    f"可用 (sheets): {', '.join(wb.sheetnames)}"
                )
            ws = wb[sheet]
        else:
            ws = wb.worksheets[0]
        total = ws.max_row or 0
        yield ws, total
    finally:
        wb.close()
