"""Errors the CLI reports as one line; kept free of heavy imports so it can catch them."""


class SpecError(ValueError):
    """A spec or search space is invalid; the message names the key path."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


class ParamError(ValueError):
    """An error that may be about one parameter of the library: `param` is its name as the library
    spells it (`device`, `text_col`), or None. Where the message names the parameter, it names it
    so; the CLI writes the option that sets it in its place (`cli.OPTION_OF`)."""

    def __init__(self, message: str, param: str | None = None):
        self.message, self.param = message, param
        super().__init__(message)


class DataError(ParamError):
    """A data file or dataset cannot be used; the message says where and why. `param`: the loader's
    parameter it is about (`text_col`, `on_bad_line`, `label_names`, ...), or None for the data itself."""


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


class DeviceError(ParamError):
    """A device, precision or GPU list the user asked for is not there or not allowed here; `param`
    (`device`, `precision`, `gpus`, `max_memory`) begins the message."""
