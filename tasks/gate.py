"""Gate task (闸门): validate the data a flow will act on before it plans anything."""

from __future__ import annotations

import re
from datetime import datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from qunyun.errors import GateFailed
from qunyun.quality import GateReport, run_gates


def artifact_key(flow_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", flow_name.lower()).strip("-")
    return f"gate-{slug}" if slug else "gate"


@task(name="数据质量闸门 gate", cache_policy=NO_CACHE)
def gate(
    database_url: str,
    suites: list[str],
    as_of: datetime | None = None,
    flow_name: str = "",
) -> GateReport:
    """Run the named suites; publish the outcomes; raise GateFailed on a critical failure.

    Warnings are logged and published, and the flow goes on.
    """
    logger = get_run_logger()
    report = run_gates(database_url, suites, as_of=as_of)
    create_markdown_artifact(
        key=artifact_key(flow_name),
        markdown=report.to_markdown(),
        description=f"数据质量闸门 data-quality gate: {', '.join(suites)}",
    )
    for o in report.warnings:
        logger.warning("数据质量警告 (gate warning) %s %s: %s 行异常 (rows) %s",
                       o.check_id, o.description, o.unexpected_count if o.error is None else "-",
                       o.error or ", ".join(o.examples))
    if not report.passed:
        logger.error(report.summary_line())
        raise GateFailed(report.summary_line())
    logger.info("%s (%.1f s)", report.summary_line(), report.seconds.get("total", 0.0))
    return report
