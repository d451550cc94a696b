"""The `qunyun` command line: one module per command group, wired together here."""

from __future__ import annotations

import json
import sys

import typer

from qunyun.errors import QunyunError
from qunyun.pii import mask_text

app = typer.Typer(
    name="qunyun",
    help="群运 Qunyun: 社群运营的每日推送、活动、召回与复盘 (community operations as Prefect flows).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command module adds its commands to `app` on import.
    from qunyun.cli import commands  # noqa: F401


def main() -> None:
    from qunyun import workspace
    from qunyun.cli.runtime import prepare_environment

    prepare_environment(workspace.current(), verbose="--verbose" in sys.argv)
    _register()
    try:
        app()
    except QunyunError as exc:
        message = mask_text(str(exc))
        if "--json" in sys.argv:  # a script still gets one JSON object
            typer.echo(json.dumps({"ok": False, "error": message, "exit_code": exc.exit_code},
                                  ensure_ascii=False))
        typer.echo(f"错误 (error): {message}", err=True)
        sys.exit(exc.exit_code)
