"""psystock: an MLflow experiment pipeline for next-day stock direction models."""

import os
import socket

__version__ = "0.1.0"


class PsystockError(ValueError):
    """A problem with the user's input that a step reports as one readable line."""


def this_process() -> str:
    """``host:pid``: which process created a run or ran a trial."""
    return f"{socket.gethostname()}:{os.getpid()}"
