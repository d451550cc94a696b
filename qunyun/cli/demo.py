"""`qunyun demo`: a synthetic community in the workspace and the operating cycle run on it."""

from __future__ import annotations

import secrets as pysecrets
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from qunyun import db, workspace
from qunyun.cli import app
from qunyun.cli.run import parse_date, print_push_result, push_json, run_daily_push
from qunyun.cli.runtime import emit_json
from qunyun.config import load_channels, load_demo_defaults
from qunyun.secrets import add_workspace_secrets

PHASES = {"staff": "员工账号", "tags": "标签", "groups": "社群", "members": "客户与行为",
          "staff_members": "员工成员"}


@app.command("demo")
def demo(
    date_: Annotated[str | None, typer.Option("--date", help="演示的逻辑日期 YYYY-MM-DD (默认今天)")] = None,
    members: Annotated[int | None, typer.Option("--members", min=10, help="客户数 (默认见 config/demo.yaml)")] = None,
    groups: Annotated[int | None, typer.Option("--groups", min=4, help="社群数")] = None,
    days: Annotated[int | None, typer.Option("--days", min=7, help="行为数据天数")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="随机种子")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="以一个 JSON 对象输出摘要")] = False,
) -> None:
    """演示: 生成一个模拟社群并跑一遍每日推送 (build a synthetic community, run the daily push)."""
    from flows.daily_push import today_in_shanghai
    from qunyun.synth import build_community, write_robot_secrets

    ws = workspace.current()
    defaults = load_demo_defaults(ws.config_dir)
    day = parse_date(date_) or today_in_shanghai()
    console = Console(stderr=True, quiet=as_json)
    engine = db.migrate(ws.database_url)
    community = None
    with engine.connect() as conn:
        populated = conn.exec_driver_sql("SELECT count(*) FROM members").scalar_one() > 0
    if populated:
        console.print(f"工作区已有社群数据，直接使用 (workspace already populated): {ws.home}")
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            bars: dict[str, int] = {}

            def report(phase: str, done: int, total: int) -> None:
                if phase not in bars:
                    bars[phase] = progress.add_task(f"生成{PHASES.get(phase, phase)}", total=total)
                progress.update(bars[phase], completed=done, total=total)

            # Behaviour up to the day before: the push runs in the morning of `day`.
            stats = build_community(
                engine, members=members or defaults.members, groups=groups or defaults.groups,
                days=days or defaults.days, end_date=day - timedelta(days=1),
                seed=defaults.seed if seed is None else seed, progress=report)
        community = {"members": stats.members, "groups": stats.groups, "staff": stats.staff,
                     "memberships": stats.memberships, "events": stats.events,
                     "seconds": round(stats.seconds, 1)}
        console.print(f"已生成模拟社群 (synthetic community): 客户 {stats.members}，社群 {stats.groups}，"
                      f"员工 {stats.staff}，行为事件 {stats.events}，用时 {stats.seconds:.1f}s")
    write_robot_secrets(engine, ws.secrets_path)
    corp_secret = load_channels(ws.config_dir).channels["wecom_customer"].corp_secret
    if corp_secret:
        add_workspace_secrets(ws.secrets_path, {corp_secret: pysecrets.token_hex(16)})
    with console.status("运行每日内容推送 (running the daily push)…"):
        result = run_daily_push(day, None, False, "keep")
    if as_json:
        out = push_json(result)
        out["community"] = community
        out["workspace"] = str(ws.home)
        emit_json(out)
        return
    print_push_result(result, Console())
    console.print("查看模拟器收到的消息: qunyun inbox ；预演: qunyun run daily-push --dry-run")
