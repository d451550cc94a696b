"""`qunyun simulator`: run the WeCom-compatible simulator (a test double) in the foreground."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from qunyun import workspace
from qunyun.cli import app
from qunyun.errors import BadInput


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("simulator")
def simulator(
    host: Annotated[
        str, typer.Option("--host", help="回环地址 (loopback address only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口 (port); 0 picks a free one.")] = 18650,
    valid_key: Annotated[
        list[str] | None,
        typer.Option(
            "--valid-key",
            help="只接受这些群机器人 key (accept only these webhook keys); repeatable. "
            "Default: any key of 8–64 chars [A-Za-z0-9-].",
        ),
    ] = None,
) -> None:
    """企业微信模拟器: WeCom-compatible simulator (a test double of the provider) on loopback."""
    from qunyun.simulator import WeComSimulator, serve_forever

    if not _is_loopback(host):
        raise BadInput(
            f"--host {host}: 模拟器只能绑定回环地址 (the simulator binds to loopback only)"
        )
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port}: 端口须在 0–65535 (port must be 0–65535)")
    inbox = workspace.current().inbox_path

    def ready(sim: WeComSimulator) -> None:
        typer.echo(
            f"企业微信模拟器 (WeCom-compatible simulator, a test double) 已启动: {sim.url} ；"
            f"收件箱 inbox: {inbox}"
        )
        typer.echo(
            f"群机器人 webhook: {sim.url}/cgi-bin/webhook/send?key=<KEY> ；按 Ctrl+C 停止 (stop)"
        )

    try:
        serve_forever(inbox, host=host, port=port, valid_keys=valid_key or None, on_ready=ready)
    except OSError as exc:
        raise BadInput(f"--port {port}: 无法监听 (cannot listen on {host}:{port}): {exc}") from None
    typer.echo("企业微信模拟器已停止 (simulator stopped)")
