"""Resolving secrets by name: environment first, then the workspace file, then a fallback.

The fallback is how the Prefect layer plugs in Secret blocks without this library importing
Prefect. Values are never logged; errors name the secret, not its value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from qunyun.errors import BadInput


def env_var_name(secret_name: str) -> str:
    """wecom-robot-wr01 → QUNYUN_SECRET_WECOM_ROBOT_WR01."""
    return "QUNYUN_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", secret_name).upper()


class SecretResolver:
    def __init__(self, secrets_file: Path | None = None,
                 fallback: Callable[[str], str | None] | None = None):
        self._file_values: dict[str, str] | None = None
        self._secrets_file = secrets_file
        self._fallback = fallback
        self._cache: dict[str, str] = {}

    def _from_file(self, name: str) -> str | None:
        if self._file_values is None:
            path = self._secrets_file
            self._file_values = json.loads(path.read_text()) if path and path.exists() else {}
        return self._file_values.get(name)

    def get(self, name: str) -> str:
        if name in self._cache:
            return self._cache[name]
        value = os.environ.get(env_var_name(name)) or self._from_file(name)
        if not value and self._fallback is not None:
            value = self._fallback(name)
        if not value:
            raise BadInput(
                f"缺少密钥 (missing secret) '{name}': 请设置环境变量 {env_var_name(name)} "
                f"或创建同名 Prefect Secret 块 (or a Prefect Secret block of that name)"
            )
        self._cache[name] = value
        return value


def add_workspace_secrets(path: Path, values: dict[str, str]) -> int:
    """Add names missing from the workspace's secrets file (JSON, mode 0600); returns how many.

    The file is for the embedded demo and development; production uses Prefect Secret blocks
    or environment variables.
    """
    existing = json.loads(path.read_text() or "{}") if path.exists() else {}
    added = {k: v for k, v in values.items() if k not in existing}
    if not added:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({**existing, **added}, fh, ensure_ascii=False, indent=0)
    os.replace(tmp, path)
    return len(added)
