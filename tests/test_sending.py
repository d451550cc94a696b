"""Sending over real HTTP to the WeCom-compatible simulator: exactly once, paced, classified."""

import json
import time
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from qunyun import db, ledger, sending
from qunyun.channels.wecom import WeComCustomer, WeComRobot
from qunyun.errors import BadInput
from qunyun.models import Delivery
from qunyun.pacing import SlidingWindowPacer
from qunyun.secrets import SecretResolver, add_workspace_secrets
from qunyun.simulator import WeComSimulator, key_fingerprint

DAY = date(2026, 11, 25)
JOB = "test-job"
RUN = ledger.Run(JOB, DAY)


def robot_body(text: str) -> str:
    return json.dumps({"msgtype": "text", "text": {"content": text}}, ensure_ascii=False)


def plan_rows(engine, specs):
    """specs: (step, kind, recipient, channel, sender, payload) tuples, all planned."""
    with engine.begin() as conn:
        rows = [
            (ledger.idempotency_key(JOB, DAY, step, kind, rid), JOB, ledger.sql_date(conn, DAY),
             step, kind, rid, channel, sender, None, "text", payload,
             ledger.payload_hash(payload), "planned", None, 0,
             ledger.sql_datetime(conn, ledger.now()))
            for step, kind, rid, channel, sender, payload in specs
        ]
        ledger.insert_plan_rows(conn, rows)


def statuses(engine):
    with engine.connect() as conn:
        return conn.execute(select(Delivery.recipient_id, Delivery.step, Delivery.status,
                                   Delivery.reason, Delivery.provider_code)
                            .order_by(Delivery.id)).all()


@pytest.fixture
def engine(workspace):
    return db.engine_for(workspace.database_url)


@pytest.fixture
def secrets(workspace):
    add_workspace_secrets(workspace.secrets_path,
                          {f"robot-{i}": f"robot-key-{i:04d}" for i in range(50)})
    return SecretResolver(workspace.secrets_path)


def send_all(engine, sim_url, secrets, pacer=None, backoff=0.01, timeout=2.0):
    robot = WeComRobot(sim_url, timeout=timeout)
    sender = sending.RobotSender(engine, robot, secrets, pacer or SlidingWindowPacer(),
                                 concurrency=8, retry_backoff=backoff)
    stats = sending.SendStats()
    for lo, hi in sending.robot_batches(engine, RUN, 1000):
        stats.merge(sender.send_range(RUN, lo, hi))
    robot.close()
    return stats


def rate_limited_answers(stats):
    return stats.codes.get(45009, 0)


def test_every_group_post_arrives_once_and_a_second_pass_sends_nothing(engine, simulator, secrets):
    plan_rows(engine, [("s", "group", f"g{i}", "wecom_robot", f"robot-{i}", robot_body(f"早安{i}"))
                       for i in range(30)])
    stats = send_all(engine, simulator.url, secrets)
    assert stats.sent == 30
    assert {s.status for s in statuses(engine)} == {"sent"}
    again = send_all(engine, simulator.url, secrets)
    assert again.requests == 0
    inbox = simulator.inbox()
    assert sorted(m["content"] for m in inbox) == sorted(f"早安{i}" for i in range(30))
    assert {m["key_fingerprint"] for m in inbox} == {key_fingerprint(f"robot-key-{i:04d}")
                                                    for i in range(30)}


def test_pacing_keeps_each_robot_under_twenty_a_minute(engine, workspace, secrets):
    # The simulator's clock runs 30x fast, so its 60 s window lasts 2 real seconds.
    start = time.time()
    scaled = lambda: start + (time.time() - start) * 30  # noqa: E731
    with WeComSimulator(workspace.inbox_path, clock=scaled) as sim:
        plan_rows(engine, [(f"s{i}", "group", "g0", "wecom_robot", "robot-0", robot_body(f"第{i}条"))
                           for i in range(25)])
        stats = send_all(engine, sim.url, secrets, pacer=SlidingWindowPacer(20, 62 / 30))
        assert stats.sent == 25
        assert rate_limited_answers(stats) == 0
        assert len(sim.inbox()) == 25


def test_without_pacing_the_simulator_refuses_the_twenty_first(engine, simulator, secrets):
    plan_rows(engine, [(f"s{i}", "group", "g0", "wecom_robot", "robot-0", robot_body(f"第{i}条"))
                       for i in range(21)])
    stats = send_all(engine, simulator.url, secrets, pacer=SlidingWindowPacer(100, 62), backoff=0.01)
    assert rate_limited_answers(stats) >= 1
    # Refused messages were retried, never duplicated: 20 arrived, the rest failed after retries.
    assert len(simulator.inbox()) == 20
    assert Counter(s.status for s in statuses(engine)) == {"sent": 20, "failed": 1}


def test_busy_answers_are_retried_and_each_message_arrives_once(engine, simulator, secrets):
    simulator.set_faults({"busy_rate": 0.4, "seed": 3})
    plan_rows(engine, [("s", "group", f"g{i}", "wecom_robot", f"robot-{i}", robot_body(f"m{i}"))
                       for i in range(40)])
    stats = send_all(engine, simulator.url, secrets)
    assert stats.retried > 0
    inbox = Counter(m["content"] for m in simulator.inbox())
    sent = [s.recipient_id for s in statuses(engine) if s.status == "sent"]
    assert all(n == 1 for n in inbox.values())
    assert len(inbox) == len(sent)
    assert stats.sent + stats.failed == 40


def test_a_timeout_after_sending_is_unknown_and_never_resent(engine, simulator, secrets):
    simulator.set_faults({"slow_rate": 1.0, "slow_seconds": 1.5})
    plan_rows(engine, [("s", "group", "g0", "wecom_robot", "robot-0", robot_body("慢消息"))])
    stats = send_all(engine, simulator.url, secrets, timeout=0.5)
    assert stats.unknown == 1
    simulator.set_faults({"slow_rate": 0.0})
    assert send_all(engine, simulator.url, secrets).requests == 0
    assert [m["content"] for m in simulator.inbox()] == ["慢消息"]
    assert ledger.resolve_unknown(engine, RUN, "sent") == 1
    assert statuses(engine)[0].status == "sent"


def test_a_dropped_connection_is_unknown(engine, simulator, secrets):
    simulator.set_faults({"drop_rate": 1.0})
    plan_rows(engine, [("s", "group", "g0", "wecom_robot", "robot-0", robot_body("丢包"))])
    assert send_all(engine, simulator.url, secrets).unknown == 1
    assert statuses(engine)[0].status == "unknown"


def test_an_invalid_key_fails_for_good_with_the_provider_code(engine, simulator, secrets):
    simulator.set_faults({"invalid_keys": ["robot-key-0000"]})
    plan_rows(engine, [("s", "group", "g0", "wecom_robot", "robot-0", robot_body("x"))])
    stats = send_all(engine, simulator.url, secrets)
    assert stats.failed == 1 and stats.requests == 1
    assert statuses(engine)[0][2:] == ("failed", "provider_error", 93000)


def test_a_missing_secret_stops_before_any_request(engine, simulator, secrets):
    plan_rows(engine, [("s", "group", "g0", "wecom_robot", "robot-0", robot_body("x")),
                       ("s", "group", "g1", "wecom_robot", "no-such-robot", robot_body("y"))])
    with pytest.raises(BadInput, match="no-such-robot"):
        sending.resolve_all(secrets, sending.required_secrets(engine, RUN))
    assert simulator.inbox() == []


def test_mass_messages_group_identical_texts_per_sender_and_record_refusals(engine, simulator):
    customer = WeComCustomer(simulator.url, "corp", "secret")
    # wm3 already received a mass message today: the provider refuses a second one.
    assert customer.send("staff-1", ["wm3"], "早些时候的群发").code == 0
    plan_rows(engine, [
        ("s", "member", "wm1", "wecom_customer", "staff-1", "同一段话"),
        ("s", "member", "wm2", "wecom_customer", "staff-1", "同一段话"),
        ("s", "member", "wm3", "wecom_customer", "staff-1", "同一段话"),
        ("s", "member", "wm4", "wecom_customer", "staff-2", "另一段话"),
    ])
    batches = sending.customer_batches(engine, RUN, 1000)
    stats = sending.CustomerSender(engine, customer, retry_backoff=0.01).send_senders(
        RUN, batches[0])
    assert stats.requests == 2 and stats.sent == 3 and stats.failed == 1
    calls = [m for m in simulator.inbox() if m["content"] != "早些时候的群发"]
    assert sorted((m["sender"], tuple(m["external_userid"])) for m in calls) == [
        ("staff-1", ("wm1", "wm2")), ("staff-2", ("wm4",))]
    assert {s.recipient_id: s.reason for s in statuses(engine)}["wm3"] == "provider_fail_list"


def test_interrupted_rows_become_unknown(engine):
    plan_rows(engine, [("s", "group", "g0", "wecom_robot", "robot-0", robot_body("x"))])
    with engine.begin() as conn:
        ledger.claim_many(conn, [1])
    assert ledger.mark_interrupted(engine, RUN) == 1
    assert statuses(engine)[0][2:4] == ("unknown", "interrupted")


def test_a_run_touches_only_its_own_steps(engine):
    plan_rows(engine, [("morning", "group", "g0", "wecom_robot", "robot-0", robot_body("早")),
                       ("noon", "group", "g0", "wecom_robot", "robot-0", robot_body("午"))])
    with engine.begin() as conn:
        ledger.claim_many(conn, [1])  # the morning run is still sending its row
    noon = ledger.Run(JOB, DAY, ("noon",))
    assert ledger.mark_interrupted(engine, noon) == 0
    assert sending.robot_batches(engine, noon, 1000) == [(2, 2)]
    assert [s.status for s in statuses(engine)] == ["sending", "planned"]


def test_an_unreachable_provider_leaves_rows_planned_for_a_re_run(engine, workspace, secrets):
    plan_rows(engine, [("s", "group", f"g{i}", "wecom_robot", f"robot-{i}", robot_body("x"))
                       for i in range(3)])
    with WeComSimulator(workspace.inbox_path) as sim:
        url = sim.url  # a port that nothing listens on once the simulator stops
    stats = send_all(engine, url, secrets)
    assert stats.deferred == 3 and stats.sent == stats.failed == 0
    assert {s.status for s in statuses(engine)} == {"planned"}
    with WeComSimulator(workspace.inbox_path, port=int(url.rsplit(":", 1)[1])) as sim:
        assert send_all(engine, sim.url, secrets).sent == 3
