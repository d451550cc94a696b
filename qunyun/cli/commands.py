"""CLI command modules; importing this module registers every command on the app."""

from qunyun.cli import check, demo, imports, inbox, run, simulator  # noqa: F401
