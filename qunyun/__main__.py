"""`python -m qunyun` is the `qunyun` command."""

from qunyun.cli import main

main()
