"""Planning the daily push: who gets what, who is held back and why, written once."""

from datetime import date, time

import pytest
from sqlalchemy import select, update

from qunyun import db, ledger
from qunyun.config import Calendar, Caps
from qunyun.daily_push import JOB, pick_items, plan_daily_push, prepare_content
from qunyun.errors import BadInput
from qunyun.models import Delivery, Member
from qunyun.templating import message_environment
from qunyun.workspace import PROJECT_ROOT
from tests.factories import add_groups, add_members, add_staff

WEDNESDAY = date(2026, 11, 25)
ENV = message_environment(PROJECT_ROOT / "templates")


def calendar(**slot_overrides) -> Calendar:
    slot = {"name": "morning", "time": "08:30", "column": "早安"} | slot_overrides
    return Calendar.model_validate({
        "columns": {
            "早安": {"items": [
                {"id": "hello-all", "template": "wecom_robot/zaoan.md.j2", "msgtype": "markdown",
                 "audience": {"level": "group", "group_kinds": ["interest", "seeding"]},
                 "vars": {"greeting": "早", "tip": "喝水"}},
                {"id": "hello-vip", "template": "wecom_robot/zaoan.md.j2", "msgtype": "markdown",
                 "audience": {"level": "group", "group_kinds": ["vip"]},
                 "vars": {"greeting": "尊敬的会员早", "tip": "专属福利"}},
                {"id": "welcome", "template": "wecom_customer/new_customer.text.j2",
                 "audience": {"level": "member", "tags_any": ["新客"]},
                 "vars": {"coupon": "20 元券"}},
            ]},
        },
        "slots": [slot],
    })


@pytest.fixture
def engine(db_url):
    engine = db.engine_for(db_url)
    add_staff(engine)
    return engine


def plan(engine, cal=None, caps=None, **kw):
    cal = cal or calendar()
    prepare_content(engine, cal, ENV)
    return plan_daily_push(engine, cal, caps or Caps(), ENV, WEDNESDAY, **kw)


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(Delivery).order_by(Delivery.id)).all()


def test_each_group_kind_gets_its_item_and_each_new_customer_a_welcome(engine):
    add_groups(engine, {"interest": 2, "vip": 1, "superfan": 1})
    add_members(engine, 5)
    summary = plan(engine)
    by_item = {}
    for row in rows(engine):
        by_item.setdefault(row.content_item, []).append(row.recipient_id)
    # superfan groups are targeted by no item of the column: they get nothing.
    assert sorted(by_item["hello-all"]) == ["wr-interest-000", "wr-interest-001"]
    assert by_item["hello-vip"] == ["wr-vip-000"]
    assert len(by_item["welcome"]) == 5
    assert summary.new_rows == 8
    assert summary.by_channel == {"wecom_robot": 3, "wecom_customer": 5}


def test_rendered_payloads_are_personalised_and_exact_provider_json(engine):
    add_groups(engine, {"vip": 1})
    add_members(engine, 1, nickname="阿花")
    plan(engine)
    group_row, member_row = rows(engine)
    assert group_row.payload.startswith('{"msgtype":"markdown","markdown":{"content":"**尊敬的会员早')
    assert "测试vip群1" in group_row.payload
    assert member_row.payload.startswith("阿花0，你好呀！我是你的专属顾问小林。")
    assert member_row.sender == "staff-001" and group_row.sender == "wecom-robot-wr-vip-000"


def test_replanning_the_same_date_adds_nothing(engine):
    add_groups(engine, {"interest": 3})
    add_members(engine, 4)
    first = plan(engine)
    keys = [r.idempotency_key for r in rows(engine)]
    second = plan(engine)
    assert first.new_rows == 7 and second.new_rows == 0
    assert [r.idempotency_key for r in rows(engine)] == keys


def test_a_dry_run_after_the_real_run_shows_the_same_plan(engine):
    add_groups(engine, {"interest": 2})
    add_members(engine, 3)
    real = plan(engine)
    again = plan(engine, dry_run=True)
    assert again.by_reason == real.by_reason == {}
    assert again.by_channel == real.by_channel


def test_dry_run_computes_the_plan_and_writes_nothing(engine):
    add_groups(engine, {"interest": 2})
    add_members(engine, 3)
    summary = plan(engine, dry_run=True)
    assert summary.new_rows == 5
    assert len(summary.previews) == 5
    assert rows(engine) == []


def test_suppression_reasons_are_recorded_not_sent(engine):
    add_groups(engine, {"interest": 1})
    add_members(engine, 2, prefix="ok")
    add_members(engine, 1, prefix="optout", opted_out=True)
    add_members(engine, 1, prefix="black", blacklisted=True)
    add_members(engine, 1, prefix="staff", is_staff=True)
    add_members(engine, 1, prefix="orphan", owner_userid=None)
    plan(engine)
    reasons = {r.recipient_id: (r.status, r.reason) for r in rows(engine)
               if r.recipient_kind == "member"}
    assert reasons == {
        "ok00000": ("planned", None), "ok00001": ("planned", None),
        "optout00000": ("suppressed", "opted_out"), "black00000": ("suppressed", "blacklisted"),
        "staff00000": ("suppressed", "staff"), "orphan00000": ("suppressed", "no_sender"),
    }
    assert all(r.payload == "" for r in rows(engine) if r.status == "suppressed")


def test_member_caps_hold_back_the_second_message_of_a_day_except_for_the_whitelist(engine):
    add_members(engine, 2, prefix="plain")
    add_members(engine, 1, prefix="white", whitelisted=True)
    plan(engine)
    second_slot = calendar(name="evening", time="19:00")
    plan(engine, cal=second_slot)
    evening = {r.recipient_id: r.reason for r in rows(engine) if r.step == "evening"}
    assert evening == {"plain00000": "member_daily_cap", "plain00001": "member_daily_cap",
                       "white00000": None}


def test_group_daily_cap(engine):
    add_groups(engine, {"interest": 1})
    caps = Caps.model_validate({"group": {"per_day": 1}})
    plan(engine, caps=caps)
    plan(engine, cal=calendar(name="noon", time="12:00"), caps=caps)
    assert [(r.step, r.status, r.reason) for r in rows(engine)] == [
        ("morning", "planned", None), ("noon", "suppressed", "group_daily_cap")]


def test_quiet_hours_suppress_a_slot_inside_them(engine):
    add_groups(engine, {"interest": 1})
    add_members(engine, 1)
    plan(engine, cal=calendar(time="23:00"))
    assert {r.reason for r in rows(engine)} == {"quiet_hours"}


def test_slot_not_on_this_weekday_plans_nothing(engine):
    add_groups(engine, {"interest": 1})
    summary = plan(engine, cal=calendar(weekdays=["mon"]))
    assert summary.slots == [] and rows(engine) == []


def test_unknown_slot_is_one_clear_error(engine):
    with pytest.raises(BadInput, match="unknown slot.*morning"):
        plan(engine, slot="nightly")


def test_rotation_moves_to_the_next_item_each_day():
    cal = Calendar.model_validate({
        "columns": {"早安": {"items": [
            {"id": f"item-{i}", "template": "wecom_robot/zaoan.md.j2",
             "audience": {"level": "group"}} for i in range(3)]}},
        "slots": [{"name": "morning", "time": "08:30", "column": "早安"}],
    })
    slot = cal.slots[0]
    picked = [pick_items(cal, slot, date(2026, 11, d))[0]["interest"].id for d in (24, 25, 26, 27)]
    assert len(set(picked[:3])) == 3 and picked[3] == picked[0]


def test_an_item_outside_its_validity_window_is_skipped(engine):
    add_groups(engine, {"vip": 1})
    cal = calendar()
    cal.columns["早安"].items[1].valid_to = date(2026, 11, 24)
    plan(engine, cal=cal)
    assert rows(engine) == []


def test_ledger_keys_are_deterministic():
    a = ledger.idempotency_key(JOB, WEDNESDAY, "morning", "group", "g1")
    assert a == ledger.idempotency_key(JOB, WEDNESDAY, "morning", "group", "g1")
    assert a != ledger.idempotency_key(JOB, date(2026, 11, 26), "morning", "group", "g1")


def test_segment_filters_compile_to_sql(engine):
    add_members(engine, 3, prefix="new", tags=("新客",))
    add_members(engine, 2, prefix="vip", tags=("会员",), stage="member")
    with engine.begin() as conn:
        conn.execute(update(Member).where(Member.external_id == "new00000")
                     .values(activity_state="churned"))
    cal = calendar()
    cal.columns["早安"].items[2].audience.activity_states = ["new", "active"]
    plan(engine, cal=cal)
    assert sorted(r.recipient_id for r in rows(engine)) == ["new00001", "new00002"]


def test_slot_time_and_quiet_hours_crossing_midnight():
    caps = Caps()
    assert caps.quiet_hours.contains(time(23, 0)) and caps.quiet_hours.contains(time(7, 59))
    assert not caps.quiet_hours.contains(time(8, 0))


def test_a_once_per_member_item_is_not_sent_again_on_later_days(engine):
    add_members(engine, 2, prefix="first")
    cal = calendar()
    cal.columns["早安"].items[2].once_per_member = True
    plan(engine, cal=cal)
    add_members(engine, 1, prefix="later")
    prepare_content(engine, cal, ENV)
    plan_daily_push(engine, cal, Caps(), ENV, date(2026, 11, 26))
    next_day = [r.recipient_id for r in rows(engine) if r.logical_date == date(2026, 11, 26)]
    assert next_day == ["later00000"]
    # Re-running the first day still finds its own rows (same keys): nothing new, nothing lost.
    assert plan(engine, cal=cal).new_rows == 0


def test_an_audience_tag_nobody_has_is_refused_as_a_typo(engine):
    add_members(engine, 2, tags=("新客",))
    cal = calendar()
    cal.columns["早安"].items[2].audience.tags_any = ["新课"]
    with pytest.raises(BadInput, match="welcome .*unknown tag.* 新课"):
        prepare_content(engine, cal, ENV)
