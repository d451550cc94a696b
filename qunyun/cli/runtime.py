"""What CLI commands that run flows share: Prefect's home, log level, the simulator, output."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator

import typer

from qunyun import workspace
from qunyun.config import load_channels


def prepare_environment(ws: workspace.Workspace, verbose: bool = False) -> None:
    """Set before Prefect or GX is imported: they read these once, at import.

    Prefect's own database stays in the workspace (the embedded default), nothing phones home,
    and unless --verbose the console shows our one-line messages, not Prefect's tracebacks
    (the run's full logs still go to the Prefect API and UI).
    """
    os.environ.setdefault("PREFECT_HOME", str(ws.home / "prefect"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "CRITICAL")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def simulator_for_run(ws: workspace.Workspace) -> Iterator[str | None]:
    """Start the simulator for this run when the channels point at it and it is not up."""
    channels = load_channels(ws.config_dir)
    port = channels.simulator.port
    if not (channels.simulator.autostart and channels.points_at_simulator()) or _port_open(port):
        yield None
        return
    from qunyun.simulator import WeComSimulator

    with WeComSimulator(ws.inbox_path, port=port) as sim:
        yield sim.url


def emit_json(data: dict) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))
