"""The daily-push flow as an operator runs it: gate → plan → send → report, in Prefect."""

import shutil
from collections import Counter
from datetime import date

import pytest
from prefect.artifacts import Artifact
from sqlalchemy import insert, select

from flows.daily_push import daily_push
from qunyun import db
from qunyun.errors import BadInput, GateFailed
from qunyun.models import Delivery, Member
from tests.factories import add_corp_secret, add_groups, add_members, add_staff

WEDNESDAY = date(2026, 11, 25)  # morning, knowledge, member-day and new-customer-care run


@pytest.fixture
def community(workspace, prefect_harness):
    engine = db.migrate(workspace.database_url)
    add_staff(engine)
    add_groups(engine, {"interest": 3, "vip": 1}, secrets_path=workspace.secrets_path)
    add_members(engine, 4)
    add_corp_secret(workspace.secrets_path)
    return engine


def ledger_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(Delivery.step, Delivery.recipient_id, Delivery.status)).all()


def latest_artifact(key: str):
    return Artifact.get(key)


def test_a_run_delivers_every_planned_message_and_reports_counts(community, simulator):
    result = daily_push(logical_date=WEDNESDAY)
    # 4 groups × (morning, knowledge, member-day) + 4 new customers' welcome.
    assert result["delivery"]["planned"] == 4 * 3 + 4
    assert result["delivery"]["sent"] == 16
    assert result["delivery"]["failed"] == result["delivery"]["unknown"] == 0
    inbox = simulator.inbox()
    assert Counter(m["endpoint"] for m in inbox) == {"webhook": 12, "add_msg_template": 4}
    report = latest_artifact("daily-push-2026-11-25")
    assert report.type == "table" and "已发送 16" in report.description
    gate = latest_artifact("gate-daily-push")
    assert "members" in gate.description


def test_running_the_same_date_again_sends_nothing(community, simulator):
    daily_push(logical_date=WEDNESDAY)
    before = len(simulator.inbox())
    again = daily_push(logical_date=WEDNESDAY)
    assert again["plan"]["new_rows"] == 0
    assert len(simulator.inbox()) == before
    assert again["delivery"]["sent"] == 16


def test_dry_run_previews_and_sends_nothing(community, simulator):
    result = daily_push(logical_date=WEDNESDAY, dry_run=True)
    assert result["dry_run"] is True
    assert result["plan"]["by_channel"] == {"wecom_robot": 12, "wecom_customer": 4}
    assert any("你好呀" in p["content"] for p in result["plan"]["previews"])
    assert simulator.inbox() == [] and ledger_rows(community) == []


def test_one_slot_only(community, simulator):
    result = daily_push(logical_date=WEDNESDAY, slot="member-day")
    assert result["delivery"]["sent"] == 4
    assert {r.step for r in ledger_rows(community)} == {"member-day"}


def test_a_broken_template_stops_the_run_before_anything_is_planned(community, simulator,
                                                                    workspace, monkeypatch):
    templates = workspace.home / "templates"
    shutil.copytree(workspace.templates_dir, templates)
    (templates / "messages/wecom_robot/zaoan.md.j2").write_text("{{ group.name }\n", "utf-8")
    monkeypatch.setenv("QUNYUN_TEMPLATES_DIR", str(templates))
    with pytest.raises(BadInput, match=r"wecom_robot/zaoan.md.j2 第 1 行"):
        daily_push(logical_date=WEDNESDAY)
    assert ledger_rows(community) == [] and simulator.inbox() == []


def test_a_critical_gate_failure_stops_the_run(community, simulator):
    with community.begin() as conn:
        conn.execute(insert(Member).values(external_id="wm-bad", nickname="坏数据",
                                           stage="not-a-stage", owner_userid="staff-001"))
    with pytest.raises(GateFailed):
        daily_push(logical_date=WEDNESDAY)
    assert ledger_rows(community) == [] and simulator.inbox() == []


def test_a_missing_robot_secret_sends_nothing(community, simulator, workspace):
    workspace.secrets_path.write_text('{"wecom-corp-secret": "x"}')
    with pytest.raises(BadInput, match="wecom-robot-wr-interest-000"):
        daily_push(logical_date=WEDNESDAY)
    assert simulator.inbox() == []
    assert {r.status for r in ledger_rows(community)} == {"planned"}
