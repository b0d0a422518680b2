"""Errors that reach the user as one clear line."""


class EvosweepError(Exception):
    """Base class: the message is one line naming the key or file, what was expected and the fix."""


class ConfigError(EvosweepError):
    """A value in the configuration is wrong."""


class DataError(EvosweepError):
    """An input data file is missing or unusable."""
