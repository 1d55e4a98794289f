"""Errors a user can cause and act on.

The CLI prints an `LmforgeError` as one line (what was wrong, where, what to do) and exits non-zero;
anything else is a bug and keeps its traceback. Subclasses also inherit from the matching built-in error
so library callers can catch `ValueError` / `FileNotFoundError` as usual.
"""


class LmforgeError(Exception):
    """A mistake in the user's input: arguments, config, files."""


class ConfigError(LmforgeError, ValueError):
    """A config file or override that does not fit the config's dataclasses."""


class CorpusError(LmforgeError, ValueError):
    """A corpus that cannot be read: missing, empty, not UTF-8, malformed JSON/CSV."""


class MissingFileError(LmforgeError, FileNotFoundError):
    """A path the user named does not exist."""
