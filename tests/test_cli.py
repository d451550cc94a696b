"""The `qunyun` command as an operator types it: real processes, real HTTP, exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL
from sqlalchemy import insert, select

from qunyun import db
from qunyun.models import Delivery, Member
from qunyun.simulator import WeComSimulator, key_fingerprint, read_inbox
from tests.factories import add_corp_secret, add_groups, add_staff

QUNYUN = [sys.executable, "-m", "qunyun"]


@pytest.fixture
def cli_env(workspace, prefect_harness):
    env = dict(os.environ)
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()  # the session's test server
    return env


def qunyun(env, *args, timeout=300):
    return subprocess.run([*QUNYUN, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_demo_builds_a_community_and_pushes_through_the_simulator(cli_env, workspace):
    done = qunyun(cli_env, "demo", "--members", "300", "--groups", "8", "--date", "2026-11-25",
                  "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    push = out["daily_push"]
    assert out["date"] == "2026-11-25"
    assert set(push) >= {"planned", "sent", "failed", "unknown", "suppressed"}
    assert push["planned"] > 8 and push["sent"] == push["planned"]
    assert out["community"]["members"] == 300 and out["community"]["groups"] == 8
    received = len(read_inbox(workspace.inbox_path))
    assert received > 0

    again = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["daily_push"]["sent"] == push["sent"]
    assert len(read_inbox(workspace.inbox_path)) == received  # nothing sent twice

    preview = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-26", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "预演 (dry run)" in preview.stdout and "早安" in preview.stdout
    assert len(read_inbox(workspace.inbox_path)) == received

    inbox = qunyun(cli_env, "inbox", "--json", "--last", "5")
    assert json.loads(inbox.stdout)["total"] == received


def test_broken_yaml_is_one_line_naming_file_and_line_exit_2(cli_env, workspace):
    calendar = Path(workspace.config_dir) / "content_calendar.yaml"
    calendar.write_text("slots:\n  - name: morning\n   time: [\n", encoding="utf-8")
    done = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "content_calendar.yaml" in lines[0] and "第 3 行" in lines[0]


def test_unknown_column_names_the_slot_exit_2(cli_env, workspace):
    calendar = Path(workspace.config_dir) / "content_calendar.yaml"
    text = calendar.read_text(encoding="utf-8").replace("column: 早安", "column: 晚安", 1)
    calendar.write_text(text, encoding="utf-8")
    done = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25", "--dry-run")
    assert done.returncode == 2
    assert "unknown column" in done.stderr and "晚安" in done.stderr


def test_bad_date_exit_2_and_one_json_error_for_scripts(cli_env):
    done = qunyun(cli_env, "run", "daily-push", "--date", "2026-13-45", "--json")
    assert done.returncode == 2 and "YYYY-MM-DD" in done.stderr
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["exit_code"] == 2 and "2026-13-45" in error["error"]


def test_killed_mid_send_then_resumed_never_sends_twice(cli_env, workspace):
    engine = db.migrate(workspace.database_url)
    add_staff(engine)
    add_groups(engine, {"interest": 120}, secrets_path=workspace.secrets_path)
    add_corp_secret(workspace.secrets_path)
    port = yaml.safe_load((Path(workspace.config_dir) / "channels.yaml").read_text())[
        "simulator"]["port"]
    # Every answer is slow, so the process is killed while requests are in flight: most of
    # those the simulator has recorded, but the sender never learns it.
    with WeComSimulator(workspace.inbox_path, port=port,
                        faults={"slow_rate": 1.0, "slow_seconds": 0.3}) as sim:
        run = subprocess.Popen([*QUNYUN, "run", "daily-push", "--date", "2026-11-25"],
                               env=cli_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while len(sim.inbox()) < 60 and time.time() < deadline and run.poll() is None:
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        received_before_kill = len(sim.inbox())
        sim.set_faults({"slow_rate": 0.0})
        resumed = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25", "--json")
        assert resumed.returncode == 0, resumed.stderr
        inbox = Counter((m["key_fingerprint"], m["content"]) for m in sim.inbox())

    keys = json.loads(workspace.secrets_path.read_text())
    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.status, Delivery.reason, Delivery.sender,
                                   Delivery.payload)).all()
    message = {}  # each ledger row as the simulator would have recorded it
    for status, _, sender, payload in rows:
        body = json.loads(payload)
        message.setdefault(status, []).append(
            (key_fingerprint(keys[sender]), body[body["msgtype"]]["content"]))
    assert 60 <= received_before_kill < 120 * 3
    assert len(rows) == 120 * 3  # morning, knowledge and member-day to every interest group
    # Never twice, and nothing the plan did not hold.
    assert set(inbox.values()) == {1}
    assert set(inbox) <= set(message["sent"]) | set(message["unknown"])
    # Every row whose outcome is knowable was delivered exactly once on resume.
    assert all(inbox[m] == 1 for m in message["sent"])
    # Rows in flight at the kill (at most the 16 concurrent requests) are unknown: delivered
    # at most once, never resent or confirmed without the operator.
    assert 0 < len(message["unknown"]) <= 16
    assert {reason for status, reason, _, _ in rows if status == "unknown"} == {"interrupted"}
    assert all(inbox[m] <= 1 for m in message["unknown"])
    assert set(message) == {"sent", "unknown"}

    confirmed = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25",
                       "--resolve-unknown", "sent", "--json")
    assert json.loads(confirmed.stdout)["daily_push"]["sent"] == 120 * 3


def test_a_failed_gate_exits_3_and_sends_nothing(cli_env, workspace):
    engine = db.migrate(workspace.database_url)
    add_staff(engine)
    add_groups(engine, {"interest": 2}, secrets_path=workspace.secrets_path)
    with engine.begin() as conn:
        conn.execute(insert(Member).values(external_id="wm-bad", nickname="坏数据",
                                           stage="unknown-stage", owner_userid="staff-001",
                                           total_spend=-5))
    done = qunyun(cli_env, "run", "daily-push", "--date", "2026-11-25")
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "members.stage" in lines[0]
    assert read_inbox(workspace.inbox_path) == []
    with engine.connect() as conn:
        assert conn.execute(select(Delivery.id)).first() is None
