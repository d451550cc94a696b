"""`qunyun inbox`: what the WeCom-compatible simulator received."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from qunyun import workspace
from qunyun.cli import app
from qunyun.cli.runtime import emit_json
from qunyun.pii import mask_text


def _content(record: dict) -> str:
    content = record.get("content")
    if isinstance(content, list):  # news articles
        content = " / ".join(a.get("title", "") for a in content)
    return mask_text(str(content or ""))


@app.command("inbox")
def inbox(
    last: Annotated[int, typer.Option("--last", help="显示最近 N 条 (show the last N)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON 输出")] = False,
) -> None:
    """模拟器收件箱 (simulator inbox): the messages the simulator accepted."""
    from qunyun.simulator import read_inbox

    path = workspace.current().inbox_path
    records = read_inbox(path) if path.exists() else []
    shown = records[-last:] if last > 0 else records
    if as_json:
        emit_json({"total": len(records), "inbox": str(path),
                   "messages": [{**r, "content": _content(r)} for r in shown]})
        return
    console = Console()
    console.print(f"模拟器收件箱 (simulator inbox) {path}: 共 {len(records)} 条 (total)")
    table = Table("时间 received", "接口 endpoint", "类型 type", "内容 content")
    for r in shown:
        text = _content(r).replace("\n", " ")
        table.add_row(str(r.get("received_at", ""))[:19], r.get("endpoint", ""),
                      r.get("msgtype", ""), text[:80] + ("…" if len(text) > 80 else ""))
    console.print(table)
