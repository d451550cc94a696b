"""The delivery ledger (发送记录): deterministic keys, bulk plan writes, atomic status changes.

A row moves planned → sending → sent | failed | unknown, or is written as suppressed. Each
change is one conditional UPDATE, so two workers can never both claim a row, and a row that was
in flight when a process died is found as `sending` and turned into `unknown`, never resent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select, update

from qunyun.models import Delivery

PLAN_COLUMNS = (
    "idempotency_key", "job", "logical_date", "step", "recipient_kind", "recipient_id",
    "channel", "sender", "content_item", "msgtype", "payload", "payload_hash", "status",
    "reason", "attempts", "planned_at",
)
LIVE_STATUSES = ("planned", "sending", "sent", "unknown")


@dataclass(frozen=True)
class Run:
    """The ledger rows one flow run works on: a job's logical date, optionally some steps.

    Two runs of one date for different slots (say 10:00 and 10:30) never touch each other's
    rows: neither resumes, sends nor marks unknown what the other is still sending.
    """

    job: str
    logical_date: date
    steps: tuple[str, ...] | None = None  # None: every step of the date

    def rows(self) -> list:
        conds = [Delivery.job == self.job, Delivery.logical_date == self.logical_date]
        if self.steps is not None:
            conds.append(Delivery.step.in_(self.steps))
        return conds


def idempotency_key(job: str, logical_date: date, step: str, recipient_kind: str,
                    recipient_id: str) -> str:
    raw = f"{job}|{logical_date.isoformat()}|{step}|{recipient_kind}:{recipient_id}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def payload_hash(payload: str) -> str:
    return hashlib.sha1(payload.encode()).hexdigest()


def now() -> datetime:
    return datetime.now().replace(tzinfo=None)


def sql_datetime(conn: Connection, value: datetime):
    """Datetimes as SQLAlchemy stores them: ISO text on SQLite, native elsewhere."""
    return f"{value:%Y-%m-%d %H:%M:%S.%f}" if conn.dialect.name == "sqlite" else value


def sql_date(conn: Connection, value: date):
    return value.isoformat() if conn.dialect.name == "sqlite" else value


def insert_plan_rows(conn: Connection, rows: Sequence[tuple]) -> int:
    """Insert plan rows (tuples in PLAN_COLUMNS order); existing keys are left untouched.

    This is the planning hot path, straight to the driver so a million rows cost what the
    database costs: one executemany on SQLite; on PostgreSQL a COPY into a session-local
    staging table and one set-based INSERT ... SELECT (per-row statements, even pipelined,
    cost several times more there).
    """
    if not rows:
        return 0
    columns = ", ".join(PLAN_COLUMNS)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS plan_staging ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM deliveries WITH NO DATA"
            )
            with cursor.copy(f"COPY plan_staging ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO deliveries ({columns}) SELECT {columns} FROM plan_staging "
                "ON CONFLICT (idempotency_key) DO NOTHING"
            )
            inserted = cursor.rowcount
            cursor.execute("TRUNCATE plan_staging")
            return inserted
        marks = ", ".join(["?"] * len(PLAN_COLUMNS))
        cursor.executemany(
            f"INSERT INTO deliveries ({columns}) VALUES ({marks}) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            rows,
        )
        return cursor.rowcount  # the rows actually inserted
    finally:
        cursor.close()


def claim_many(conn: Connection, ids: Sequence[int]) -> list[int]:
    """Move planned rows to sending (attempt + 1); returns the ids this caller now owns.

    One conditional UPDATE: a row another worker already claimed is simply not returned.
    """
    owned: list[int] = []
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        owned += conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start:start + 900]), Delivery.status == "planned")
            .values(status="sending", attempts=Delivery.attempts + 1, updated_at=now())
            .returning(Delivery.id)
        ).scalars()
    return owned


def settle(conn: Connection, ids: Sequence[int], status: str, *, reason: str | None = None,
           provider_code: int | None = None, provider_msgid: str | None = None) -> None:
    """Record the outcome of rows this caller holds in `sending`."""
    for start in range(0, len(ids), 900):
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[start:start + 900]), Delivery.status == "sending")
            .values(status=status, reason=reason, provider_code=provider_code,
                    provider_msgid=provider_msgid, updated_at=now())
        )


def mark_interrupted(engine: Engine, run: Run) -> int:
    """Rows left `sending` by a process that died: their outcome cannot be known."""
    with engine.begin() as conn:
        res = conn.execute(
            update(Delivery)
            .where(*run.rows(), Delivery.status == "sending")
            .values(status="unknown", reason="interrupted", updated_at=now())
        )
        return res.rowcount


def resolve_unknown(engine: Engine, run: Run, action: str) -> int:
    """The operator's decision on `unknown` rows: resend them, or confirm them as sent."""
    target = {"resend": ("planned", None), "sent": ("sent", "confirmed_by_operator")}
    if action not in target:
        raise ValueError(action)
    status, reason = target[action]
    with engine.begin() as conn:
        res = conn.execute(
            update(Delivery)
            .where(*run.rows(), Delivery.status == "unknown")
            .values(status=status, reason=reason, updated_at=now())
        )
        return res.rowcount


def status_counts(engine_or_conn, run: Run) -> dict[str, int]:
    """planned / sending / sent / failed / unknown / suppressed counts for one run."""
    query = select(Delivery.status, func.count()).where(*run.rows()).group_by(Delivery.status)
    counts = dict.fromkeys(("planned", "sending", "sent", "failed", "unknown", "suppressed"), 0)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            counts.update(dict(conn.execute(query).all()))
    else:
        counts.update(dict(engine_or_conn.execute(query).all()))
    return counts


def reason_counts(engine_or_conn, run: Run) -> dict[str, int]:
    """Suppressed and failed rows by reason."""
    query = (
        select(Delivery.reason, func.count())
        .where(*run.rows(), Delivery.reason.is_not(None))
        .group_by(Delivery.reason)
    )
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return dict(conn.execute(query).all())
    return dict(engine_or_conn.execute(query).all())
