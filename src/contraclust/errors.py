"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class ContraclustError(Exception):
    """Bad input or a failed run that the user can fix; the message says how."""


class DataError(ContraclustError):
    """A data path is missing, empty, corrupt, or of the wrong shape."""


class ConfigError(ContraclustError):
    """A configuration value is out of range or inconsistent with the data."""


class TrainingDiverged(ContraclustError):
    """The loss became NaN or infinite; the last checkpoint is kept."""
