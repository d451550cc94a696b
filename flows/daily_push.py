"""每日内容推送 Daily content push: the content calendar's columns to groups and segments.

SOP: check the data → plan who gets which item (suppression, rendering) → send in paced
batches → report the counts. Re-running a date sends nothing twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from qunyun.daily_push import JOB
from tasks.context import RunContext
from tasks.daily_push import load_content, plan_push
from tasks.delivery import prepare_send, send_group_posts, send_member_messages
from tasks.gate import gate
from tasks.report import report_delivery, report_dry_run

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today_in_shanghai() -> date:
    return datetime.now(SHANGHAI).date()


@flow(name="daily-push", task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=False)
def daily_push(
    logical_date: date | None = None,
    slot: str | None = None,
    dry_run: bool = False,
    resolve_unknown: Literal["keep", "resend", "sent"] = "keep",
) -> dict:
    """Push the content calendar's items for one logical date (all of its slots, or one).

    Args:
        logical_date: 推送日期 (the logical date); empty means today in Asia/Shanghai.
        slot: 只跑这个时段 (one slot of config/content_calendar.yaml); empty means every slot
            that runs on that weekday.
        dry_run: 预演: plan and preview who would get what, write nothing, send nothing.
        resolve_unknown: 结果未知的消息 (a timeout after sending): keep 保留, resend 重发, or
            sent 确认已发送. They are never resent unless you choose resend.
    """
    day = logical_date or today_in_shanghai()
    load_content()
    # Checked against the moment of the run: nothing may be dated in the future.
    gate(RunContext.current().ws.database_url, ["members", "memberships", "groups", "content"],
         flow_name=JOB)
    plan = plan_push(day, slot=slot, dry_run=dry_run)
    if dry_run:
        report_dry_run(JOB, plan)
        return {"date": day.isoformat(), "dry_run": True, "plan": plan}
    steps = plan["slots"]
    batches = prepare_send(JOB, day, steps, resolve_unknown)
    for id_range in batches["robot"]:
        send_group_posts(JOB, day, steps, id_range)
    for senders in batches["customer"]:
        send_member_messages(JOB, day, steps, senders)
    summary = report_delivery(JOB, day)
    return {"date": day.isoformat(), "dry_run": False, "plan": plan, "delivery": summary}
