"""Errors a user can act on. The CLI turns any of these into one message and a non-zero exit."""


class QdrError(Exception):
    """Base class for every error qdr raises on purpose."""


class ConfigError(QdrError):
    """A configuration file or value is invalid."""


class DataError(QdrError):
    """A data folder or image is missing, empty, mismatched or unreadable."""


class ModelFileError(QdrError):
    """A model file (checkpoint, ONNX, engine) is missing, corrupt or of the wrong kind."""


class ImageFormatError(QdrError):
    """An image buffer is malformed or in an unsupported encoding."""


class BackendUnavailableError(QdrError):
    """The requested runtime backend cannot be imported or used on this machine."""


class ModelContractError(ModelFileError):
    """A model file loads but breaks the model contract (RGB in and out, any frame size, weights)."""
