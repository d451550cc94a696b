"""CLI command modules; importing this package registers every command."""
from qunyun.cli import simulator  # noqa: F401
from qunyun.cli import imports  # noqa: F401
from qunyun.cli import check  # noqa: F401
from qunyun.cli import run  # noqa: F401
from qunyun.cli import inbox  # noqa: F401
from qunyun.cli import demo  # noqa: F401
