"""The synthetic community: shape, consistency, determinism and believable dynamics."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from datetime import date, datetime

import pytest
from sqlalchemy import text

from qunyun.db import migrate
from qunyun.models import GROUP_KINDS
from qunyun.synth import build_community, write_robot_secrets

END = date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "demo.db"
    engine = migrate(f"sqlite:///{path}")
    phases = []
    stats = build_community(engine, members=2000, groups=20, days=60, end_date=END, seed=7,
                            progress=lambda p, done, total: phases.append((p, done, total)))
    return engine, stats, phases


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_counts_match_arguments(demo):
    engine, stats, phases = demo
    assert stats.members == 2000 == scalar(engine, "SELECT COUNT(*) FROM members")
    assert stats.groups == 20 == scalar(engine, "SELECT COUNT(*) FROM groups")
    assert stats.staff == scalar(engine, "SELECT COUNT(*) FROM staff") >= 13
    assert stats.memberships == scalar(engine, "SELECT COUNT(*) FROM memberships")
    assert stats.events == scalar(engine, "SELECT COUNT(*) FROM events")
    assert stats.tags == scalar(engine, "SELECT COUNT(*) FROM tags") >= 10
    assert 50_000 <= stats.events <= 150_000
    assert phases[-1][1] == phases[-1][2]
    assert {p for p, _, _ in phases} >= {"staff", "groups", "members"}


def test_staff_owners_and_groups(demo):
    engine, _, _ = demo
    assert rows(engine, "SELECT userid FROM staff WHERE userid NOT LIKE 'staff-%'") == []
    orphans = scalar(engine, "SELECT COUNT(*) FROM members WHERE owner_userid IS NULL "
                             "OR owner_userid NOT IN (SELECT userid FROM staff)")
    assert orphans == 0
    kinds = dict(rows(engine, "SELECT kind, COUNT(*) FROM groups GROUP BY kind"))
    assert set(kinds) == set(GROUP_KINDS)
    assert kinds["interest"] > kinds["seeding"] > kinds["superfan"] > kinds["vip"]
    for ext, secret, owner in rows(engine, "SELECT external_id, robot_secret, owner_userid "
                                           "FROM groups"):
        assert re.fullmatch(r"wr[0-9a-z]{20,}", ext)
        assert secret == f"wecom-robot-{ext}" and secret == secret.lower()
        assert owner.startswith("staff-")
    names = [r[0] for r in rows(engine, "SELECT name FROM groups")]
    assert all(re.fullmatch(r"小满\S+ \d+群", n) for n in names)


def test_members_look_real(demo):
    engine, _, _ = demo
    ext = [r[0] for r in rows(engine, "SELECT external_id FROM members")]
    assert all(re.fullmatch(r"wm[0-9A-Za-z]{20,}", e) for e in ext)
    phones = [r[0] for r in rows(engine, "SELECT phone FROM members WHERE phone IS NOT NULL")]
    assert 0.6 < len(phones) / 2000 < 0.8
    assert all(re.fullmatch(r"17[01]\d{8}", p) for p in phones)  # virtual-operator range only
    assert len(set(phones)) == len(phones)
    nicks = [r[0] for r in rows(engine, "SELECT nickname FROM members")]
    assert len(set(nicks)) > 800
    assert any(ord(ch) > 0x1F000 for n in nicks for ch in n)  # some emoji
    per_member = [r[0] for r in rows(engine, "SELECT COUNT(*) FROM member_tags GROUP BY member_id")]
    assert min(per_member) >= 1 and max(per_member) <= 4
    flags = rows(engine, "SELECT AVG(opted_out), AVG(blacklisted), AVG(whitelisted), "
                         "SUM(is_staff) FROM members")[0]
    assert all(0.002 < f < 0.03 for f in flags[:3]) and 3 <= flags[3] <= 20
    assert scalar(engine, "SELECT COUNT(*) FROM members WHERE blacklisted AND whitelisted") == 0


def test_memberships(demo):
    engine, _, _ = demo
    per_member = dict(rows(engine, "SELECT m.id, COUNT(ms.id) FROM members m LEFT JOIN "
                                   "memberships ms ON ms.member_id = m.id "
                                   "WHERE NOT m.is_staff GROUP BY m.id"))
    assert set(per_member.values()) <= {1, 2, 3} and 2 in per_member.values()
    roles = dict(rows(engine, "SELECT role, COUNT(*) FROM memberships GROUP BY role"))
    assert roles["member"] / sum(roles.values()) > 0.9 and "owner" in roles and "koc" in roles
    bad = scalar(engine, "SELECT COUNT(*) FROM memberships ms JOIN members m ON m.id = "
                         "ms.member_id WHERE ms.left_at <= ms.joined_at "
                         "OR (NOT m.is_staff AND ms.joined_at < m.joined_at)")
    assert bad == 0
    assert 0.03 < scalar(engine, "SELECT AVG(left_at IS NOT NULL) FROM memberships") < 0.4


def test_events_consistent(demo):
    engine, _, _ = demo
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE member_id NOT IN "
                          "(SELECT id FROM members)") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE group_id IS NOT NULL AND "
                          "group_id NOT IN (SELECT id FROM groups)") == 0
    lo, hi = rows(engine, "SELECT MIN(occurred_at), MAX(occurred_at) FROM events")[0]
    assert lo >= "2025-05-02" and hi < "2025-07-01"
    # a join per membership joined in the window, a leave per membership left
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE kind='join'") == scalar(
        engine, "SELECT COUNT(*) FROM memberships WHERE joined_at >= '2025-05-02'")
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE kind='leave'") == scalar(
        engine, "SELECT COUNT(*) FROM memberships WHERE left_at IS NOT NULL")
    # group events happen while the member is in that group
    outside = scalar(engine, """
        SELECT COUNT(*) FROM events e WHERE e.group_id IS NOT NULL AND e.kind <> 'leave'
        AND NOT EXISTS (SELECT 1 FROM memberships ms WHERE ms.member_id = e.member_id
          AND ms.group_id = e.group_id AND ms.joined_at <= e.occurred_at
          AND (ms.left_at IS NULL OR e.occurred_at < ms.left_at))""")
    assert outside == 0
    amounts = rows(engine, "SELECT MIN(amount), MAX(amount), COUNT(*) FROM events "
                           "WHERE kind='purchase'")[0]
    assert 39 <= amounts[0] and amounts[1] <= 599 and amounts[2] > 200
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE kind <> 'purchase' "
                          "AND amount IS NOT NULL") == 0
    props = rows(engine, "SELECT props FROM events WHERE kind='purchase' LIMIT 1")[0][0]
    assert "sku" in json.loads(props)


def test_lifecycle_columns_follow_events(demo):
    engine, _, _ = demo
    mismatch = scalar(engine, """
        SELECT COUNT(*) FROM members m LEFT JOIN (SELECT member_id, SUM(amount) s
          FROM events WHERE kind='purchase' GROUP BY member_id) p ON p.member_id = m.id
        WHERE ABS(m.total_spend - COALESCE(p.s, 0)) > 0.01""")
    assert mismatch == 0
    stale = scalar(engine, """
        SELECT COUNT(*) FROM members m JOIN (SELECT member_id, MAX(occurred_at) t FROM events
          WHERE kind NOT IN ('join', 'leave') GROUP BY member_id) e ON e.member_id = m.id
        WHERE NOT m.is_staff AND m.last_active_at <> e.t""")
    assert stale == 0
    buyers = dict(rows(engine, "SELECT stage, COUNT(*) FROM members GROUP BY stage"))
    assert set(buyers) == {"prospect", "customer", "member", "koc"}
    assert buyers["prospect"] > buyers["customer"] > buyers["koc"]
    assert scalar(engine, "SELECT COUNT(*) FROM members WHERE stage <> 'prospect' "
                          "AND total_spend = 0") == 0
    states = dict(rows(engine, "SELECT activity_state, COUNT(*) FROM members GROUP BY 1"))
    assert set(states) == {"new", "active", "silent", "at_risk", "churned"}
    fans = dict(rows(engine, "SELECT fan_level, COUNT(*) FROM members GROUP BY 1"))
    assert fans["passerby"] > fans["devoted"] > fans["advocate"] > 0


def test_dynamics_are_believable(demo):
    engine, _, _ = demo
    per_member = sorted((r[0] for r in rows(
        engine, "SELECT COUNT(*) FROM events WHERE kind='message' GROUP BY member_id")),
        reverse=True)
    top = sum(per_member[:200])  # top 10% of 2000 members
    assert top / sum(per_member) > 0.4
    hours = dict(rows(engine, "SELECT CAST(strftime('%H', occurred_at) AS INTEGER), COUNT(*) "
                              "FROM events WHERE kind='message' GROUP BY 1"))
    evening = hours[20] + hours[21]
    assert evening > 5 * (hours[3] + hours[4] + hours[5]) / 1.5
    assert hours[12] > hours[10] and hours[12] > hours[15]  # lunch bump
    # 会员日 (Wednesday) beats the other weekdays on purchases
    wd = dict(rows(engine, "SELECT strftime('%w', occurred_at), COUNT(*) FROM events "
                           "WHERE kind='purchase' GROUP BY 1"))
    assert wd["3"] > 1.8 * max(v for k, v in wd.items() if k != "3")
    # joins front-loaded; activity decays for a share of members (later weeks quieter per head)
    first, last = rows(engine, """SELECT SUM(joined_at < '2025-05-17'),
        SUM(joined_at >= '2025-06-16') FROM members WHERE NOT is_staff""")[0]
    assert first > 2 * last
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE campaign LIKE 'member_day-%'") > 0
    assert scalar(engine, "SELECT COUNT(*) FROM events WHERE campaign LIKE "
                          "'checkin_challenge-%'") > 100


def checksum(engine) -> str:
    h = hashlib.sha256()
    for sql in ("SELECT external_id, nickname, phone, owner_userid, joined_at, stage, "
                "total_spend FROM members ORDER BY id",
                "SELECT external_id, name, kind FROM groups ORDER BY id",
                "SELECT member_id, group_id, role, joined_at, left_at FROM memberships "
                "ORDER BY id",
                "SELECT member_id, group_id, kind, occurred_at, amount FROM events ORDER BY id"):
        for row in rows(engine, sql):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def build_small(tmp_path, name, seed, with_events=True, days=30):
    engine = migrate(f"sqlite:///{tmp_path / name}")
    stats = build_community(engine, members=300, groups=8, days=days, end_date=END, seed=seed,
                            with_events=with_events)
    return engine, stats


def test_deterministic(tmp_path):
    a, _ = build_small(tmp_path, "a.db", 11)
    b, _ = build_small(tmp_path, "b.db", 11)
    c, _ = build_small(tmp_path, "c.db", 12)
    assert checksum(a) == checksum(b) != checksum(c)


def test_without_events_still_sets_lifecycle(tmp_path):
    engine, stats = build_small(tmp_path, "noev.db", 7, with_events=False, days=60)
    assert stats.events == 0 == scalar(engine, "SELECT COUNT(*) FROM events")
    assert len(rows(engine, "SELECT DISTINCT stage FROM members")) >= 3
    assert len(rows(engine, "SELECT DISTINCT activity_state FROM members")) >= 4
    assert scalar(engine, "SELECT COUNT(*) FROM members WHERE last_active_at IS NOT NULL") > 150


def test_refuses_non_empty_database(demo):
    engine, _, _ = demo
    with pytest.raises(ValueError, match="empty"):
        build_community(engine, members=10, groups=4, end_date=END)


def test_write_robot_secrets(demo, tmp_path):
    engine, _, _ = demo
    path = tmp_path / "ws" / "secrets.json"
    assert write_robot_secrets(engine, path) == 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = json.loads(path.read_text())
    names = {r[0] for r in rows(engine, "SELECT robot_secret FROM groups")}
    assert set(keys) == names
    assert all(re.fullmatch(r"[0-9a-f-]{36}", v) for v in keys.values())
    keys["other-secret"] = "kept"
    path.write_text(json.dumps(keys))
    assert write_robot_secrets(engine, path) == 0
    again = json.loads(path.read_text())
    assert again["other-secret"] == "kept"
    assert all(again[n] == keys[n] for n in names)


def test_no_real_looking_secrets_in_sources():
    from pathlib import Path

    import qunyun.synth as synth

    uuid_like = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for source in (Path(synth.__file__), Path(__file__)):
        body = source.read_text()
        assert not uuid_like.search(body), source
        assert not re.search(r"key=[0-9a-zA-Z-]{16,}", body), source
        assert "qyapi." + "weixin.qq.com" not in body


def test_dates_are_naive_datetimes(demo):
    engine, _, _ = demo
    from sqlalchemy import select

    from qunyun.models import Member

    with engine.connect() as conn:
        joined = conn.execute(select(Member.joined_at).limit(1)).scalar()
    assert isinstance(joined, datetime) and joined.tzinfo is None
