"""Errors the CLI reports as one line; kept free of heavy imports so it can catch them."""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, say); the message says what to change."""


class StoreError(RuntimeError):
    """The study database cannot be used (not an rdzoo/Optuna database, a newer schema...)."""
