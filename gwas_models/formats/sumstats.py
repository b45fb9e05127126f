"""Summary statistics files: how association tables are written, found and read back.

Files of one comparison share a stem, ``<prefix>.<A>_vs_<B>`` (three or more architectures:
``<prefix>.<A>_vs_<B>_vs_<C>...``), with architecture names made safe for file names by
:func:`safe_name`:

``<stem>.sumstats.parquet``
    The long table: every score and the combined rows, for pandas, pyarrow, polars and DuckDB.
    ``P`` and the adjusted p are float64 there (0 below about 1e-308); ``NEG_LOG10_P`` holds every
    p exactly. Its schema metadata may hold, under the key ``gwasm``, a JSON object that says where
    the table came from (store, dataset, architectures, scores); see :func:`read_sumstats_metadata`.
``<stem>.<score>.sumstats.tsv``
    One per score, ``combined`` (and ``combined_pairs``) rows included, as PLINK 2 writes one file
    per phenotype: one association per example, so a GWAS tool reads it as it is. Tab-separated,
    header line starting with ``#CHROM``, missing numbers as ``NA`` and missing text as ``.``
    (PLINK 2's conventions), floats at full precision, ``P`` and the adjusted p written from log
    space where float64 cannot hold them (never 0 for a finite statistic). The score's part of the
    name has no dot (:func:`score_file_name`), so :func:`comparison_stem_of` finds the stem.
``<stem>.log``
    What was run, on which runs, λGC, counts of significant examples, warnings.
``<stem>.gwas-ssf.tsv`` (or ``<stem>.<score>.gwas-ssf.tsv`` when several scores are written)
    The GWAS Catalog summary-statistics layout (GWAS-SSF v1.0) of one score, with a
    ``.tsv-meta.yaml`` beside it; see :func:`to_gwas_ssf` for the stand-ins.

Columns: see :mod:`gwas_models.formats.sumstats_schema`. Every file is written under a temporary
hidden name and renamed into place only after all of them were written, so a failure never leaves
a half-written or partial set of files. Files of older versions (one TSV of every score,
``<stem>.sumstats.tsv``, missing numbers as ``.``) are still read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gwas_models.errors import InputError, ResultsError
from gwas_models.formats.atomic import ensure_directory, temporary_name, write_all_atomic
from gwas_models.formats.results import DEFAULT_RESULTS_DIR
from gwas_models.formats.sumstats_schema import (
    ADJUSTED_OF_LOG_COLUMN,
    INTEGER_COLUMNS,
    MISSING,
    MISSING_NUMBER,
    REQUIRED_COLUMNS,
    TESTED_ERRCODES,
    TEXT_COLUMNS,
)

TSV_SUFFIX = ".sumstats.tsv"
PARQUET_SUFFIX = ".sumstats.parquet"
LOG_SUFFIX = ".log"
SSF_SUFFIX = ".gwas-ssf.tsv"
SSF_META_SUFFIX = "-meta.yaml"
#: File layouts: ``plink`` (per-score TSVs + Parquet + log), ``gwas-ssf`` (also the GWAS Catalog layout).
OUTPUT_FORMATS: tuple[str, ...] = ("plink", "gwas-ssf")
#: Key of the Parquet schema metadata that holds where a table came from (JSON).
METADATA_KEY = b"gwasm"

#: GWAS-SSF mandatory columns, in their mandatory order.
SSF_COLUMNS: tuple[str, ...] = (
    "chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
    "effect_allele_frequency", "p_value",
)  # fmt: skip

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_UNSAFE_OR_DOT = re.compile(r"[^A-Za-z0-9_+-]")
_SSF_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")  # GWAS-SSF's variant_id pattern: ^[A-Za-z0-9_]+$
_MAX_NAME = 80
# Below the smallest normal double, float64 p is subnormal (few digits) or 0: p is written from
# NEG_LOG10_P as mantissa and exponent. Above it, the float itself, at full precision.
_TEXT_P_BELOW = float(np.finfo(np.float64).tiny)
# Adjusted-p column -> the column of its -log10, computed by the study in log space.
_LOG_COLUMN_OF = {column: log_column for log_column, column in ADJUSTED_OF_LOG_COLUMN.items()}


# --------------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------------


def safe_name(name: str, *, dots: bool = True) -> str:
    """A file-name-safe form of an architecture, dataset or score name.

    Characters other than letters, digits and ``. _ + -`` (without ``.`` when ``dots`` is False)
    become ``_`` and leading dots or dashes are dropped (no hidden files, nothing that reads as an
    option). When anything had to change, or the name is long, a short hash of the original is
    appended, so two names that differ only in unsafe characters (``pkg.mod:f`` and
    ``pkg.mod_f``) still get different files.

    Examples
    --------
    >>> safe_name("resnet20")
    'resnet20'
    >>> safe_name("pkg.models:factory").startswith("pkg.models_factory-")
    True
    """
    name = str(name)
    cleaned = (_UNSAFE if dots else _UNSAFE_OR_DOT).sub("_", name).lstrip(".-") or "_"
    if cleaned != name or len(cleaned) > _MAX_NAME:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
        cleaned = f"{cleaned[:_MAX_NAME]}-{digest}"
    return cleaned


def score_file_name(score: str) -> str:
    """The part of a per-score file name that names the score: :func:`safe_name` without dots, so
    that the comparison's stem is what is left before it.

    Examples
    --------
    >>> score_file_name("loss"), score_file_name("combined")
    ('loss', 'combined')
    """
    return safe_name(score, dots=False)


def comparison_stem(prefix: str | os.PathLike, archs: Sequence[str]) -> Path:
    """``<prefix>.<A>_vs_<B>[_vs_<C>...]``: the path of a comparison's files, without suffix."""
    if len(archs) < 2:
        raise InputError(f"a comparison needs at least two architectures, got {list(archs)}")
    prefix = Path(prefix)
    joined = "_vs_".join(safe_name(a) for a in archs)
    if len(joined) > 150:  # keep file names under common 255-byte limits
        digest = hashlib.sha1("\0".join(archs).encode("utf-8")).hexdigest()[:8]
        joined = f"{joined[:120]}-{len(archs)}archs-{digest}"
    return prefix.with_name(f"{prefix.name}.{joined}")


def score_tsv_path(stem: Path, score: str) -> Path:
    """``<stem>.<score>.sumstats.tsv``: the TSV of one score of a comparison."""
    return stem.with_name(f"{stem.name}.{score_file_name(score)}{TSV_SUFFIX}")


@dataclass(frozen=True)
class SumstatsPaths:
    """Files written for one comparison.

    Attributes
    ----------
    parquet : Path
        The long table (every score).
    tsv : mapping score -> Path
        One TSV per score (the combined rows included), in the table's order.
    log : Path or None
    gwas_ssf : tuple of Path
        GWAS-SSF data files (each with its ``-meta.yaml``).
    """

    parquet: Path
    tsv: Mapping[str, Path] = field(default_factory=dict)
    log: Path | None = None
    gwas_ssf: tuple[Path, ...] = ()

    def all(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.parquet, *self.tsv.values(), self.log, *self.gwas_ssf) if p is not None)


# --------------------------------------------------------------------------------------------
# p as text
# --------------------------------------------------------------------------------------------


def _scientific_from_log(neg_log10_p: np.ndarray) -> np.ndarray:
    """``m.mmmme-k`` text of 10**-x, 5 significant digits, from x itself (no float p involved)."""
    exponent = np.ceil(neg_log10_p)
    mantissa = np.round(10.0 ** (exponent - neg_log10_p), 4)  # in [1, 10]: 5 significant digits
    wrapped = mantissa >= 10.0  # 10e-k is 1e-(k-1)
    mantissa = np.where(wrapped, 1.0, mantissa)
    exponent = np.where(wrapped, exponent - 1, exponent).astype(np.int64)
    return np.char.add(np.char.add(np.char.mod("%.5g", mantissa), "e-"), exponent.astype(str))


def _p_text(p: np.ndarray, neg_log10_p: np.ndarray | None) -> pa.Array:
    """p as an Arrow string array (null where p is missing): the float at full precision, or, below
    the smallest normal double where ``neg_log10_p`` is finite, the value written from it."""
    p = np.asarray(p, dtype=np.float64)
    text = pc.cast(pa.array(p, from_pandas=True), pa.string())
    if neg_log10_p is None:
        return text
    neg_log10_p = np.asarray(neg_log10_p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        tiny = np.isfinite(neg_log10_p) & (p < _TEXT_P_BELOW)
    if not tiny.any():
        return text
    return pc.replace_with_mask(text, pa.array(tiny), pa.array(_scientific_from_log(neg_log10_p[tiny]), pa.string()))


def format_p_from_log(p: np.ndarray, neg_log10_p: np.ndarray) -> np.ndarray:
    """p-values as text, taking p below the smallest normal double from -log10 p so that none
    reads as 0 (None where p is missing).

    Examples
    --------
    >>> list(format_p_from_log(np.array([0.5, 0.0]), np.array([0.30103, 400.5])))
    ['0.5', '3.1623e-401']
    """
    return np.asarray(_p_text(p, neg_log10_p).to_numpy(zero_copy_only=False), dtype=object)


def _underflows(p: np.ndarray) -> np.ndarray:
    """Where float64 p is 0 or subnormal: its text must come from log space."""
    with np.errstate(invalid="ignore"):
        return p < _TEXT_P_BELOW


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _score_codes(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Integer code of each row's score, and the names of the codes."""
    score = frame["SCORE"]
    if isinstance(score.dtype, pd.CategoricalDtype):
        return score.cat.codes.to_numpy(), [str(c) for c in score.cat.categories]
    codes, names = pd.factorize(score.astype(str))
    return np.asarray(codes), [str(n) for n in names]


def _rows_by_score(codes: np.ndarray, names: Sequence[str]) -> dict[str, slice | np.ndarray]:
    """Rows of each score, in order of first appearance: a slice where they are consecutive (as a
    study builds its tables, one block per score), else their indices."""
    rows: dict[str, slice | np.ndarray] = {}
    for code in pd.unique(codes):
        index = np.flatnonzero(codes == code)
        consecutive = index[-1] - index[0] + 1 == len(index)
        rows[names[code]] = slice(int(index[0]), int(index[-1]) + 1) if consecutive else index
    return rows


def _text_table(frame: pd.DataFrame, table: pa.Table) -> pa.Table:
    """The Arrow table of the TSV files: text columns as plain strings, ``P`` and adjusted p as text
    from log space where float64 cannot hold them (from ``NEG_LOG10_P`` and the adjusted p's own
    -log10 column, :data:`~gwas_models.formats.sumstats_schema.ADJUST_LOG_COLUMNS`, which the study
    computed; a table without that column has its adjusted p written as the float holds it). Only
    columns that hold such a p are turned into text: the CSV writer formats the others as it
    formats any float; other numbers are written as they are."""
    columns = []
    for name, column in zip(table.column_names, table.columns):
        log_column = "NEG_LOG10_P" if name == "P" else _LOG_COLUMN_OF.get(name)
        if log_column in frame.columns:
            values = frame[name].to_numpy(dtype=np.float64)
            if _underflows(values).any():
                column = _p_text(values, frame[log_column].to_numpy(dtype=np.float64))
        if pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _rows(table: pa.Table, rows: slice | np.ndarray) -> pa.Table:
    if isinstance(rows, slice):
        return table.slice(rows.start, rows.stop - rows.start)  # no copy
    return table.take(pa.array(rows))


def _write_delimited(table: pa.Table, sink: Path | BinaryIO) -> None:
    """Write ``table`` as TSV to a path or an open binary file: floats in their shortest form that
    reads back as the same double, missing values as :data:`MISSING_NUMBER`, text unquoted unless
    it holds a tab, quote or newline.

    Polars' CSV writer formats on every core, about twice as fast as Arrow's per value: formatting
    floats is nearly all the cost of a large TSV (a million examples: 17 float columns).
    """
    # Imported here: polars costs every other reader of this module a tenth of a second.
    import polars as pl

    pl.DataFrame(table).write_csv(sink, separator="\t", null_value=MISSING_NUMBER, quote_style="necessary")


def _delimited_bytes(table: pa.Table) -> bytes:
    """The TSV text of ``table`` (see :func:`_write_delimited`) as bytes."""
    sink = io.BytesIO()
    _write_delimited(table, sink)
    return sink.getvalue()


def _write_parquet(table: pa.Table, path: Path) -> None:
    """The long table as Parquet: dictionary encoding and statistics for the key and text columns
    only (floats gain nothing from either, and they cost a third of the write)."""
    keyed = [name for name, kind in zip(table.column_names, table.schema.types) if not pa.types.is_floating(kind)]
    dictionaries = [name for name, kind in zip(table.column_names, table.schema.types) if pa.types.is_dictionary(kind)]
    pq.write_table(table, path, use_dictionary=dictionaries, write_statistics=keyed)


def _with_metadata(table: pa.Table, metadata: Mapping[str, object] | None) -> pa.Table:
    """``table`` with ``metadata`` as JSON under :data:`METADATA_KEY` (pandas' own metadata kept)."""
    if metadata is None:
        return table
    merged = dict(table.schema.metadata or {})
    merged[METADATA_KEY] = json.dumps(dict(metadata), sort_keys=True).encode("utf-8")
    return table.replace_schema_metadata(merged)


def _check_table(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"not a sumstats table: missing columns {', '.join(missing)}")


def write_sumstats(
    frame: pd.DataFrame,
    prefix: str | os.PathLike,
    a: str,
    b: str,
    *more_archs: str,
    log_text: str | None = None,
    gwas_ssf_scores: Sequence[str] = (),
    ssf_metadata: Mapping[str, object] | None = None,
    metadata: Mapping[str, object] | None = None,
) -> SumstatsPaths:
    """Write one comparison's table: the long Parquet table, one TSV per score (plus its log and
    GWAS-SSF files).

    Parameters
    ----------
    frame : DataFrame
        A sumstats table (see :mod:`gwas_models.formats.sumstats_schema`).
    prefix : path
        Output prefix; its directory is created when missing.
    a, b, *more_archs : str
        The architectures compared, in order; they name the files.
    log_text : str, optional
        Content of the ``.log`` file (none written when omitted).
    gwas_ssf_scores : sequence of str
        Scores to also write in GWAS-SSF layout (pair tables only). One score gives
        ``<stem>.gwas-ssf.tsv``; several give ``<stem>.<score>.gwas-ssf.tsv`` each.
    ssf_metadata : mapping, optional
        Extra ``key: value`` pairs for the GWAS-SSF metadata files.
    metadata : mapping, optional
        Where the table came from (e.g. ``store``, ``dataset``, ``archs``, ``scores``), JSON-ready;
        kept in the Parquet file's schema metadata, read back by :func:`read_sumstats_metadata`.

    Returns
    -------
    SumstatsPaths
    """
    _check_table(frame)
    archs = (a, b, *more_archs)
    stem = comparison_stem(prefix, archs)
    ssf_files: dict[Path, tuple[bytes, str]] = {}
    ssf_scores = list(dict.fromkeys(gwas_ssf_scores))
    for score in ssf_scores:
        name = f"{stem.name}{SSF_SUFFIX}" if len(ssf_scores) == 1 else f"{stem.name}.{score_file_name(score)}{SSF_SUFFIX}"
        ssf = to_gwas_ssf(frame, score)
        data = _delimited_bytes(pa.Table.from_pandas(ssf, preserve_index=False))
        ssf_files[stem.with_name(name)] = (data, _ssf_metadata_yaml(ssf, name, data, archs[:2], ssf_metadata or {}))
    ensure_directory(stem.parent, "results", ResultsError)

    table = pa.Table.from_pandas(frame, preserve_index=False)
    codes, names = _score_codes(frame)
    by_score = _rows_by_score(codes, names)
    text = _text_table(frame, table)
    paths = SumstatsPaths(
        parquet=stem.with_name(stem.name + PARQUET_SUFFIX),
        tsv={score: score_tsv_path(stem, score) for score in by_score},
        log=stem.with_name(stem.name + LOG_SUFFIX) if log_text is not None else None,
        gwas_ssf=tuple(ssf_files),
    )
    files: dict[Path, Callable[[Path], None]] = {}
    for score, rows in by_score.items():
        files[paths.tsv[score]] = lambda path, rows=rows: _write_delimited(_rows(text, rows), path)
    if paths.log is not None:
        files[paths.log] = lambda path: path.write_text(log_text)
    for path, (data, meta) in ssf_files.items():
        files[path] = lambda target, data=data: target.write_bytes(data)
        files[path.with_name(path.name + SSF_META_SUFFIX)] = lambda target, meta=meta: target.write_text(meta)
    # The Parquet file is written on a thread of its own while the TSVs are formatted (both
    # release the GIL), and renamed into place last: it marks the comparison as written
    # (latest_sumstats goes by it).
    parquet_draft = temporary_name(paths.parquet)
    with ThreadPoolExecutor(1) as background:
        parquet = background.submit(_write_parquet, _with_metadata(table, metadata), parquet_draft)
        files[paths.parquet] = lambda path: (parquet.result(), os.replace(parquet_draft, path))
        try:
            write_all_atomic(files)
        finally:
            wait([parquet])
            parquet_draft.unlink(missing_ok=True)
    return paths


# --------------------------------------------------------------------------------------------
# GWAS-SSF
# --------------------------------------------------------------------------------------------


def to_gwas_ssf(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    """One score of a pair table in the GWAS Catalog summary-statistics layout (GWAS-SSF v1.0).

    Stand-ins for the genetic fields: ``chromosome`` = class index + 1 (GWAS-SSF counts from 1;
    its validators accept 1-25, so datasets with more classes go beyond the catalog's range),
    ``base_pair_location`` = POS, ``effect_allele`` = B and ``other_allele`` = A (beta =
    mean(B) - mean(A)), ``effect_allele_frequency`` = NA, ``variant_id`` =
    ``<chromosome>_<position>_<A>_<B>`` (characters other than letters, digits and ``_`` as
    ``_``, the catalog's pattern), ``n`` = runs used. Extra columns: ``neg_log_10_p_value`` (so
    that a reader that parses ``p_value`` as a double still gets p below 1e-308), ``example_id``,
    ``class_name``, ``score``. Only tested examples (ERRCODE '.', or SEPARATED with its exact
    permutation p) are kept, since GWAS-SSF requires a p-value on every row; p below the smallest
    double is written from -log10 p, never as 0.

    Validated by the GWAS Catalog's ``gwas-ssf validate``: everything passes but the rules that
    cannot apply to training examples (all of chromosomes 1-22, nucleotide alleles, an allele
    frequency).

    Raises
    ------
    InputError
        When the table is not a pair table or lacks the score.
    """
    needed = ("A", "B", "LABEL", "BETA", "SE", "N_A", "N_B")
    if any(column not in frame.columns for column in needed):
        raise InputError("GWAS-SSF output needs a two-architecture table (columns A, B, BETA, SE)")
    scores = frame["SCORE"].astype(str)
    if score not in set(scores):
        raise InputError(f"score {score!r} is not in the table; scores there: {', '.join(dict.fromkeys(scores))}")
    rows = frame[(scores == score).to_numpy() & frame["ERRCODE"].astype(str).isin(TESTED_ERRCODES).to_numpy()]
    rows = rows.sort_values(["LABEL", "POS"], kind="stable")
    chromosome = rows["LABEL"].to_numpy(dtype=np.int64) + 1
    position = rows["POS"].to_numpy(dtype=np.int64)
    a, b = rows["A"].astype(str).to_numpy(), rows["B"].astype(str).to_numpy()
    neg_log10_p = rows["NEG_LOG10_P"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "chromosome": chromosome,
            "base_pair_location": position,
            "effect_allele": b,
            "other_allele": a,
            "beta": rows["BETA"].to_numpy(dtype=np.float64),
            "standard_error": rows["SE"].to_numpy(dtype=np.float64),
            "effect_allele_frequency": np.full(len(rows), np.nan),
            "p_value": format_p_from_log(rows["P"].to_numpy(), neg_log10_p),
            "variant_id": _join_text(chromosome.astype(str), position.astype(str), _ssf_id_part(a), _ssf_id_part(b)),
            "n": (rows["N_A"].to_numpy() + rows["N_B"].to_numpy()).astype(np.int64),
            "neg_log_10_p_value": neg_log10_p,
            "example_id": rows["ID"].to_numpy(dtype=np.int64),
            "class_name": rows["#CHROM"].astype(str).to_numpy(),
            "score": np.full(len(rows), score, dtype=object),
        }
    )


def _ssf_id_part(names: np.ndarray) -> np.ndarray:
    """Architecture names in a GWAS-SSF ``variant_id``: only letters, digits and ``_``."""
    unique, inverse = np.unique(names.astype(str), return_inverse=True)
    return np.asarray([_SSF_ID_UNSAFE.sub("_", name) for name in unique], dtype=object)[inverse]


def _join_text(*parts: np.ndarray) -> np.ndarray:
    joined = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, "_"), np.asarray(part, dtype=str))
    return joined.astype(object)


def _ssf_metadata_yaml(ssf: pd.DataFrame, data_name: str, data: bytes, archs: Sequence[str], extra: Mapping[str, object]) -> str:
    """The ``-meta.yaml`` of a GWAS-SSF file, with the fields of the GWAS Catalog's metadata
    schema (``date_metadata_last_modified``, ``data_file_md5sum`` of ``data``, ``samples``)."""
    score = str(ssf["score"].iloc[0]) if len(ssf) else ""
    sample_size = int(ssf["n"].max()) if len(ssf) else 0
    not_applicable = "NA (trained models)"
    fields = {
        "date_metadata_last_modified": datetime.now(timezone.utc).date(),
        "trait_description": [f"difficulty score {score}: {archs[1]} (effect allele) vs {archs[0]} (other allele)"],
        "genome_assembly": "NA (training set: chromosome = class index + 1, base_pair_location = order in class)",
        "coordinate_system": "1-based",
        "genotyping_technology": [not_applicable],
        "samples": [
            {
                "sample_size": sample_size,
                "sample_ancestry_category": [not_applicable],
                "sample_ancestry": [not_applicable],
                "case_control_study": False,
            }
        ],
        "data_file_name": data_name,
        "file_type": "GWAS-SSF v1.0",
        "data_file_md5sum": hashlib.md5(data).hexdigest(),
        "analysis_software": "gwas-models (p below 1e-308 computed in log space; see neg_log_10_p_value)",
        "is_harmonised": False,
        "is_sorted": True,
        **dict(extra),
    }
    return "".join(_yaml_lines(key, value) for key, value in fields.items())


def _yaml_scalar(item: object) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float, date)):
        return item.isoformat() if isinstance(item, date) else str(item)
    return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_lines(key: str, value: object, indent: str = "") -> str:
    """Block-style YAML of ``key: value`` for scalars, lists of scalars and lists of mappings."""
    if not isinstance(value, (list, tuple)):
        return f"{indent}{key}: {_yaml_scalar(value)}\n"
    text = f"{indent}{key}:\n"
    for item in value:
        if isinstance(item, Mapping):
            entry = "".join(_yaml_lines(k, v, indent + "    ") for k, v in item.items())
            text += indent + "  - " + entry[len(indent) + 4 :]
        else:
            text += f"{indent}  - {_yaml_scalar(item)}\n"
    return text


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_sumstats(path: str | os.PathLike) -> pd.DataFrame:
    """Read a sumstats table written by :func:`write_sumstats` (TSV or Parquet).

    Text columns come back as strings ('.' when missing), integer columns as int64, the others as
    float64 (NaN when missing, written ``NA``, or ``.`` by older versions), whichever of the two
    formats is read. A per-score TSV holds the rows of its score only; the Parquet file, every
    score. p written from log space below the smallest double reads as 0 here: ``NEG_LOG10_P``
    holds its value.

    Raises
    ------
    ResultsError
        One-line message when the file is missing, unreadable, of another format, or lacks a
        required column (:data:`REQUIRED_COLUMNS`).
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"sumstats file {path} not found", missing_step="associate")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
        elif name.endswith((".tsv", ".tsv.gz", ".txt")):
            frame = _read_tsv(path)
        else:
            raise ResultsError(f"{path} is neither a .tsv nor a .parquet sumstats file")
    except ResultsError:
        raise
    except (OSError, ValueError, pa.ArrowException) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ResultsError(f"cannot read sumstats file {path}: {message}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path} is not a sumstats table: missing column(s) {', '.join(missing)}")
    return _normalise_types(frame)


def read_sumstats_metadata(path: str | os.PathLike) -> dict[str, object]:
    """Where a sumstats table came from, as :func:`write_sumstats` recorded it (``metadata``).

    Parameters
    ----------
    path : path
        A ``.sumstats.parquet`` file, or a ``.sumstats.tsv`` file whose Parquet copy (same stem)
        holds the metadata.

    Returns
    -------
    dict
        The recorded mapping; empty when nothing was recorded (files of older versions, a TSV
        without its Parquet copy).

    Raises
    ------
    ResultsError
        When ``path`` is missing, or its Parquet copy cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"sumstats file {path} not found", missing_step="associate")
    parquet = path if path.name.lower().endswith(".parquet") else path.with_name(comparison_stem_of(path) + PARQUET_SUFFIX)
    if not parquet.is_file():
        return {}
    try:
        recorded = (pq.read_schema(parquet).metadata or {}).get(METADATA_KEY)
        return dict(json.loads(recorded)) if recorded else {}
    except (OSError, ValueError, TypeError, pa.ArrowException) as error:
        raise ResultsError(f"cannot read the metadata of sumstats file {parquet}: {error}") from None


def _read_tsv(path: Path) -> pd.DataFrame:
    with pd.io.common.get_handle(path, "r", compression="infer") as handle:
        header = handle.handle.readline().rstrip("\n").split("\t")
    text = {c: str for c in header if c in TEXT_COLUMNS}
    numeric = {c: [MISSING_NUMBER, MISSING] for c in header if c not in TEXT_COLUMNS}
    return pd.read_csv(path, sep="\t", dtype=text, na_values=numeric, keep_default_na=False, engine="c")


def _normalise_types(frame: pd.DataFrame) -> pd.DataFrame:
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if name in TEXT_COLUMNS:
            columns[name] = column.astype(str)
        elif name in INTEGER_COLUMNS and not column.isna().any():
            columns[name] = column.astype(np.int64)
        else:
            columns[name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
    return pd.DataFrame(columns)


def list_sumstats(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> list[Path]:
    """Every sumstats file (``*.sumstats.parquet``, the per-score ``*.sumstats.tsv``) in a
    directory, oldest first (a comparison's Parquet file after its TSVs)."""
    directory = Path(results_dir)
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.endswith((PARQUET_SUFFIX, TSV_SUFFIX))
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name.endswith(PARQUET_SUFFIX)))


def latest_sumstats(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> Path:
    """The Parquet file of the most recently written comparison of a directory (a TSV of it when
    it has no Parquet file, e.g. only TSVs were copied).

    Raises
    ------
    ResultsError
        When the directory holds no sumstats file.
    """
    found = list_sumstats(results_dir)
    if not found:
        raise ResultsError(f"no *.sumstats.parquet or *.sumstats.tsv in {results_dir}", missing_step="associate")
    newest = found[-1]
    parquet = newest.with_name(comparison_stem_of(newest) + PARQUET_SUFFIX)
    return parquet if parquet.is_file() else newest


def comparison_stem_of(path: str | os.PathLike) -> str:
    """The comparison's stem of a sumstats file: its name without ``.sumstats.parquet``, or without
    ``.<score>.sumstats.tsv`` (other names lose their last suffix, ``.tsv.gz`` both).

    A per-score TSV is told from a TSV of every score (older versions: ``<stem>.sumstats.tsv``) by
    the part before ``.sumstats.tsv``: a score name (no dot, no ``_vs_``), or the architectures
    joined by ``_vs_``.

    Examples
    --------
    >>> comparison_stem_of("gwasm-results/digits.resnet20_vs_vgg11.sumstats.parquet")
    'digits.resnet20_vs_vgg11'
    >>> comparison_stem_of("gwasm-results/digits.resnet20_vs_vgg11.loss.sumstats.tsv")
    'digits.resnet20_vs_vgg11'
    """
    name = Path(path).name
    if name.endswith(TSV_SUFFIX):
        base = name[: -len(TSV_SUFFIX)]
        head, dot, last = base.rpartition(".")
        return head if dot and "_vs_" not in last else base
    for suffix in (PARQUET_SUFFIX, ".tsv.gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
