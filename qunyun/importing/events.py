"""`qunyun import events`: behaviour events (进群, 发言, 打卡, 购买 …) from an export.

Events must name a member already in the database (import members first) and, when they name
a group, a group already known by name or 群ID. Re-importing the same file adds nothing: an
event is skipped when one with the same (member, kind, occurred_at, group) exists, checked
per row with `INSERT … SELECT … WHERE NOT EXISTS` (index ix_events_member_occurred).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    bindparam,
    cast,
    exists,
    insert,
    select,
)

from qunyun.importing.common import (
    FastExec,
    ImportResult,
    RejectWriter,
    run_import,
)
from qunyun.importing.parsing import (
    CellError,
    parse_amount,
    parse_datetime,
    parse_event_kind,
    text,
)
from qunyun.importing.reading import EVENT_FIELDS, Progress
from qunyun.models import Event, Group, Member

BATCH_SIZE = 10_000
events_t = Event.__table__
members_t = Member.__table__
groups_t = Group.__table__


def import_events(
    engine: Engine,
    path: str | Path,
    *,
    imports_dir: Path,
    encoding: str | None = None,
    mapping: str | Path | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import an event export; return its counts. Raises BadInput for an unusable file."""
    return run_import(
        engine, path, kind="events", table=events_t, fields=EVENT_FIELDS, make_job=_EventJob,
        required=("external_id", "kind", "occurred_at"),
        imports_dir=imports_dir, encoding=encoding, mapping=mapping, sheet=sheet,
        progress=progress, now=now, batch_size=batch_size,
    )


def _insert_if_new(dialect_name: str):
    """INSERT INTO events SELECT :params WHERE NOT EXISTS (same member, kind, time, group).

    PostgreSQL needs typed parameters in a SELECT list; SQLite must not get them (CAST(x AS
    DATETIME) there is a numeric cast that would turn '2026-01-01 …' into 2026)."""
    if dialect_name == "postgresql":
        def p(name, type_):
            return cast(bindparam(name, type_=type_), type_)
    else:
        def p(name, type_):
            return bindparam(name, type_=type_)
    m = p("member_id", Integer())
    g = p("group_id", Integer())
    k = p("kind", String(16))
    t = p("occurred_at", DateTime())
    same = (
        select(events_t.c.id)
        .where(events_t.c.member_id == m)
        .where(events_t.c.occurred_at == t)
        .where(events_t.c.kind == k)
        .where(events_t.c.group_id.is_not_distinct_from(g))
    )
    src = select(
        m, g, k, t, p("campaign", String(64)), p("amount", Float())
    ).where(~exists(same))
    return insert(events_t).from_select(
        ["member_id", "group_id", "kind", "occurred_at", "campaign", "amount"], src
    )


class _EventJob:
    def __init__(self, conn: Connection, columns: dict[str, list[int]], headers: list[str],
                 rejects: RejectWriter, now: datetime):
        self.conn = conn
        self.cols = {f: idx[0] for f, idx in columns.items()}
        self.label = {f: headers[idx[0]] for f, idx in columns.items()}
        self.rejects = rejects
        self.now = now
        self.batch: list[tuple[int, dict]] = []
        # hash of the dedupe key -> (first row number, hash of the whole record)
        self.seen: dict[int, tuple[int, int]] = {}
        self.accepted = 0
        self.duplicates = 0
        self.group_by_name: dict[str, int | None] = {}  # None: unknown or ambiguous
        self.group_by_ext: dict[str, int | None] = {}
        self._stmt = FastExec(conn, _insert_if_new(conn.dialect.name))

    def _cell(self, cells: list, f: str):
        i = self.cols.get(f)
        if i is None or i >= len(cells):
            return None
        return cells[i]

    def take(self, row_no: int, cells: list) -> None:
        errors: list[tuple[str, str, object]] = []
        raw_id = self._cell(cells, "external_id")
        ext = text(raw_id)
        if not ext:
            errors.append(("external_id", "缺少客户ID (missing customer id)", raw_id))
        rec: dict = {"external_id": ext}
        for f, parse in (
            ("kind", parse_event_kind),
            ("occurred_at", lambda v: parse_datetime(v, self.now)),
            ("amount", parse_amount),
        ):
            raw = self._cell(cells, f)
            try:
                rec[f] = parse(raw)
            except CellError as exc:
                errors.append((f, exc.reason, raw))
        if not errors and rec["occurred_at"] is None:
            errors.append(("occurred_at", "缺少发生时间 (missing time)", None))
        rec["group"] = text(self._cell(cells, "group")) or None
        rec["group_external_id"] = text(self._cell(cells, "group_external_id")) or None
        campaign = text(self._cell(cells, "campaign")) or None
        if campaign and len(campaign) > 64:
            errors.append(("campaign", "活动超过64字符 (campaign longer than 64)", campaign))
        rec["campaign"] = campaign
        if errors:
            self.rejects.reject(
                row_no, [(self.label.get(f, f), f, reason, raw) for f, reason, raw in errors]
            )
            return
        key = hash((ext, rec["kind"], rec["occurred_at"], rec["group"], rec["group_external_id"]))
        whole = hash((rec["campaign"], rec["amount"]))
        first = self.seen.get(key)
        if first is not None:
            if first[1] == whole:
                self.duplicates += 1
            else:
                self.rejects.reject_one(
                    row_no, self.label["external_id"], "external_id",
                    "同一客户同一时间同类事件重复且内容不同 "
                    f"(conflicting duplicate of row {first[0]})",
                    ext,
                )
            return
        self.seen[key] = (row_no, whole)
        self.batch.append((row_no, rec))

    def _reject(self, row_no: int, f: str, reason: str, value: object) -> None:
        self.rejects.reject_one(row_no, self.label.get(f, f), f, reason, value)

    def _load_groups(self, batch) -> None:
        conn = self.conn
        names = {
            r["group"] for _, r in batch if r["group"] and r["group"] not in self.group_by_name
        }
        if names:
            found: dict[str, list[int]] = {}
            for name, gid in conn.execute(
                select(groups_t.c.name, groups_t.c.id).where(
                    groups_t.c.name.in_(bindparam("names", expanding=True))
                ),
                {"names": sorted(names)},
            ):
                found.setdefault(name, []).append(gid)
            for n in names:
                gids = found.get(n, [])
                self.group_by_name[n] = gids[0] if len(gids) == 1 else (None if not gids else -1)
        exts = {
            r["group_external_id"] for _, r in batch
            if r["group_external_id"] and r["group_external_id"] not in self.group_by_ext
        }
        if exts:
            found_ext = dict(conn.execute(
                select(groups_t.c.external_id, groups_t.c.id).where(
                    groups_t.c.external_id.in_(bindparam("exts", expanding=True))
                ),
                {"exts": sorted(exts)},
            ).all())
            for e in exts:
                self.group_by_ext[e] = found_ext.get(e)

    def write(self, batch: list[tuple[int, dict]]) -> None:
        conn = self.conn
        member_ids = dict(
            conn.execute(
                select(members_t.c.external_id, members_t.c.id).where(
                    members_t.c.external_id.in_(bindparam("ids", expanding=True))
                ),
                {"ids": sorted({r["external_id"] for _, r in batch})},
            ).all()
        )
        self._load_groups(batch)
        params = []
        for row_no, r in batch:
            mid = member_ids.get(r["external_id"])
            if mid is None:
                self._reject(row_no, "external_id",
                             "客户不存在，请先导入客户 (unknown member; import members first)",
                             r["external_id"])
                continue
            gid = None
            if r["group_external_id"]:
                gid = self.group_by_ext.get(r["group_external_id"])
                if gid is None:
                    self._reject(row_no, "group_external_id", "群ID不存在 (unknown group id)",
                                 r["group_external_id"])
                    continue
            elif r["group"]:
                gid = self.group_by_name.get(r["group"])
                if gid is None or gid == -1:
                    reason = ("群名对应多个群 (group name matches several groups)" if gid == -1
                              else "群不存在 (unknown group)")
                    self._reject(row_no, "group", reason, r["group"])
                    continue
            params.append({
                "member_id": mid, "group_id": gid, "kind": r["kind"],
                "occurred_at": r["occurred_at"], "campaign": r["campaign"],
                "amount": r["amount"],
            })
        if params:
            self._stmt(params)
        self.accepted += len(params)
