"""Errors that end a command with one clear line instead of a traceback."""


class CcpulseError(Exception):
    """A user-facing failure: bad configuration, unreachable broker, unreadable file."""

    exit_code = 1


class ConfigError(CcpulseError):
    """A configuration value is missing or invalid; the message names the key."""

    exit_code = 2
