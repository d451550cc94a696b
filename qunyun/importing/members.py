"""`qunyun import members`: upsert an SCRM / WeCom customer export into members, tags, groups.

Streamed: rows are validated one by one and written in batches (~10k) with set-based SQL
(`INSERT … ON CONFLICT (external_id) DO UPDATE … WHERE something changed`), all in one
transaction, so a file that turns out unreadable halfway leaves the database as it was.

Semantics, per column the file *has* (columns it lacks are never touched):
- scalars (nickname, phone, gender, …) take the file's value, blank included (the export
  is the current state);
- 标签 replaces the member's tag set (blank = no tags);
- 所在群 adds memberships (groups created by name when missing; a membership that had
  left_at set is reopened); memberships not listed are left alone.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, null, or_, select

from qunyun.importing.common import (
    FastExec,
    ImportResult,
    RejectWriter,
    dialect_insert,
    run_import,
)
from qunyun.importing.parsing import (
    CellError,
    parse_amount,
    parse_datetime,
    parse_gender,
    split_list,
    text,
)
from qunyun.importing.reading import MEMBER_FIELDS, Progress
from qunyun.models import Group, Member, Membership, MemberTag, Tag
from qunyun.pii import normalize_phone

BATCH_SIZE = 10_000
_HASH_MASK = (1 << 64) - 1
_PLAIN_MOBILE = re.compile(r"1[3-9]\d{9}").fullmatch
SCALARS = (
    "nickname", "phone", "gender", "source_channel", "owner_userid", "joined_at",
    "last_active_at", "total_spend", "note",
)
_MAX_LEN = {"external_id": 64, "source_channel": 64, "owner_userid": 64}
members_t = Member.__table__
tags_t = Tag.__table__
member_tags_t = MemberTag.__table__
groups_t = Group.__table__
memberships_t = Membership.__table__


def group_external_id(name: str) -> str:
    """Deterministic external id for a group known only by its name in an export."""
    return "name:" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]


def import_members(
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
    """Import a member export; return its counts. Raises BadInput for an unusable file."""
    return run_import(
        engine, path, kind="members", table=members_t, fields=MEMBER_FIELDS, make_job=_MemberJob,
        imports_dir=imports_dir, encoding=encoding, mapping=mapping, sheet=sheet,
        progress=progress, now=now, batch_size=batch_size,
    )


class _MemberJob:
    def __init__(self, conn: Connection, columns: dict[str, list[int]], headers: list[str],
                 rejects: RejectWriter, now: datetime):
        self.conn = conn
        self.cols = {f: idx for f, idx in columns.items()}
        self.label = {f: "+".join(headers[i] for i in idx) for f, idx in columns.items()}
        self.rejects = rejects
        self.now = now
        self.scalars = [f for f in SCALARS if f in columns]
        self.has_tags = "tags" in columns
        self.has_groups = "groups" in columns
        self.batch: list[tuple[int, dict]] = []
        # external_id -> first row number << 64 | 64-bit fingerprint of the parsed row: finds
        # repeats and conflicts in one int per member (1M members ≈ 150 MB, not 300).
        self.seen: dict[str, int] = {}
        self.accepted = 0
        self.duplicates = 0
        self.tag_ids: dict[str, int] = {}
        self.group_ids: dict[str, int | None] = {}  # None: ambiguous name
        self.width = max(i for idx in columns.values() for i in idx) + 1
        self.id_col = columns["external_id"][0]
        self.parsers = self._build_parsers()
        self._upsert = FastExec(
            conn, self._build_upsert(), ["external_id", *self.scalars, "updated_at"]
        )
        self._member_tags = FastExec(conn, member_tags_t.insert(), ["member_id", "tag_id"])
        self._memberships = FastExec(
            conn, self._build_memberships(),
            ["member_id", "group_id", "role", "joined_at", "left_at"],
        )

    # -- one row -------------------------------------------------------------------------------

    def _build_parsers(self) -> list:
        """(field, column index or indexes, parser) for every field the file has."""
        now = self.now

        def date(raw):
            return parse_datetime(raw, now)

        def spend(raw):
            amount = parse_amount(raw)
            return 0.0 if amount is None else amount

        def phone(raw):
            if raw is None:
                return None
            if type(raw) is str and _PLAIN_MOBILE(raw):  # the common case, already clean
                return raw
            try:
                return normalize_phone(raw if type(raw) is str else text(raw))
            except ValueError:
                raise CellError("手机号无效 (invalid mobile number)") from None

        def nickname(raw):
            return text(raw)[:128]

        def limited(limit):
            def parse(raw):
                value = text(raw)
                if not value:
                    return None
                if limit and len(value) > limit:
                    raise CellError(f"超过{limit}字符 (longer than {limit})")
                return value

            return parse

        def listed(limit, what):
            def parse(raw):
                items = split_list(raw)
                for item in items:
                    if len(item) > limit:
                        raise CellError(f"{what}超过{limit}字符 (longer than {limit})")
                return tuple(items)

            return parse

        table = {
            "nickname": nickname, "phone": phone, "gender": parse_gender,
            "source_channel": limited(64), "owner_userid": limited(64),
            "joined_at": date, "last_active_at": date, "total_spend": spend,
            "note": limited(0),
            "tags": listed(64, "标签"), "groups": listed(128, "群名"),
        }
        out = []
        for f in (*self.scalars, "tags", "groups"):
            if f in self.cols:
                idx = self.cols[f]
                out.append((f, idx[0] if len(idx) == 1 else tuple(idx), table[f]))
        return out

    def take(self, row_no: int, cells: list) -> None:
        if len(cells) < self.width:
            cells = cells + [None] * (self.width - len(cells))
        errors = None
        raw_id = cells[self.id_col]
        ext = raw_id.strip() if type(raw_id) is str else text(raw_id)
        if not ext:
            errors = [("external_id", "缺少客户ID (missing customer id)", raw_id)]
        elif len(ext) > 64:
            errors = [("external_id", "客户ID超过64字符 (id longer than 64)", ext)]
        rec = {"external_id": ext}
        for f, i, parse in self.parsers:
            raw = cells[i] if type(i) is int else ";".join(
                t for t in (text(cells[j]) for j in i) if t
            )
            try:
                rec[f] = parse(raw)
            except CellError as exc:
                if errors is None:
                    errors = []
                errors.append((f, exc.reason, raw))
        if errors:
            self.rejects.reject(
                row_no, [(self.label.get(f, f), f, reason, raw) for f, reason, raw in errors]
            )
            return
        fingerprint = hash(tuple(rec.values()))
        first = self.seen.get(ext)
        if first is not None:
            if first & _HASH_MASK == fingerprint & _HASH_MASK:
                self.duplicates += 1
            else:
                self.rejects.reject_one(
                    row_no, self.label["external_id"], "external_id",
                    f"客户ID重复且内容不同 (conflicting duplicate of row {first >> 64})", ext,
                )
            return
        self.seen[ext] = (row_no << 64) | (fingerprint & _HASH_MASK)
        self.batch.append((row_no, rec))

    # -- one batch -----------------------------------------------------------------------------

    def _build_upsert(self):
        ins = dialect_insert(self.conn, members_t)
        excluded = ins.excluded
        changed = [members_t.c[f].is_distinct_from(excluded[f]) for f in self.scalars]
        if not changed:  # a file with only ids: nothing to update
            return ins.on_conflict_do_nothing(index_elements=["external_id"])
        set_ = {f: excluded[f] for f in self.scalars}
        set_["updated_at"] = excluded.updated_at
        return ins.on_conflict_do_update(
            index_elements=["external_id"], set_=set_, where=or_(*changed)
        )

    def write(self, batch: list[tuple[int, dict]]) -> None:
        if self.has_groups:
            batch = self._resolve_groups(batch)
            if not batch:
                return
        now = self.now
        params = []
        for _, rec in batch:
            d = {f: rec[f] for f in self.scalars}
            d["external_id"] = rec["external_id"]
            d["updated_at"] = now
            params.append(d)
        self._upsert(params)
        self.accepted += len(batch)
        if not (self.has_tags or self.has_groups):
            return
        ids = dict(
            self.conn.execute(
                select(members_t.c.external_id, members_t.c.id).where(
                    members_t.c.external_id.in_(bindparam("ids", expanding=True))
                ),
                {"ids": [rec["external_id"] for _, rec in batch]},
            ).all()
        )
        if self.has_tags:
            self._write_tags(batch, ids)
        if self.has_groups:
            self._write_memberships(batch, ids)

    def _write_tags(self, batch, ids: dict[str, int]) -> None:
        conn = self.conn
        missing = {t for _, rec in batch for t in rec["tags"] if t not in self.tag_ids}
        if missing:
            conn.execute(
                dialect_insert(conn, tags_t).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": t} for t in sorted(missing)],
            )
            self.tag_ids.update(
                conn.execute(
                    select(tags_t.c.name, tags_t.c.id).where(
                        tags_t.c.name.in_(bindparam("names", expanding=True))
                    ),
                    {"names": sorted(missing)},
                ).all()
            )
        member_ids = [ids[rec["external_id"]] for _, rec in batch]
        conn.execute(
            member_tags_t.delete().where(
                member_tags_t.c.member_id.in_(bindparam("mids", expanding=True))
            ),
            {"mids": member_ids},
        )
        pairs = [
            {"member_id": ids[rec["external_id"]], "tag_id": self.tag_ids[t]}
            for _, rec in batch
            for t in rec["tags"]
        ]
        if pairs:
            self._member_tags(pairs)

    def _resolve_groups(self, batch):
        """Map group names to ids, creating missing groups; reject rows naming a group
        that two existing groups share (we would not know which one is meant)."""
        conn = self.conn
        names = {g for _, rec in batch for g in rec["groups"] if g not in self.group_ids}
        if names:
            found: dict[str, list[int]] = {}
            for name, gid in conn.execute(
                select(groups_t.c.name, groups_t.c.id).where(
                    groups_t.c.name.in_(bindparam("names", expanding=True))
                ),
                {"names": sorted(names)},
            ):
                found.setdefault(name, []).append(gid)
            new = sorted(names - found.keys())
            if new:
                conn.execute(
                    dialect_insert(conn, groups_t).on_conflict_do_nothing(
                        index_elements=["external_id"]
                    ),
                    [
                        {"external_id": group_external_id(n), "name": n, "kind": "interest",
                         "created_at": self.now}
                        for n in new
                    ],
                )
                by_ext = {group_external_id(n): n for n in new}
                for ext, gid in conn.execute(
                    select(groups_t.c.external_id, groups_t.c.id).where(
                        groups_t.c.external_id.in_(bindparam("exts", expanding=True))
                    ),
                    {"exts": list(by_ext)},
                ):
                    found.setdefault(by_ext[ext], []).append(gid)
            for name in names:
                gids = found.get(name, [])
                self.group_ids[name] = gids[0] if len(gids) == 1 else None
        kept = []
        for row_no, rec in batch:
            bad = [g for g in rec["groups"] if self.group_ids.get(g) is None]
            if bad:
                self.rejects.reject_one(
                    row_no, self.label["groups"], "groups",
                    f"群名对应多个群 (group name matches several groups): {bad[0]}",
                    ";".join(rec["groups"]),
                )
            else:
                kept.append((row_no, rec))
        return kept

    def _build_memberships(self):
        return dialect_insert(self.conn, memberships_t).on_conflict_do_update(
            index_elements=["member_id", "group_id"],
            set_={"left_at": null()},
            where=memberships_t.c.left_at.is_not(None),
        )

    def _write_memberships(self, batch, ids: dict[str, int]) -> None:
        rows = [
            {"member_id": ids[rec["external_id"]], "group_id": self.group_ids[g],
             "role": "member", "joined_at": rec.get("joined_at"), "left_at": None}
            for _, rec in batch
            for g in rec["groups"]
        ]
        if rows:
            self._memberships(rows)
