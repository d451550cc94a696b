"""Planning task for the daily content push."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from qunyun.daily_push import plan_daily_push, prepare_content
from tasks.context import RunContext


@task(name="生成推送计划 plan-daily-push", cache_policy=NO_CACHE)
def plan_push(logical_date: date, slot: str | None = None, dry_run: bool = False) -> dict:
    """Audience, suppression and rendering for the day's slots, written to the ledger at once."""
    ctx = RunContext.current()
    summary = plan_daily_push(ctx.engine, ctx.calendar, ctx.caps, ctx.templates, logical_date,
                              slot=slot, dry_run=dry_run)
    get_run_logger().info(
        "计划完成 (planned) %s: 时段 slots %s, 新增 new rows %d, 拦截 suppressed %s",
        logical_date, ",".join(summary.slots) or "-", summary.new_rows,
        dict(summary.by_reason),
    )
    return summary.as_dict()


@task(name="检查素材 prepare-content", cache_policy=NO_CACHE)
def load_content() -> int:
    """Validate the calendar and every template, and mirror the items for the content gate."""
    ctx = RunContext.current()
    return prepare_content(ctx.engine, ctx.calendar, ctx.templates)
