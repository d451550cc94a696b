"""Secrets resolve by name: environment, then the workspace file, then a Prefect Secret block."""

import pytest
from prefect.blocks.system import Secret

from qunyun.errors import BadInput
from qunyun.secrets import SecretResolver, add_workspace_secrets, env_var_name
from tasks.context import prefect_secret


def test_environment_wins_over_the_workspace_file(tmp_path, monkeypatch):
    path = tmp_path / "secrets.json"
    add_workspace_secrets(path, {"wecom-robot-a": "from-file", "wecom-robot-b": "file-b"})
    monkeypatch.setenv(env_var_name("wecom-robot-a"), "from-env")
    resolver = SecretResolver(path)
    assert resolver.get("wecom-robot-a") == "from-env"
    assert resolver.get("wecom-robot-b") == "file-b"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_prefect_secret_block_is_the_last_resort(prefect_harness, tmp_path):
    Secret(value="from-block").save("wecom-robot-c", overwrite=True)
    resolver = SecretResolver(tmp_path / "none.json", fallback=prefect_secret)
    assert resolver.get("wecom-robot-c") == "from-block"
    assert prefect_secret("no-such-block") is None


def test_a_missing_secret_names_itself_and_where_to_put_it(tmp_path):
    with pytest.raises(BadInput) as err:
        SecretResolver(tmp_path / "none.json").get("wecom-robot-x")
    assert "wecom-robot-x" in str(err.value) and "QUNYUN_SECRET_WECOM_ROBOT_X" in str(err.value)
