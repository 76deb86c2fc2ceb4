"""psystock: an MLflow experiment pipeline for next-day stock direction models."""

__version__ = "0.1.0"


class PsystockError(ValueError):
    """A problem with the user's input that a step reports as one readable line."""
