"""Score vectors: one run's score of every example, from a file made elsewhere.

Two layouts are read (by ``gwasm identify --scores FILE`` and ``gwasm import-scores FILE``):

- a CSV with an ``example_id`` column (integers, no repeats) and exactly one value column, in any
  row order and possibly covering only some examples; non-numeric values read as NaN;
- a ``.npy`` file holding a 1-D numeric vector whose index is the example id, so it covers the
  whole dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gwas_models.errors import InputError

#: Suffix of NumPy vectors (any case); every other file is read as CSV.
NPY_SUFFIX = ".npy"


def is_whole_vector(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``.npy`` vector, whose index covers the whole dataset."""
    return Path(path).suffix.lower() == NPY_SUFFIX


def read_score_vector(path: str | os.PathLike, n_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One run's score of every example, from a CSV or a ``.npy`` file.

    Parameters
    ----------
    path : path
        CSV with an ``example_id`` column and exactly one value column, or a ``.npy`` 1-D numeric
        vector whose index is the example id.
    n_examples : int, optional
        Size of the dataset the scores belong to: every id must then lie in ``0..n_examples-1``.
        Without it, ids must only be non-negative.

    Returns
    -------
    example_id : int64 array
    values : float64 array
        Non-numeric CSV entries become NaN.

    Raises
    ------
    InputError
        Missing or unreadable file, wrong shape or columns, non-integer, repeated or out-of-range ids.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"score file {path} not found")
    example_id, values = _read_npy(path) if is_whole_vector(path) else _read_csv(path)
    if len(np.unique(example_id)) != len(example_id):
        raise InputError(f"{path}: example_id has duplicates")
    if n_examples is not None and len(example_id) and (example_id.min() < 0 or example_id.max() >= n_examples):
        raise InputError(f"{path}: example_id must lie in 0..{n_examples - 1}")
    if len(example_id) and example_id.min() < 0:
        raise InputError(f"{path}: example_id must not be negative")
    return example_id, values


def _read_npy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        values = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, OSError, EOFError... for bad files
        raise InputError(f"cannot read {path} as .npy: {error}") from None
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path} must hold a 1-D numeric vector, got shape {values.shape} of {values.dtype}")
    return np.arange(len(values), dtype=np.int64), values.astype(np.float64)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path} as CSV: {str(error).splitlines()[0]}") from None
    value_columns = [c for c in frame.columns if c != "example_id"]
    if "example_id" not in frame.columns or len(value_columns) != 1:
        raise InputError(f"{path} needs an 'example_id' column and exactly one value column, found {list(frame.columns)}")
    ids = frame["example_id"]
    if not pd.api.types.is_integer_dtype(ids.dtype):
        raise InputError(f"{path}: example_id must be integers")
    values = pd.to_numeric(frame[value_columns[0]], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return ids.to_numpy(dtype=np.int64), values


__all__ = ["NPY_SUFFIX", "is_whole_vector", "read_score_vector"]
