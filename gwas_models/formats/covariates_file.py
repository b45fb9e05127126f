"""Run covariate files: a table of values per training run, for covariate-adjusted associations.

The file is CSV (``.csv``) or TSV (``.tsv``, ``.tab``, ``.txt``; any other name: the delimiter of
its header line, tab or comma), with a header: ``arch``, ``seed``, then one or more covariate
columns, one row per run (the architecture label and seed as in the run store)::

    arch,seed,accuracy,batch
    resnet20,0,0.912,b1
    resnet20,1,0.907,b2
    vgg16,0,0.931,b1

A column of numbers is a numeric covariate; a column of words a categorical one (see
:class:`~gwas_models.analysis.covariates.RunCovariates`, which checks and encodes the table).
``NA``, ``NaN`` and empty cells are missing values, which are refused there.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from gwas_models.errors import InputError

#: File name endings read as tab-separated.
TSV_SUFFIXES: tuple[str, ...] = (".tsv", ".tab", ".txt")


def read_covariates_table(path: str | os.PathLike) -> pd.DataFrame:
    """The table of a run covariate file, as written (checked and encoded by
    :meth:`~gwas_models.analysis.covariates.RunCovariates.from_frame`).

    Parameters
    ----------
    path : path
        A CSV or TSV file with a header line (see the module's notes).

    Returns
    -------
    DataFrame
        Its columns as read; ``arch`` as text.

    Raises
    ------
    InputError
        The file does not exist, is not a file, is empty, or cannot be parsed as a table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"covariates file {path} does not exist" if not path.exists() else f"covariates file {path} is not a file", parameter="covariates")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"covariates file {path} cannot be read: {error}", parameter="covariates") from error
    if not header.strip():
        raise InputError(f"covariates file {path} is empty: it needs a header line arch,seed,<covariates>", parameter="covariates")
    if path.suffix.lower() == ".csv":
        separator = ","
    elif path.suffix.lower() in TSV_SUFFIXES:
        separator = "\t"
    else:
        separator = "\t" if "\t" in header else ","
    try:
        table = pd.read_csv(path, sep=separator, dtype={"arch": str}, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"covariates file {path} is not a readable table: {str(error).splitlines()[0]}", parameter="covariates") from error
    if table.empty:
        raise InputError(f"covariates file {path} has a header but no row", parameter="covariates")
    return table
