"""Report task: the run's counts as a Prefect table artifact an operator reads in the UI."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from qunyun import ledger
from qunyun.vocab import REASON_LABELS, STATUS_LABELS
from tasks.context import RunContext


def delivery_summary(counts: dict[str, int]) -> dict[str, int]:
    """planned = everything meant to go out; the rest say where it stands now."""
    total = sum(counts.values())
    return {
        "planned": total - counts["suppressed"],
        "sent": counts["sent"],
        "failed": counts["failed"],
        "unknown": counts["unknown"],
        "suppressed": counts["suppressed"],
        "pending": counts["planned"] + counts["sending"],
    }


@task(name="发送报告 report-delivery", cache_policy=NO_CACHE)
def report_delivery(job: str, logical_date: date) -> dict:
    ctx = RunContext.current()
    day = ledger.Run(job, logical_date)  # the whole day, every slot so far
    counts = ledger.status_counts(ctx.engine, day)
    reasons = ledger.reason_counts(ctx.engine, day)
    summary = delivery_summary(counts)
    rows = [
        {"状态 status": f"{STATUS_LABELS.get(k, k)} {k}", "数量 count": v}
        for k, v in counts.items()
    ]
    rows += [
        {"状态 status": f"原因 reason: {REASON_LABELS.get(k, k)} {k}", "数量 count": v}
        for k, v in sorted(reasons.items())
    ]
    create_table_artifact(
        key=f"{job}-{logical_date.isoformat()}",
        table=rows,
        description=f"{job} {logical_date}: 计划 {summary['planned']}，已发送 {summary['sent']}，"
        f"失败 {summary['failed']}，结果未知 {summary['unknown']}，拦截 {summary['suppressed']}",
    )
    return {**summary, "reasons": reasons}


@task(name="预览报告 report-dry-run", cache_policy=NO_CACHE)
def report_dry_run(job: str, plan: dict) -> None:
    lines = [f"# {job} {plan['date']} 预演 (dry run)：未发送任何消息", ""]
    for title, key in (("按栏目 by column", "by_column"), ("按群类型 by group kind", "by_group_kind"),
                       ("按渠道 by channel", "by_channel"),
                       ("拦截原因 suppressed by reason", "suppressed_by_reason")):
        lines += [f"## {title}", "", "| 项 | 数量 |", "|---|---|"]
        lines += [f"| {REASON_LABELS.get(k, k)} | {v} |" for k, v in plan[key].items()]
        lines.append("")
    lines += ["## 预览 previews", ""]
    for p in plan["previews"]:
        lines += [f"**{p['slot']} · {p['item']} → {p['to']}**", "", "```", p["content"], "```", ""]
    create_markdown_artifact(key=f"{job}-dry-run", markdown="\n".join(lines),
                             description="预演: 谁会收到什么 (who would get what)")
