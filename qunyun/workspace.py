"""Where things live: the workspace folder, the config and template folders, the database URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workspace:
    home: Path
    config_dir: Path
    templates_dir: Path
    database_url: str

    @property
    def inbox_path(self) -> Path:
        return self.home / "simulator" / "inbox.jsonl"

    @property
    def secrets_path(self) -> Path:
        return self.home / "secrets.json"

    @property
    def imports_dir(self) -> Path:
        return self.home / "imports"


def current() -> Workspace:
    """The workspace from the environment: QUNYUN_HOME (default ./var) and friends."""
    home = Path(os.environ.get("QUNYUN_HOME", "var")).resolve()
    config_dir = Path(os.environ.get("QUNYUN_CONFIG_DIR", PROJECT_ROOT / "config")).resolve()
    templates_dir = Path(
        os.environ.get("QUNYUN_TEMPLATES_DIR", PROJECT_ROOT / "templates")
    ).resolve()
    url = os.environ.get("QUNYUN_DATABASE_URL") or f"sqlite:///{home / 'qunyun.db'}"
    return Workspace(home, config_dir, templates_dir, url)
