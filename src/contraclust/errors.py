"""User-facing errors: the CLI prints their message as one line and exits non-zero.

Bad data and bad settings are also ``ValueError``s, as scikit-learn's conventions expect of an estimator."""


class ContraclustError(Exception):
    """Bad input or a failed run that the user can fix; the message says how."""


class DataError(ContraclustError, ValueError):
    """A data path is missing, empty, corrupt, or of the wrong shape."""


class DataTypeError(DataError, TypeError):
    """Samples of a type that cannot be read as numbers (a TypeError too, as scikit-learn expects)."""


class ConfigError(ContraclustError, ValueError):
    """A configuration value is out of range or inconsistent with the data."""


class TrainingDiverged(ContraclustError):
    """The loss became NaN or infinite; the last checkpoint is kept."""


class CheckpointError(ContraclustError):
    """A checkpoint is unreadable, unsafe to load, of another format, or of another run."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds more than tensors and plain data: loading it could run code, so it is refused."""


class WriteError(ContraclustError):
    """A file could not be written (a full disk, a read-only place); nothing half-written is left."""
