"""Errors an operator can cause or fix, each rendered as one clear line by the CLI."""


class QunyunError(Exception):
    """Base for errors that end a command with a clear message instead of a traceback."""

    exit_code = 1


class BadInput(QunyunError):
    """Bad configuration, template, file or argument: names what and where. Exit 2."""

    exit_code = 2


class GateFailed(QunyunError):
    """A critical data-quality expectation failed; nothing was planned or sent. Exit 3."""

    exit_code = 3
