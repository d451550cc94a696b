"""What every task needs from the environment: the workspace, its config, its database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from prefect.blocks.system import Secret

from qunyun import db, workspace
from qunyun.config import load_calendar, load_caps, load_channels
from qunyun.secrets import SecretResolver
from qunyun.templating import message_environment


def prefect_secret(name: str) -> str | None:
    """A Prefect Secret block's value, or None when there is no such block."""
    try:
        return Secret.load(name, _sync=True).get()
    except (ValueError, RuntimeError):
        return None


@dataclass
class RunContext:
    ws: workspace.Workspace

    @classmethod
    def current(cls) -> RunContext:
        return cls(workspace.current())

    @cached_property
    def engine(self):
        return db.migrate(self.ws.database_url)

    @cached_property
    def calendar(self):
        return load_calendar(self.ws.config_dir)

    @cached_property
    def caps(self):
        return load_caps(self.ws.config_dir)

    @cached_property
    def channels(self):
        return load_channels(self.ws.config_dir)

    @cached_property
    def templates(self):
        return message_environment(self.ws.templates_dir)

    @cached_property
    def secrets(self) -> SecretResolver:
        return SecretResolver(self.ws.secrets_path, fallback=prefect_secret)
