"""Exception types raised on bad input; each message names the file or key and the problem."""


class DeltaGDMLError(ValueError):
    """Base class for input errors reported to the user."""


class DatasetError(DeltaGDMLError):
    """A dataset file or array is malformed."""


class ModelError(DeltaGDMLError):
    """A model file is malformed or does not fit the data it is applied to."""


class ConfigError(DeltaGDMLError):
    """A workflow or system configuration is invalid."""
