"""`qunyun run <job>`: run one operating-cycle flow for a logical date."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from qunyun import workspace
from qunyun.cli import app
from qunyun.cli.runtime import emit_json, simulator_for_run
from qunyun.errors import BadInput
from qunyun.pii import mask_text
from qunyun.vocab import REASON_LABELS

run_app = typer.Typer(help="运行一个运营流程 (run one operating-cycle flow).", no_args_is_help=True)
app.add_typer(run_app, name="run")


class UnknownAction(StrEnum):
    keep = "keep"
    resend = "resend"
    sent = "sent"


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"--date {value}: 日期格式应为 YYYY-MM-DD (expected YYYY-MM-DD)") from None


def print_push_result(result: dict, console: Console) -> None:
    plan = result["plan"]
    title = f"每日内容推送 daily-push {result['date']}"
    if result["dry_run"]:
        console.print(f"[bold]{title} 预演 (dry run)[/bold]：未发送任何消息 (nothing sent)")
    else:
        console.print(f"[bold]{title}[/bold]")
    console.print(f"时段 slots: {', '.join(plan['slots']) or '（今天没有时段 none today）'}")
    for label, key in (("按栏目 by column", "by_column"), ("按群类型 by group kind", "by_group_kind"),
                       ("按渠道 by channel", "by_channel"),
                       ("拦截原因 suppressed by reason", "suppressed_by_reason")):
        if plan[key]:
            table = Table(title=label, show_header=False)
            for k, v in plan[key].items():
                table.add_row(f"{REASON_LABELS.get(k, k)}", str(v))
            console.print(table)
    if result["dry_run"]:
        for p in plan["previews"]:
            console.rule(f"{p['slot']} · {p['item']} → {mask_text(p['to'])}")
            console.print(mask_text(p["content"]), markup=False)
        return
    d = result["delivery"]
    console.print(
        f"计划 planned {d['planned']} · 已发送 sent {d['sent']} · 失败 failed {d['failed']} · "
        f"结果未知 unknown {d['unknown']} · 拦截 suppressed {d['suppressed']} · "
        f"待发送 pending {d['pending']}"
    )
    if d["unknown"]:
        console.print("结果未知的消息不会自动重发；确认后用 --resolve-unknown resend|sent 处理。")


def run_daily_push(day: date | None, slot: str | None, dry_run: bool,
                   resolve_unknown: str) -> dict:
    ws = workspace.current()
    from flows.daily_push import daily_push

    with simulator_for_run(ws):
        return daily_push(logical_date=day, slot=slot, dry_run=dry_run,
                          resolve_unknown=resolve_unknown)


def push_json(result: dict) -> dict:
    out = {"date": result["date"], "dry_run": result["dry_run"]}
    if result["dry_run"]:
        out["plan"] = result["plan"]
    else:
        out["daily_push"] = {k: v for k, v in result["delivery"].items() if k != "reasons"}
        out["daily_push"]["suppressed_by_reason"] = result["delivery"]["reasons"]
    return out


@run_app.command("daily-push")
def daily_push_command(
    date_: Annotated[str | None, typer.Option("--date", help="逻辑日期 YYYY-MM-DD (默认今天, 上海时间)")] = None,
    slot: Annotated[str | None, typer.Option("--slot", help="只跑一个时段 (one slot by name)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="预演：显示谁会收到什么，不发送")] = False,
    resolve_unknown: Annotated[
        UnknownAction, typer.Option("--resolve-unknown", help="结果未知的消息: keep 保留 / resend 重发 / sent 确认已发")
    ] = UnknownAction.keep,
    as_json: Annotated[bool, typer.Option("--json", help="以一个 JSON 对象输出摘要")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="在终端显示 Prefect 日志 (show Prefect logs)")] = False,
) -> None:
    """每日内容推送 (daily content push) for one logical date."""
    del verbose  # read by qunyun.cli.main, before Prefect is imported
    result = run_daily_push(parse_date(date_), slot, dry_run, resolve_unknown.value)
    if as_json:
        emit_json(push_json(result))
    else:
        print_push_result(result, Console())
