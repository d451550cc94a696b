"""`qunyun import members|events FILE`: load an SCRM / WeCom admin export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from qunyun import db, workspace
from qunyun.cli import app
from qunyun.pii import mask_text

import_app = typer.Typer(
    help="导入客户或行为事件导出文件 (import a member or event export: CSV or XLSX).",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

FileArg = Annotated[
    Path, typer.Argument(help="导出文件 CSV/XLSX (the export file)", show_default=False)
]
EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", help="文件编码，默认自动识别 (text encoding; detected if omitted)"),
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="列映射 YAML {columns: {列名: 字段}} (column mapping file)"),
]
SheetOpt = Annotated[
    str | None, typer.Option("--sheet", help="XLSX 工作表名，默认第一个 (sheet name)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="输出 JSON 摘要 (print a JSON summary)")]


@import_app.command("members")
def members(
    file: FileArg,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    sheet: SheetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """导入客户 (import members): 按客户ID更新或新增，标签、所在群一并写入。"""
    _run("members", file, encoding, mapping, sheet, json_out)


@import_app.command("events")
def events(
    file: FileArg,
    encoding: EncodingOpt = None,
    mapping: MappingOpt = None,
    sheet: SheetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """导入行为事件 (import events): 进群、发言、打卡、购买…；重复导入不会重复写入。"""
    _run("events", file, encoding, mapping, sheet, json_out)


def _run(kind: str, file: Path, encoding, mapping, sheet, json_out: bool) -> None:
    from qunyun.importing import import_events, import_members

    ws = workspace.current()
    fn = import_members if kind == "members" else import_events
    engine = db.migrate(ws.database_url)
    with _progress(enabled=not json_out and sys.stderr.isatty(), label=file.name) as cb:
        result = fn(
            engine, file, imports_dir=ws.imports_dir, encoding=encoding, mapping=mapping,
            sheet=sheet, progress=cb,
        )
    if json_out:
        out = {
            "ok": True,
            "kind": result.kind,
            "file": result.file,
            "encoding": result.encoding,
            "rows": result.rows,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "duplicates": result.duplicates,
            "created": result.created,
            "rejects_file": result.rejects_file,
            "seconds": round(result.seconds, 3),
            "import_run_id": result.import_run_id,
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    noun = "客户 members" if kind == "members" else "事件 events"
    line = (
        f"导入完成 (imported {noun}): 接受 accepted {result.accepted}, "
        f"拒绝 rejected {result.rejected}, 重复合并 duplicates {result.duplicates}, "
        f"新增 created {result.created}"
    )
    if result.rejects_file:
        line += f"；拒绝明细 rejects: {result.rejects_file}"
    typer.echo(mask_text(line))
    if result.unmapped_columns:
        typer.echo(
            mask_text("未使用的列 (ignored columns): " + ", ".join(result.unmapped_columns)),
            err=True,
        )


class _progress:
    """A rich progress bar on stderr for a person watching; a no-op otherwise."""

    def __init__(self, enabled: bool, label: str):
        self.enabled = enabled
        self.label = label
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(f"导入 importing {self.label}", total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
