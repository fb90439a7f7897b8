"""Errors the CLI reports as one line; kept free of heavy imports so it can catch them."""


class SpecError(ValueError):
    """A spec or search space is invalid; the message names the key path."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


class DataError(ValueError):
    """A data file or dataset cannot be used; the message says where and why."""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the message says what to change."""


class StoreError(RuntimeError):
    """The study database cannot be used (not an rdzoo/Optuna database, a newer schema...)."""


class WeightsError(ValueError):
    """A weights file is missing, damaged, foreign, or does not match its spec."""


class MissingExtra(RuntimeError):
    """An optional dependency a command needs is not installed; the message says which extra installs it."""


class ExportError(RuntimeError):
    """A model that cannot be exported (to ONNX), or whose exported graph disagrees with PyTorch."""


class DeviceError(ValueError):
    """A device, precision or GPU list the user asked for is not there or not allowed here."""
