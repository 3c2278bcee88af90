"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the input or configuration (missing file, bad YAML, unreachable database)."""
