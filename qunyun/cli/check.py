"""`qunyun check`: run every data-quality gate on the workspace database and print the result."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from qunyun import db, workspace
from qunyun.cli import app
from qunyun.errors import GateFailed
from qunyun.quality import SUITES, GateReport, run_gates
from qunyun.quality.report import SEVERITY_LABEL

JsonOpt = Annotated[bool, typer.Option("--json", help="输出 JSON (print the outcomes as JSON)")]


@app.command("check")
def check(as_json: JsonOpt = False) -> None:
    """数据质量检查: 运行全部闸门 (run all data-quality gates). Exit 3 if a critical check fails."""
    url = workspace.current().database_url
    db.migrate(url)
    report = run_gates(url, list(SUITES))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_table(report)
    if not report.passed:
        if not as_json:
            typer.echo(report.summary_line(), err=True)
        sys.exit(GateFailed.exit_code)


def _print_table(report: GateReport) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    c = report.counts()
    verdict = "[green]通过 passed[/]" if report.passed else "[red bold]未通过 failed[/]"
    table = Table(
        title=f"数据质量闸门 data-quality gate: {verdict}",
        caption=f"{c['checks']} 项, 通过 {c['passed']}, 严重失败 {c['critical_failures']}, "
        f"警告 {c['warnings']}; as_of {report.as_of:%Y-%m-%d %H:%M}; "
        f"{report.seconds.get('total', 0):.1f} s",
    )
    for col in ("检查项 check", "严重度 severity", "结果 result", "异常数 unexpected",
                "示例 examples"):
        table.add_column(col, overflow="fold")
    for o in report.outcomes:
        style = None if o.success else ("red" if o.severity == "critical" else "yellow")
        count = "-" if o.unexpected_count is None else (
            f"{o.unexpected_count} / {o.element_count}" if o.element_count
            else str(o.unexpected_count))
        table.add_row(
            f"{escape(o.description)}\n[dim]{o.check_id}[/]",
            SEVERITY_LABEL.get(o.severity, o.severity),
            o.result_label,
            count,
            escape(o.error or ", ".join(o.examples)),
            style=style,
        )
    Console(width=160).print(table)
