"""Data-quality gates: clean data passes, each critical rule catches a row that breaks it,
warnings don't stop a flow, examples are masked, the Prefect task publishes and fails, and
`qunyun check` exits 3 / 0.

Runs on SQLite, and on PostgreSQL too when QUNYUN_TEST_PG_URL is set.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from qunyun import db
from qunyun.errors import GateFailed
from qunyun.models import Base
from qunyun.quality import SUITES, run_gates

AS_OF = datetime(2025, 6, 30, 12, 0, 0)
DAY = timedelta(days=1)
ALL = list(SUITES)
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
PG_URL = os.environ.get("QUNYUN_TEST_PG_URL")


# --------------------------------------------------------------------------- databases and data


def _loose_metadata() -> sa.MetaData:
    """The app schema with every constraint removed (no PK, NOT NULL, UNIQUE or FK): a copy
    loaded by hand or by an older tool. Used only for the rules the real schema already enforces,
    to show the gate still catches them where the database does not."""
    md = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        sa.Table(table.name, md, *[sa.Column(c.name, c.type, nullable=True) for c in table.c])
    return md


LOOSE = _loose_metadata()


def _pg_reset(url: str) -> None:
    engine = db.migrate(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    if request.param == "postgres" and not PG_URL:
        pytest.skip("QUNYUN_TEST_PG_URL not set")
    return request.param


def open_migrated(backend: str, tmp_path):
    """(url, metadata, raw engine) of a database at the newest schema, seeded with clean data.

    The raw engine has no foreign-key pragma on SQLite, like a bulk loader."""
    if backend == "postgres":
        url = PG_URL
        _pg_reset(url)
    else:
        url = f"sqlite:///{tmp_path / 'app.db'}"
        db.migrate(url)
    engine = sa.create_engine(url)
    seed(engine, Base.metadata)
    return url, Base.metadata, engine


def open_loose(tmp_path):
    url = f"sqlite:///{tmp_path / 'loose.db'}"
    engine = sa.create_engine(url)
    LOOSE.create_all(engine)
    seed(engine, LOOSE)
    return url, LOOSE, engine


@pytest.fixture
def migrated(backend, tmp_path):
    url, md, engine = open_migrated(backend, tmp_path)
    yield url, md, engine
    engine.dispose()


def member(i: int, **kw) -> dict:
    row = dict(
        id=i, external_id=f"wm{i:04d}", nickname=f"用户{i}", phone=f"1380013{i:04d}",
        source_channel="wecom", owner_userid="staff01", joined_at=AS_OF - 30 * DAY,
        last_active_at=AS_OF - DAY, total_spend=10.0, note=None, opted_out=False,
        blacklisted=False, whitelisted=False, is_staff=False, stage="customer",
        activity_state="active", fan_level="friendly", updated_at=AS_OF - DAY,
    )
    return row | kw


def group(i: int, **kw) -> dict:
    row = dict(id=i, external_id=f"wrg{i}", name=f"社群{i}", kind="interest",
               channel="wecom_robot", robot_secret=f"robot_{i}", owner_userid="staff01",
               created_at=AS_OF - 100 * DAY, active=True)
    return row | kw


def membership(i: int, **kw) -> dict:
    row = dict(id=i, member_id=i, group_id=1, role="member", joined_at=AS_OF - 20 * DAY,
               left_at=None)
    return row | kw


def event(i: int, **kw) -> dict:
    row = dict(id=i, member_id=1, group_id=1, kind="message", occurred_at=AS_OF - 2 * DAY,
               campaign=None, amount=None, props=None)
    return row | kw


def content(i: str, **kw) -> dict:
    row = dict(id=i, column_name="早安", title="早安问候", template=f"messages/{i}.md.j2",
               msgtype="markdown", level="group", targeting={}, valid_from=date(2025, 6, 1),
               valid_to=date(2025, 7, 31))
    return row | kw


def seed(engine, md: sa.MetaData) -> None:
    with engine.begin() as conn:
        ins = lambda name, rows: conn.execute(sa.insert(md.tables[name]), rows)  # noqa: E731
        ins("members", [member(i) for i in range(1, 6)])
        ins("groups", [group(1), group(2, kind="vip", active=False, robot_secret=None)])
        ins("memberships", [membership(i) for i in range(1, 6)])
        ins("events", [
            event(1),
            event(2, kind="purchase", amount=99.0, member_id=2),
            event(3, kind="checkin", member_id=3, occurred_at=AS_OF - 300 * DAY),
        ])
        ins("content_items", [content("c1"), content("c2", msgtype="text", level="member")])


def add(engine, md, table: str, row: dict) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(md.tables[table]), [row])


# --------------------------------------------------------------------------- clean data


def test_clean_data_passes_every_suite(migrated):
    url, _, _ = migrated
    report = run_gates(url, ALL, as_of=AS_OF)
    assert report.passed, report.to_markdown()
    assert report.critical_failures == [] and report.warnings == []
    assert report.counts()["checks"] == sum(len(s.checks) for s in SUITES.values())
    assert {o.suite for o in report.outcomes} == set(SUITES)
    assert report.outcome("members.stage_in_set").unexpected_count == 0
    assert report.outcome("members.stage_in_set").element_count == 5


def test_unknown_suite_is_refused(migrated):
    with pytest.raises(KeyError, match="campaigns"):
        run_gates(migrated[0], ["members", "campaigns"], as_of=AS_OF)


# --------------------------------------------------------------------------- critical rules

# (check id, table, row that breaks it, expected unexpected count, db: "migrated" or "loose").
# "loose" for the rules the schema itself enforces (NOT NULL, UNIQUE, PK, FK): there the row
# cannot be written to the real schema, so the check is shown on an unconstrained copy.
BREAKS = [
    ("members.external_id_not_null", "members", member(9, external_id=None), 1, "loose"),
    ("members.external_id_unique", "members", member(9, external_id="wm0001"), 2, "loose"),
    ("members.stage_in_set", "members", member(9, stage="vip"), 1, "migrated"),
    ("members.activity_state_in_set", "members", member(9, activity_state="asleep"), 1,
     "migrated"),
    ("members.fan_level_in_set", "members", member(9, fan_level="hater"), 1, "migrated"),
    ("members.phone_11_digits", "members", member(9, phone="1380013800"), 1, "migrated"),
    ("members.joined_at_not_future", "members", member(9, joined_at=AS_OF + DAY), 1,
     "migrated"),
    ("members.total_spend_non_negative", "members", member(9, total_spend=-0.01), 1,
     "migrated"),
    ("memberships.member_exists", "memberships", membership(9, member_id=999), 1, "loose"),
    ("memberships.group_exists", "memberships", membership(9, member_id=1, group_id=77), 1,
     "loose"),
    ("memberships.role_in_set", "memberships", membership(9, member_id=1, group_id=2,
                                                          role="boss"), 1, "migrated"),
    ("memberships.left_after_joined", "memberships",
     membership(9, member_id=1, group_id=2, left_at=AS_OF - 25 * DAY), 1, "migrated"),
    ("events.kind_in_set", "events", event(9, kind="poke"), 1, "migrated"),
    ("events.occurred_at_not_null", "events", event(9, occurred_at=None), 1, "loose"),
    ("events.occurred_at_not_future", "events", event(9, occurred_at=AS_OF + timedelta(hours=1)),
     1, "migrated"),
    ("events.amount_non_negative", "events", event(9, kind="purchase", amount=-5.0), 1,
     "migrated"),
    ("events.member_exists", "events", event(9, member_id=4242), 1, "loose"),
    ("content.id_unique", "content_items", content("c1"), 2, "loose"),
    ("content.msgtype_in_set", "content_items", content("c9", msgtype="image"), 1, "migrated"),
    ("content.level_in_set", "content_items", content("c9", level="team"), 1, "migrated"),
    ("content.template_not_null", "content_items", content("c9", template=None), 1, "loose"),
    ("content.valid_window_ordered", "content_items",
     content("c9", valid_from=date(2025, 7, 1), valid_to=date(2025, 6, 1)), 1, "migrated"),
    ("groups.external_id_unique", "groups", group(9, external_id="wrg1"), 2, "loose"),
    ("groups.kind_in_set", "groups", group(9, kind="random"), 1, "migrated"),
    ("groups.robot_secret_present", "groups", group(9, robot_secret=None), 1, "migrated"),
]


def test_every_critical_check_has_a_breaking_case():
    critical = {f"{s.name}.{c.key}" for s in SUITES.values() for c in s.checks
                if c.severity == "critical"}
    assert critical == {b[0] for b in BREAKS}


@pytest.mark.parametrize(
    "check_id, table, row, count, where", BREAKS, ids=[b[0] for b in BREAKS]
)
def test_critical_rule_fails_on_a_row_that_breaks_it(
    backend, tmp_path, check_id, table, row, count, where
):
    if where == "loose":
        if backend != "sqlite":
            pytest.skip("the unconstrained copy is a SQLite file")
        url, md, engine = open_loose(tmp_path)
    else:
        url, md, engine = open_migrated(backend, tmp_path)
    add(engine, md, table, row)
    suite = check_id.split(".")[0]
    report = run_gates(url, [suite], as_of=AS_OF)
    assert not report.passed
    failed = {o.check_id for o in report.critical_failures}
    assert failed == {check_id}, report.to_markdown()
    outcome = report.outcome(check_id)
    assert outcome.error is None
    assert outcome.unexpected_count == count
    assert 1 <= len(outcome.examples) <= 3
    assert check_id in report.summary_line() and outcome.description in report.summary_line()
    assert check_id in report.to_markdown()


def test_old_events_outside_the_window_are_not_gated(migrated):
    url, md, engine = migrated
    add(engine, md, "events", event(9, kind="poke", occurred_at=AS_OF - 200 * DAY))
    assert run_gates(url, ["events"], as_of=AS_OF).passed


# --------------------------------------------------------------------------- warnings


def test_warnings_are_reported_but_do_not_fail_the_gate(migrated):
    url, md, engine = migrated
    for i in (6, 7):  # 2 of 7 members without an owner: 71% < 90%
        add(engine, md, "members", member(i, owner_userid=None))
    add(engine, md, "events", event(9, kind="purchase", amount=None))
    report = run_gates(url, ["members", "events"], as_of=AS_OF)
    assert report.passed
    assert {o.check_id for o in report.warnings} == {
        "members.owner_mostly_present", "events.purchase_has_amount"}
    assert report.outcome("members.owner_mostly_present").unexpected_count == 2
    assert "警告 warning" in report.to_markdown()
    assert report.counts() | {} == {"checks": report.counts()["checks"], "passed":
                                    report.counts()["checks"] - 2,
                                    "critical_failures": 0, "warnings": 2}


def test_mostly_tolerates_a_few_members_without_owner(migrated):
    url, md, engine = migrated
    for i in range(6, 16):
        add(engine, md, "members", member(i))
    add(engine, md, "members", member(16, owner_userid=None))  # 1 of 16: 94% have an owner
    report = run_gates(url, ["members"], as_of=AS_OF)
    assert report.outcome("members.owner_mostly_present").success
    assert report.outcome("members.owner_mostly_present").unexpected_count == 1


# --------------------------------------------------------------------------- masking


def test_examples_never_show_a_full_phone_number(migrated):
    url, md, engine = migrated
    add(engine, md, "members", member(9, phone="138001380009"))  # 12 digits: a bad phone
    add(engine, md, "groups", group(9, name="王姐13912345678的群", robot_secret=None))
    report = run_gates(url, ALL, as_of=AS_OF)
    phone = report.outcome("members.phone_11_digits")
    assert phone.examples == ["138****0009"]
    secret = report.outcome("groups.robot_secret_present")
    assert any("139****5678" in e for e in secret.examples)
    # Nothing else leaks either: the seeded members all have full phone numbers.
    assert not FULL_PHONE.search(report.to_markdown())
    assert not FULL_PHONE.search(json.dumps(report.to_dict(), ensure_ascii=False))
    assert "138001380009" not in report.to_markdown()


# --------------------------------------------------------------------------- Prefect task


def _artifact(key: str):
    """The latest artifact under `key` (every filter given: the sync client sends None else)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.UPDATED_DESC,
            limit=5,
            offset=0,
        )
    assert len(found) == 1
    return found[0]


def test_gate_task_publishes_and_raises_gate_failed(prefect_harness, migrated):
    from prefect import flow

    from tasks.gate import artifact_key, gate

    url, md, engine = migrated
    add(engine, md, "members", member(9, stage="vip"))
    name = f"gate-test-{uuid.uuid4().hex[:8]}"

    @flow(name=name)
    def gated():
        gate(url, ["members", "events"], as_of=AS_OF, flow_name=name)
        return "planned"  # must never be reached

    state = gated(return_state=True)
    assert state.is_failed()
    with pytest.raises(GateFailed, match="members.stage_in_set") as err:
        state.result()
    assert "(1 / 6)" in str(err.value)
    artifact = _artifact(artifact_key(name))
    assert artifact is not None and artifact.type == "markdown"
    assert "members.stage_in_set" in artifact.data and "未通过" in artifact.data
    assert not FULL_PHONE.search(artifact.data)


def test_gate_task_passes_clean_data_and_still_publishes(prefect_harness, migrated):
    from prefect import flow

    from tasks.gate import artifact_key, gate

    url, _, _ = migrated
    name = f"gate-clean-{uuid.uuid4().hex[:8]}"

    @flow(name=name)
    def gated():
        return gate(url, ALL, as_of=AS_OF, flow_name=name)

    report = gated()
    assert report.passed
    artifact = _artifact(artifact_key(name))
    assert artifact is not None and "通过" in artifact.data


def test_artifact_keys_are_slugs():
    from tasks.gate import artifact_key

    assert artifact_key("daily-push") == "gate-daily-push"
    assert artifact_key("Weekly Campaign_2") == "gate-weekly-campaign-2"
    assert artifact_key("") == "gate"


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from qunyun.cli import _register, app

    _register()
    monkeypatch.setenv("QUNYUN_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("QUNYUN_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'ws' / 'qunyun.db'}"
    return CliRunner(), app, url


def test_cli_check_exits_0_on_clean_data(cli):
    runner, app, url = cli
    result = runner.invoke(app, ["check"])  # an empty, freshly migrated workspace
    assert result.exit_code == 0, result.output
    assert "通过" in result.output
    engine = sa.create_engine(url)
    seed(engine, Base.metadata)
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] is True
    assert data["counts"]["critical_failures"] == 0


def test_cli_check_exits_3_on_a_critical_failure(cli):
    runner, app, url = cli
    engine = db.migrate(url)
    raw = sa.create_engine(url)
    seed(raw, Base.metadata)
    add(raw, Base.metadata, "events", event(9, kind="poke", occurred_at=datetime.now() - DAY))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 3, result.output
    assert "events.kind_in_set" in result.output
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert [o["check_id"] for o in data["outcomes"] if not o["success"]] == ["events.kind_in_set"]
    engine.dispose()


# --------------------------------------------------------------------------- extending


def test_a_new_suite_is_one_declarative_entry(monkeypatch, migrated):
    import great_expectations.expectations as gxe

    from qunyun.quality import Suite, critical, warning
    from qunyun.quality.suites import rows

    url, md, engine = migrated
    add(engine, md, "staff", dict(id=1, userid="staff01", name="小王", role="service"))
    monkeypatch.setitem(SUITES, "staff", Suite(
        name="staff", title="员工 staff", table="staff",
        checks=(
            critical("userid_unique", "员工账号不能重复",
                     gxe.ExpectColumnValuesToBeUnique(column="userid")),
            warning("role_known", "员工角色应是 service/owner",
                    gxe.ExpectColumnValuesToBeInSet(column="role", value_set=["owner"])),
            critical("broken_sql", "写错的检查也会拦住流程",
                     rows("SELECT nope FROM {batch} WHERE no_such_column = 1")),
        ),
    ))
    report = run_gates(url, ["staff"], as_of=AS_OF)
    assert report.outcome("staff.userid_unique").success
    assert [o.check_id for o in report.warnings] == ["staff.role_known"]
    broken = report.outcome("staff.broken_sql")
    assert not broken.success and broken.error  # a check that cannot run fails closed
    assert not report.passed


def test_several_failures_in_one_suite_each_get_their_own_examples(migrated):
    url, md, engine = migrated
    add(engine, md, "members", member(9, stage="vip", total_spend=-3.0))
    add(engine, md, "members", member(10, fan_level="hater"))
    add(engine, md, "groups", group(9, kind="random", robot_secret=None))
    report = run_gates(url, ["members", "groups"], as_of=AS_OF)
    assert report.outcome("members.stage_in_set").examples == ["vip"]
    assert report.outcome("members.total_spend_non_negative").examples == ["-3.0"]
    assert report.outcome("members.fan_level_in_set").examples == ["hater"]
    assert report.outcome("groups.kind_in_set").examples == ["random"]
    assert report.outcome("groups.robot_secret_present").examples == [
        "id=9 external_id=wrg9 name=社群9"]
