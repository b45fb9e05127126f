"""The library's own exceptions.

Every error that a user can cause (bad input, a missing file, a store in an unexpected state) is a
:class:`GwasmError`. The command line turns these into a one-line message and exit code 2; anything
else is a bug.
"""

from __future__ import annotations


class GwasmError(Exception):
    """Base class of every error caused by the user's input or environment."""


class InputError(GwasmError, ValueError):
    """An argument or option has a value that cannot be used."""


class DataError(GwasmError):
    """A dataset cannot be found or read, or its contents are malformed."""


class StoreError(GwasmError):
    """The run store cannot be read or written, or lacks what was asked for."""


class ResultsError(GwasmError):
    """A results file (summary statistics, fingerprint) is missing or malformed."""
