"""Pipeline failures users can act on. Bad arguments use the built-in exceptions instead.

Tasks do not retry these (see `tasks/common.py`): retrying a broken contract or config
cannot succeed, so only transient faults (I/O, network) are retried.
"""


class SeqcastError(Exception):
    """A pipeline failure whose message says what went wrong and what to do."""


class ConfigError(SeqcastError):
    """The config, a parameter or an override is invalid."""


class SourceError(SeqcastError):
    """The source data cannot be found or read."""


class DataContractError(SeqcastError):
    """The data breaks its contract; the message names file, column, rule and rows."""


class RegistryError(SeqcastError):
    """The model registry has no usable model, or a stored model fails its checks."""
