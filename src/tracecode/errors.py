"""The errors tracecode raises on purpose. Only the CLI turns them into exit codes."""


class TracecodeError(Exception):
    """Base of every error that a user can act on; the message says what to do next."""


class InputError(TracecodeError):
    """The landing directory or a reference file cannot be used as it is."""


class SettingsError(TracecodeError):
    """A settings file or value is invalid."""


class RuleError(TracecodeError):
    """A rule file is malformed or its SQL failed."""


class DatabaseError(TracecodeError):
    """A query failed or the database file cannot be opened."""


class RunLockedError(DatabaseError):
    """Another run holds the database's run lock."""
