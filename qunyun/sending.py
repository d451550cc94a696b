"""Draining planned ledger rows through a channel, exactly once.

Every row is claimed (planned → sending) in its own committed UPDATE before its request goes
out, and settled after the answer. A row whose answer never came stays `sending` and becomes
`unknown` on the next run: it is never resent without the operator's say.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from qunyun import ledger
from qunyun.channels import Outcome, SendResult
from qunyun.channels.wecom import WeComCustomer, WeComRobot
from qunyun.ledger import Run
from qunyun.models import Delivery
from qunyun.pacing import SlidingWindowPacer
from qunyun.secrets import SecretResolver

MAX_ATTEMPTS = 4  # the first try and three retries, for rate-limit and busy answers
MASS_MESSAGE_MAX_RECIPIENTS = 10_000


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0
    deferred: int = 0  # never reached the provider (no connection); still planned for a re-run
    requests: int = 0
    codes: dict = field(default_factory=lambda: defaultdict(int))

    def merge(self, other: SendStats) -> SendStats:
        self.sent += other.sent
        self.failed += other.failed
        self.unknown += other.unknown
        self.retried += other.retried
        self.deferred += other.deferred
        self.requests += other.requests
        for code, n in other.codes.items():
            self.codes[code] += n
        return self


def _planned(run: Run, channel: str):
    return (*run.rows(), Delivery.channel == channel, Delivery.status == "planned")


def robot_batches(engine: Engine, run: Run, batch_size: int) -> list[tuple[int, int]]:
    """Inclusive id ranges of planned group posts, each holding at most batch_size rows."""
    ranges = []
    with engine.connect() as conn:
        ids = conn.execute(
            select(Delivery.id).where(*_planned(run, "wecom_robot")).order_by(Delivery.id)
        ).scalars()
        lo = prev = None
        count = 0
        for row_id in ids:
            if lo is None:
                lo = row_id
            count += 1
            prev = row_id
            if count == batch_size:
                ranges.append((lo, prev))
                lo, count = None, 0
        if lo is not None:
            ranges.append((lo, prev))
    return ranges


def customer_batches(engine: Engine, run: Run, batch_size: int) -> list[list[str]]:
    """Planned mass messages as lists of sender staff, about batch_size recipients each.

    A batch holds whole senders, so one staff member's identical messages always go out in
    one request (each request is one confirmation in the staff member's WeCom client).
    """
    with engine.connect() as conn:
        per_sender = conn.execute(
            select(Delivery.sender, func.count())
            .where(*_planned(run, "wecom_customer"))
            .group_by(Delivery.sender)
            .order_by(Delivery.sender)
        ).all()
    batches, current, size = [], [], 0
    for sender, n in per_sender:
        current.append(sender)
        size += n
        if size >= batch_size:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def required_secrets(engine: Engine, run: Run) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Delivery.sender).distinct().where(*_planned(run, "wecom_robot"))
            ).scalars()
        )


def recent_robot_sends(engine: Engine, window_seconds: float) -> dict[str, list[float]]:
    """Ages of robot posts made in the last window, to seed the pacer across runs."""
    now = ledger.now()
    cutoff = now.timestamp() - window_seconds
    ages: dict[str, list[float]] = defaultdict(list)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.sender, Delivery.updated_at).where(
                Delivery.channel == "wecom_robot",
                Delivery.status.in_(("sent", "sending", "unknown")),
                Delivery.updated_at >= datetime.fromtimestamp(cutoff),
            )
        )
        for sender, at in rows:
            ages[sender].append(now.timestamp() - at.timestamp())
    return ages


class RobotSender:
    """Sends group posts with bounded concurrency, paced per robot.

    One thread schedules and writes the ledger; worker threads only make HTTP requests. Rows
    are claimed in one UPDATE just before their requests go out and settled together as their
    answers come back, so the database sees two small transactions per round, not per post,
    while no more than `concurrency` claimed rows are ever in flight.
    """

    def __init__(self, engine: Engine, robot: WeComRobot, secrets: SecretResolver,
                 pacer: SlidingWindowPacer, concurrency: int = 16, retry_backoff: float = 2.0):
        self.engine = engine
        self.robot = robot
        self.secrets = secrets
        self.pacer = pacer
        self.concurrency = concurrency
        self.retry_backoff = retry_backoff

    def _claim(self, ids: list[int]) -> set[int]:
        with self.engine.begin() as conn:
            return set(ledger.claim_many(conn, ids))

    def _settle(self, results: list[tuple[tuple, SendResult]]) -> None:
        """Write a round of answers; RETRY rows go back to planned for a later attempt."""
        outcomes: dict[tuple, list[int]] = defaultdict(list)
        for row, result in results:
            if result.outcome is Outcome.SENT:
                outcomes[("sent", None, 0)].append(row[0])
            elif result.outcome is Outcome.UNKNOWN:
                outcomes[("unknown", result.detail[:32], None)].append(row[0])
            elif result.outcome is Outcome.FAILED:
                outcomes[("failed", "provider_error", result.code)].append(row[0])
            else:
                outcomes[("planned", None, result.code)].append(row[0])
        with self.engine.begin() as conn:
            for (status, reason, code), ids in outcomes.items():
                ledger.settle(conn, ids, status, reason=reason, provider_code=code)

    def _give_up(self, row_id: int, result: SendResult) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(Delivery)
                .where(Delivery.id == row_id, Delivery.status == "planned")
                .values(status="failed", reason="provider_error", provider_code=result.code,
                        updated_at=ledger.now())
            )

    def send_range(self, run: Run, id_lo: int, id_hi: int) -> SendStats:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Delivery.id, Delivery.sender, Delivery.payload)
                .where(*_planned(run, "wecom_robot"), Delivery.id.between(id_lo, id_hi))
                .order_by(Delivery.id)
            ).all()
        stats = SendStats()
        attempts: dict[int, int] = defaultdict(int)
        waiting: list[tuple[float, int, tuple]] = []  # (ready_at, id, row)
        ready = list(reversed(rows))
        running: dict[Future, tuple] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="robot-send") as pool:
            while ready or waiting or running:
                now = time.monotonic()
                while waiting and waiting[0][0] <= now:
                    ready.append(heapq.heappop(waiting)[2])
                picked = []
                while ready and len(running) + len(picked) < self.concurrency:
                    row = ready.pop()
                    delay = self.pacer.reserve(row[1])
                    if delay > 0:
                        heapq.heappush(waiting, (now + delay, row[0], row))
                    else:
                        picked.append(row)
                if picked:
                    owned = self._claim([row[0] for row in picked])
                    for row in picked:
                        if row[0] in owned:  # another worker may own the rest
                            key = self.secrets.get(row[1])
                            running[pool.submit(self.robot.send, key, row[2])] = row
                timeout = max(0.0, waiting[0][0] - time.monotonic()) if waiting else None
                if not running:
                    if timeout:
                        time.sleep(timeout)
                    continue
                done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                answered = [(running.pop(future), future.result()) for future in done]
                self._settle(answered)
                for row, result in answered:
                    stats.requests += 1
                    stats.codes[result.code if result.code is not None else result.detail] += 1
                    if result.outcome is Outcome.SENT:
                        stats.sent += 1
                    elif result.outcome is Outcome.FAILED:
                        stats.failed += 1
                    elif result.outcome is Outcome.UNKNOWN:
                        stats.unknown += 1
                    else:
                        attempts[row[0]] += 1
                        if attempts[row[0]] >= MAX_ATTEMPTS and result.code is None:
                            stats.deferred += 1  # the provider was unreachable: stays planned
                        elif attempts[row[0]] >= MAX_ATTEMPTS:
                            self._give_up(row[0], result)
                            stats.failed += 1
                        else:
                            stats.retried += 1
                            backoff = self.retry_backoff * 2 ** (attempts[row[0]] - 1)
                            heapq.heappush(waiting, (time.monotonic() + backoff, row[0], row))
        return stats


class CustomerSender:
    """Sends member-level messages through the mass-message API, one request per text.

    Identical texts from one staff member go out as one request (one confirmation in that
    staff member's WeCom client); distinct requests run `concurrency` at a time.
    """

    def __init__(self, engine: Engine, client: WeComCustomer, retry_backoff: float = 2.0,
                 concurrency: int = 4):
        self.engine = engine
        self.client = client
        self.retry_backoff = retry_backoff
        self.concurrency = concurrency

    def _send_call(self, sender: str, payload: str, members: list[tuple[int, str]]) -> SendStats:
        stats = SendStats()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self.engine.begin() as conn:
                owned = set(ledger.claim_many(conn, [row_id for row_id, _ in members]))
            members = [(row_id, ext) for row_id, ext in members if row_id in owned]
            if not members:
                return stats
            result = self.client.send(sender, [ext for _, ext in members], payload)
            stats.requests += 1
            stats.codes[result.code if result.code is not None else result.detail] += 1
            ids = [row_id for row_id, _ in members]
            with self.engine.begin() as conn:
                if result.outcome is Outcome.SENT:
                    refused = set(result.fail_list)
                    bad = [row_id for row_id, ext in members if ext in refused]
                    good = [row_id for row_id, ext in members if ext not in refused]
                    ledger.settle(conn, good, "sent", provider_code=0,
                                  provider_msgid=result.msgid)
                    ledger.settle(conn, bad, "failed", reason="provider_fail_list",
                                  provider_code=0, provider_msgid=result.msgid)
                    stats.sent += len(good)
                    stats.failed += len(bad)
                    return stats
                if result.outcome is Outcome.UNKNOWN:
                    ledger.settle(conn, ids, "unknown", reason=result.detail[:32])
                    stats.unknown += len(ids)
                    return stats
                unreachable = result.code is None
                if result.outcome is Outcome.FAILED or (attempt == MAX_ATTEMPTS and not unreachable):
                    ledger.settle(conn, ids, "failed", reason="provider_error",
                                  provider_code=result.code)
                    stats.failed += len(ids)
                    return stats
                ledger.settle(conn, ids, "planned", provider_code=result.code)
                if attempt == MAX_ATTEMPTS:
                    stats.deferred += len(ids)  # the provider was unreachable: stays planned
                    return stats
            stats.retried += len(ids)
            time.sleep(self.retry_backoff * 2 ** (attempt - 1))
        return stats

    def send_senders(self, run: Run, senders: list[str]) -> SendStats:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Delivery.sender, Delivery.payload_hash, Delivery.payload, Delivery.id,
                       Delivery.recipient_id)
                .where(*_planned(run, "wecom_customer"), Delivery.sender.in_(senders))
                .order_by(Delivery.sender, Delivery.payload_hash, Delivery.id)
            )
            calls: dict[tuple[str, str], tuple[str, list]] = {}
            for sender, digest, payload, row_id, ext in rows:
                calls.setdefault((sender, digest), (payload, []))[1].append((row_id, ext))
        requests = [
            (sender, payload, members[start:start + MASS_MESSAGE_MAX_RECIPIENTS])
            for (sender, _), (payload, members) in calls.items()
            for start in range(0, len(members), MASS_MESSAGE_MAX_RECIPIENTS)
        ]
        stats = SendStats()
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="mass-send") as pool:
            for call_stats in pool.map(lambda call: self._send_call(*call), requests):
                stats.merge(call_stats)
        return stats


def resolve_all(secrets: SecretResolver, names: list[str]) -> None:
    """Resolve every secret a send needs before the first request: a missing one sends nothing."""
    for name in names:
        secrets.get(name)


def batch_size_for(total: int, floor: int, max_batches: int = 200) -> int:
    """Rows per task run: at least `floor`, and never more than `max_batches` task runs."""
    return max(floor, -(-total // max_batches))
