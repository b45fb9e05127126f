"""The library's own exceptions.

Every error that a user can cause (bad input, a missing file, a store in an unexpected state) is a
:class:`GwasmError`. The command line turns these into a one-line message and exit code 2; anything
else is a bug.

Messages speak in the library's own terms: an invalid argument is named by its parameter name
(``epochs must be at least 1, got 0``), never by a command-line flag. When the error is about one
parameter, ``parameter`` names it, and the message starts with that name, so that a front end can
say it in its own words (the ``gwasm`` command line writes ``--epochs``).
"""

from __future__ import annotations


class GwasmError(Exception):
    """Base class of every error caused by the user's input or environment.

    Parameters
    ----------
    message : str
        What is wrong, in one line.
    parameter : str, optional
        The library parameter the error is about; ``message`` then starts with its name.
    missing_step : str, optional
        The step of the pipeline whose output is missing (``"collect"``, ``"associate"``), so that
        a front end can say how to make it.
    """

    def __init__(self, message: str, *, parameter: str | None = None, missing_step: str | None = None) -> None:
        super().__init__(message)
        if parameter is not None and not message.startswith(parameter):
            raise ValueError(f"a message about {parameter!r} must start with its name: {message!r}")
        self.parameter = parameter
        self.missing_step = missing_step

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(GwasmError, ValueError):
    """An argument or option has a value that cannot be used."""


class DataError(GwasmError):
    """A dataset cannot be found or read, or its contents are malformed."""


class StoreError(GwasmError):
    """The run store cannot be read or written, or lacks what was asked for."""


class ResultsError(GwasmError):
    """A results file (summary statistics, fingerprint) is missing or malformed."""
