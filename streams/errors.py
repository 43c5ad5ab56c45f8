"""User-facing errors: one line that says what is wrong and what to do.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""


class RapportError(Exception):
    """An error the user can fix; its message is the whole story."""


class ConfigError(RapportError):
    """Bad configuration: a URL, a port, a value of the wrong type."""


class StackError(RapportError):
    """The local stack cannot start or stop a service."""
