"""Errors that reach the user as one clear line."""


class EvosweepError(Exception):
    """Base class: the message is one line naming the key or file, what was expected and the fix."""


class ConfigError(EvosweepError):
    """A value in the configuration is wrong: `where` is its key path, `message` what to fix.

    The config file(s) in use are named by whoever knows them (the Snakefile), not here."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"config error at {where}: {message}")


class DataError(EvosweepError):
    """An input data file is missing or unusable."""
