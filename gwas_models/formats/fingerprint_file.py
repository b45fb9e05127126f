"""Fingerprint files: the fitted fingerprint (JSON) and the evaluation table (TSV).

This module knows the files only: it reads and writes a :class:`FingerprintRecord`, plain arrays
and values, and owns the constants of the two formats. Turning a record into a working classifier
(and back) is :meth:`gwas_models.analysis.fingerprint.Fingerprint.from_record` /
:meth:`~gwas_models.analysis.fingerprint.Fingerprint.to_record`; the workflow layer joins the two
(:func:`gwas_models.workflows.fingerprint.load_fingerprint`). Nothing here imports the analysis.

Fingerprint JSON (``gwasm fingerprint --save FP.json``), format version 3::

    {
      "format": "gwasm-fingerprint",
      "format_version": 3,
      "dataset": "cifar10",            the runs' dataset; a fingerprint applies to it only
      "n_examples": 50000,             its number of training examples
      "score": "aum",                  the score whose values are the features
      "higher_is_harder": false,       the score's direction
      "classes": ["resnet20", "vgg16"],   architectures, in class order
      "markers": {
        "example_id": [...],           K marker examples, strongest evidence first
        "neg_log10_p": [...],          their evidence on the runs the fingerprint was fitted on
        "test": "welch"                "welch" (two architectures) or "welch_anova" (more)
      },
      "scaler": {"mean": [...], "scale": [...]},          StandardScaler.mean_, .scale_ (K each)
      "logistic": {
        "coef": [[...]], "intercept": [...],           LogisticRegression.coef_, .intercept_
        "C": 0.316                                     its penalty (null: unpenalised)
      },
      "reference": {                   the out-of-distribution reference (MarkerDistance), or null
        "class_mean": [[...]],         each class's mean of each marker (n_classes x K)
        "scale": [...],                pooled within-class sd of each marker (K)
        "reference_distance": [...],   each training run's distance to its class, left out
        "reference_class": [...]       the class index of each of those runs
      },
      "provenance": {                  runs (seeds per architecture), K, versions, date, ...
        "heldout_accuracy": {...},     held-out accuracy of the procedure that made this
                                       fingerprint, when ``gwasm fingerprint`` saved it (below)
        "penalty": {...},              C and how it was chosen
        ...
      }
    }

``provenance.heldout_accuracy`` (version 3) holds ``mean``, ``sd``, ``low``, ``high`` (the 2.5 and
97.5 percentiles over splits), ``n_splits``, ``n_train_runs``, ``n_heldout_runs``, ``chance``,
``k``, ``selection`` and ``procedure``: :data:`PROCEDURE_CHOSEN` when the score was chosen among
``scores_considered`` inside each split (nested cross-validation: the held-out runs of a split
never took part in the choice; ``chosen_in_splits`` counts how often each score was chosen,
``inner_splits`` the splits of each training part that chose it), or :data:`PROCEDURE_GIVEN`
when the score was named. Either way it is the accuracy of the whole procedure, choice included.

Version 2 has no ``procedure``: its ``heldout_accuracy`` is that of the saved score's own row,
which, when ``gwasm fingerprint`` chose the score as the best of several on the same splits, is
optimistic; it loads as it is. Version 1 (before ``gwasm identify`` knew its limits) has no
``logistic.C`` and no ``reference``; it still loads, as an unpenalised fingerprint without a
reference (and, in practice, without ``provenance.heldout_accuracy``): its probabilities are those
of the unpenalised fit and it never answers "none of these". Saving always writes the current
version. A file of a later version than this code knows is refused in one line that says to
upgrade gwas-models.

``json`` writes floats with ``repr``, which round-trips float64 exactly, so a reloaded fingerprint
predicts bit for bit what the fitted one did. Reading validates every field's type and reports
the first problem as one :class:`~gwas_models.errors.ResultsError` line naming the file; whether
the parts make one classifier is checked when the record becomes a fingerprint.

Evaluation TSV (``<prefix>.tsv``): the columns :data:`SUMMARY_COLUMNS`, missing values written as
``NA``; one row per score and marker selection (descriptive), and, when several scores were
evaluated, the row ``SCORE =`` :data:`SCORE_CHOSEN_PER_SPLIT`: the score chosen inside each split,
the headline. Tables written before ``CHOSEN`` existed still read.

Score vectors of single runs are read by :mod:`gwas_models.formats.score_vector`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from gwas_models.errors import InputError, ResultsError
from gwas_models.formats.atomic import write_text_atomic

FORMAT_NAME = "gwasm-fingerprint"
FORMAT_VERSION = 3
#: Every format version that :func:`read_fingerprint` reads.
READABLE_VERSIONS: tuple[int, ...] = (1, 2, 3)
NA_REP = "NA"
# The numbers that identify prints from provenance.heldout_accuracy, so they must be there and numeric.
_HELDOUT_NUMBERS = ("mean", "low", "high")
_HELDOUT_COUNTS = ("n_splits", "n_train_runs", "n_heldout_runs")

#: ``markers.test``: Welch's t-test (two architectures) or Welch's one-way ANOVA (three or more).
PAIR_TEST = "welch"
MULTI_TEST = "welch_anova"
EVIDENCE_TESTS: tuple[str, ...] = (PAIR_TEST, MULTI_TEST)

#: ``heldout_accuracy.procedure`` of a fingerprint whose score was chosen inside each split.
PROCEDURE_CHOSEN = "score chosen inside each split"
#: ``heldout_accuracy.procedure`` of a fingerprint whose score was named: nothing chosen.
PROCEDURE_GIVEN = "score given"
PROCEDURES: tuple[str, ...] = (PROCEDURE_CHOSEN, PROCEDURE_GIVEN)

#: ``SCORE`` of the evaluation row of the whole procedure that chooses the score inside each split.
SCORE_CHOSEN_PER_SPLIT = "chosen_per_split"
#: Columns of the evaluation summary (the ``<prefix>.tsv`` that ``gwasm fingerprint`` writes).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "SCORE",
    "SELECT",
    "K",
    "MEAN_ACCURACY",
    "SD",
    "LOW",
    "HIGH",
    "N_SPLITS",
    "N_DRAWS",
    "N_TRAIN_RUNS",
    "N_HELDOUT_RUNS",
    "CHANCE",
    "ARCHS",
    "CHOSEN",
)
#: Columns that tables of earlier versions lack; read as missing.
_LATER_COLUMNS: tuple[str, ...] = ("CHOSEN",)


@dataclass(frozen=True, eq=False)
class FingerprintRecord:
    """What a fingerprint file holds, as plain values and arrays (no classifier).

    Attributes
    ----------
    dataset, n_examples, score, higher_is_harder, classes
        As in the JSON.
    marker_ids : int array (K,)
    marker_neg_log10_p : float array (K,)
        NaN where the file has null.
    evidence_test : {"welch", "welch_anova"}
    scaler_mean, scaler_scale : float arrays (K,)
    coef : float array (1 or n_classes, K)
    intercept : float array (1 or n_classes,)
    penalty : float or None
        The logistic regression's ``C``; None: unpenalised.
    reference : dict of arrays or None
        ``class_mean``, ``scale``, ``reference_distance``, ``reference_class``.
    provenance : dict
    format_version : int
        The version read (or to write: always :data:`FORMAT_VERSION` when saving).
    """

    dataset: str
    n_examples: int
    score: str
    higher_is_harder: bool
    classes: tuple[str, ...]
    marker_ids: np.ndarray
    marker_neg_log10_p: np.ndarray
    evidence_test: str
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    penalty: float | None = None
    reference: dict[str, np.ndarray] | None = None
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


# --------------------------------------------------------------------------------------------
# Fingerprint JSON
# --------------------------------------------------------------------------------------------


def record_to_dict(record: FingerprintRecord) -> dict[str, Any]:
    """The JSON document of a fingerprint record, in the current version (plain JSON types)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dataset": record.dataset,
        "n_examples": int(record.n_examples),
        "score": record.score,
        "higher_is_harder": bool(record.higher_is_harder),
        "classes": list(record.classes),
        "markers": {
            "example_id": np.asarray(record.marker_ids).tolist(),
            "neg_log10_p": [_finite_or_none(v) for v in np.asarray(record.marker_neg_log10_p, dtype=np.float64).tolist()],
            "test": record.evidence_test,
        },
        "scaler": {"mean": np.asarray(record.scaler_mean).tolist(), "scale": np.asarray(record.scaler_scale).tolist()},
        "logistic": {
            "coef": np.asarray(record.coef).tolist(),
            "intercept": np.asarray(record.intercept).tolist(),
            "C": None if record.penalty is None else _finite_or_none(float(record.penalty)),
        },
        "reference": None if record.reference is None else {name: np.asarray(value).tolist() for name, value in record.reference.items()},
        "provenance": _plain(record.provenance),
    }


def write_fingerprint(record: FingerprintRecord, path: str | os.PathLike) -> Path:
    """Write a fingerprint record as JSON, atomically; returns the path.

    Raises
    ------
    InputError
        When ``provenance.heldout_accuracy`` is not one that :func:`read_fingerprint` would read back.
    """
    try:
        _check_heldout_accuracy(record.provenance.get("heldout_accuracy"), str(path))
    except ResultsError as error:
        raise InputError(str(error)) from None
    text = json.dumps(record_to_dict(record), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def read_fingerprint(path: str | os.PathLike) -> FingerprintRecord:
    """Read a fingerprint JSON file and check the type of every field.

    Raises
    ------
    ResultsError
        One line naming the file and its first problem: missing, unreadable, not JSON, another
        format or version, a missing or mistyped field.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"fingerprint file {path} not found")
    try:
        payload = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is not a gwasm fingerprint: not a text file") from None
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path} is not a gwasm fingerprint: invalid JSON ({error.msg} at line {error.lineno})") from None
    return record_from_dict(payload, source=str(path))


def record_from_dict(payload: Any, source: str = "fingerprint") -> FingerprintRecord:
    """A :class:`FingerprintRecord` from its parsed JSON document, every field's type checked.

    Parameters
    ----------
    payload : object
        The parsed JSON.
    source : str
        Name used in error messages (the file path).
    """
    reader = _Reader(source)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ResultsError(f"{source} is not a gwasm fingerprint (no \"format\": \"{FORMAT_NAME}\")")
    version = _check_version(payload.get("format_version"), source)
    markers = reader.mapping(payload, "markers")
    scaler = reader.mapping(payload, "scaler")
    logistic = reader.mapping(payload, "logistic")
    test = reader.string(markers, "test", "markers.test")
    if test not in EVIDENCE_TESTS:
        raise ResultsError(f"{source}: markers.test must be one of {', '.join(EVIDENCE_TESTS)}, got {test!r}")
    provenance = payload.get("provenance", {})
    if not isinstance(provenance, dict):
        raise ResultsError(f"{source}: provenance must be an object")
    _check_heldout_accuracy(provenance.get("heldout_accuracy"), source, version)
    # Version 1 predates the penalty and the reference: unpenalised, no reference.
    penalty = reader.optional_number(logistic, "C", "logistic.C") if version >= 2 else None
    reference = _read_reference(reader, payload) if version >= 2 else None
    return FingerprintRecord(
        dataset=reader.string(payload, "dataset"),
        n_examples=reader.integer(payload, "n_examples"),
        score=reader.string(payload, "score"),
        higher_is_harder=reader.boolean(payload, "higher_is_harder"),
        classes=tuple(reader.strings(payload, "classes")),
        marker_ids=reader.integers(markers, "example_id", "markers.example_id"),
        marker_neg_log10_p=reader.numbers(markers, "neg_log10_p", "markers.neg_log10_p", allow_null=True),
        evidence_test=test,
        scaler_mean=reader.numbers(scaler, "mean", "scaler.mean"),
        scaler_scale=reader.numbers(scaler, "scale", "scaler.scale"),
        coef=reader.matrix(logistic, "coef", "logistic.coef"),
        intercept=reader.numbers(logistic, "intercept", "logistic.intercept"),
        penalty=None if penalty is None else float(penalty),
        reference=reference,
        provenance=provenance,
        format_version=version,
    )


def _check_version(version: Any, source: str) -> int:
    """The format version, or a one-line :class:`ResultsError` for one this code cannot read."""
    if isinstance(version, int) and not isinstance(version, bool) and version in READABLE_VERSIONS:
        return version
    newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
    hint = ": it was written by a newer gwasm, upgrade gwas-models to read it" if newer else ""
    readable = ", ".join(str(v) for v in READABLE_VERSIONS)
    raise ResultsError(f"{source}: fingerprint format version {version!r} is not supported (this gwasm reads versions {readable}){hint}")


def _read_reference(reader: "_Reader", payload: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The ``reference`` object's arrays, or None when it is null."""
    if reader.get(payload, "reference") is None:
        return None
    reference = reader.mapping(payload, "reference")
    return {
        "class_mean": reader.matrix(reference, "class_mean", "reference.class_mean"),
        "scale": reader.numbers(reference, "scale", "reference.scale"),
        "reference_distance": reader.numbers(reference, "reference_distance", "reference.reference_distance"),
        "reference_class": reader.integers(reference, "reference_class", "reference.reference_class"),
    }


def _check_heldout_accuracy(record: Any, source: str, version: int = FORMAT_VERSION) -> None:
    """Raise :class:`ResultsError` unless ``provenance.heldout_accuracy`` is absent or well formed.

    From version 3 on it must say which ``procedure`` it measured (see the module docstring).
    """
    if record is None:
        return
    field = "provenance.heldout_accuracy"
    if not isinstance(record, dict):
        raise ResultsError(f"{source}: field {field!r} must be an object")
    for key in _HELDOUT_NUMBERS:
        value = record.get(key)
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise ResultsError(f"{source}: field '{field}.{key}' must be a number from 0 to 1")
    for key in _HELDOUT_COUNTS:
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ResultsError(f"{source}: field '{field}.{key}' must be a positive integer")
    if version >= 3 and record.get("procedure") not in PROCEDURES:
        raise ResultsError(f"{source}: field '{field}.procedure' must be one of {', '.join(repr(p) for p in PROCEDURES)}")


class _Reader:
    """Typed field access with one-line errors naming the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _get(self, mapping: Mapping[str, Any], key: str, name: str | None) -> Any:
        if key not in mapping:
            raise ResultsError(f"{self.source}: field {name or key!r} is missing")
        return mapping[key]

    def get(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> Any:
        """The value of a field that must be present (it may be null)."""
        return self._get(mapping, key, name)

    def optional_number(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> float | None:
        value = self._get(mapping, key, name)
        if value is not None and not _is_number(value):
            raise self._fail(name or key, "a number or null")
        return value

    def _fail(self, name: str, expected: str) -> ResultsError:
        return ResultsError(f"{self.source}: field {name!r} must be {expected}")

    def mapping(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> dict:
        value = self._get(mapping, key, name)
        if not isinstance(value, dict):
            raise self._fail(name or key, "an object")
        return value

    def string(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> str:
        value = self._get(mapping, key, name)
        if not isinstance(value, str) or not value:
            raise self._fail(name or key, "a non-empty string")
        return value

    def integer(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> int:
        value = self._get(mapping, key, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(name or key, "an integer")
        return value

    def boolean(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> bool:
        value = self._get(mapping, key, name)
        if not isinstance(value, bool):
            raise self._fail(name or key, "true or false")
        return value

    def strings(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> list[str]:
        value = self._get(mapping, key, name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(name or key, "a list of non-empty strings")
        return value

    def integers(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> np.ndarray:
        value = self._get(mapping, key, name)
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self._fail(name or key, "a list of integers")
        return np.asarray(value, dtype=np.int64)

    def numbers(self, mapping: Mapping[str, Any], key: str, name: str | None = None, allow_null: bool = False) -> np.ndarray:
        value = self._get(mapping, key, name)
        if not isinstance(value, list) or not all(_is_number(v) or (allow_null and v is None) for v in value):
            raise self._fail(name or key, "a list of numbers")
        return np.asarray([np.nan if v is None else v for v in value], dtype=np.float64)

    def matrix(self, mapping: Mapping[str, Any], key: str, name: str | None = None) -> np.ndarray:
        value = self._get(mapping, key, name)
        rows_ok = isinstance(value, list) and value and all(isinstance(r, list) and all(_is_number(v) for v in r) for r in value)
        if not rows_ok or len({len(r) for r in value}) != 1:
            raise self._fail(name or key, "a list of equally long lists of numbers")
        return np.asarray(value, dtype=np.float64)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: an untested marker's evidence is written as null."""
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """Provenance as JSON types (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Evaluation TSV
# --------------------------------------------------------------------------------------------


def write_evaluation(summary: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the evaluation summary as TSV, atomically; returns the path."""
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise InputError(f"the evaluation summary lacks column(s) {', '.join(missing)}")
    text = summary[list(SUMMARY_COLUMNS)].to_csv(sep="\t", index=False, na_rep=NA_REP, float_format="%.6g", lineterminator="\n")
    return write_text_atomic(path, text)


def read_evaluation(path: str | os.PathLike) -> pd.DataFrame:
    """Read an evaluation TSV written by :func:`write_evaluation` (checks its columns)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"fingerprint evaluation {path} not found")
    try:
        table = pd.read_csv(path, sep="\t", na_values=[NA_REP], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path} is not a fingerprint evaluation table: {str(error).splitlines()[0]}") from None
    missing = [c for c in SUMMARY_COLUMNS if c not in table.columns and c not in _LATER_COLUMNS]
    if missing:
        raise ResultsError(f"{path} lacks column(s) {', '.join(missing)}; write it with `gwasm fingerprint`")
    for column in _LATER_COLUMNS:  # a table written before the column existed
        if column not in table.columns:
            table[column] = np.nan
    return table


__all__ = [
    "EVIDENCE_TESTS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FingerprintRecord",
    "MULTI_TEST",
    "PAIR_TEST",
    "PROCEDURES",
    "PROCEDURE_CHOSEN",
    "PROCEDURE_GIVEN",
    "READABLE_VERSIONS",
    "SCORE_CHOSEN_PER_SPLIT",
    "SUMMARY_COLUMNS",
    "read_evaluation",
    "read_fingerprint",
    "record_from_dict",
    "record_to_dict",
    "write_evaluation",
    "write_fingerprint",
]
