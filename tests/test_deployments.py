"""prefect.yaml agrees with the flows and with the content calendar, and deploys for real."""

import os
import subprocess
import sys
from datetime import datetime

import pytest
import yaml
from cronsim import CronSim
from prefect.client.orchestration import get_client
from prefect.flows import load_flow_from_entrypoint
from prefect.settings import PREFECT_API_URL

from qunyun.config import load_calendar
from qunyun.workspace import PROJECT_ROOT

PREFECT_YAML = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
DEPLOYMENTS = PREFECT_YAML["deployments"]
CRON_DAYS = {"sun": "0", "mon": "1", "tue": "2", "wed": "3", "thu": "4", "fri": "5", "sat": "6"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_deployment_loads_its_flow_and_passes_valid_parameters(deployment):
    flow = load_flow_from_entrypoint(str(PROJECT_ROOT / deployment["entrypoint"]))
    # Unknown or ill-typed parameters would only fail at the scheduled run; fail here instead.
    flow.validate_parameters(deployment["parameters"])


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_schedule_is_a_valid_shanghai_cron_with_a_slug(deployment):
    for schedule in deployment.get("schedules", []):
        assert schedule["timezone"] == "Asia/Shanghai"
        assert schedule["slug"] and schedule["slug"].replace("-", "").isalnum()
        CronSim(schedule["cron"], datetime(2026, 11, 25))


def test_every_calendar_slot_has_a_deployment_at_its_time():
    calendar = load_calendar(PROJECT_ROOT / "config")
    by_slot = {d["parameters"].get("slot"): d for d in DEPLOYMENTS}
    for slot in calendar.slots:
        deployment = by_slot.get(slot.name)
        assert deployment, f"slot {slot.name} has no deployment in prefect.yaml"
        minute, hour, _, _, weekdays = deployment["schedules"][0]["cron"].split()
        assert (int(hour), int(minute)) == (slot.time.hour, slot.time.minute), slot.name
        days = "*" if len(slot.weekdays) == 7 else ",".join(
            sorted((CRON_DAYS[d] for d in slot.weekdays), key=int))
        assert weekdays == days, slot.name
    slots = {s.name for s in calendar.slots}
    assert {name for name in by_slot if name} <= slots


def test_prefect_deploy_registers_every_deployment_on_a_real_server(prefect_harness, tmp_path):
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(),
               QUNYUN_PROJECT_DIR=str(PROJECT_ROOT))
    prefect = [sys.executable, "-m", "prefect"]

    def run(*args):
        done = subprocess.run([*prefect, *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("work-pool", "create", "qunyun-process", "--type", "process", "--overwrite")
    run("--no-prompt", "deploy", "--all")
    with get_client(sync_client=True) as client:
        for expected in DEPLOYMENTS:
            found = client.read_deployment_by_name(f"daily-push/{expected['name']}")
            assert found.parameters == expected["parameters"]
            assert found.work_pool_name == "qunyun-process"
            assert [(s.schedule.cron, s.schedule.timezone, s.slug) for s in found.schedules] == [
                (s["cron"], s["timezone"], s["slug"]) for s in expected.get("schedules", [])]
