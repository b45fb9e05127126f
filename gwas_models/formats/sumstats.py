"""Summary statistics files: how association tables are written, found and read back.

Files of one comparison share a stem, ``<prefix>.<A>_vs_<B>`` (three or more architectures:
``<prefix>.<A>_vs_<B>_vs_<C>...``), with architecture names made safe for file names by
:func:`safe_name`:

``<stem>.sumstats.tsv``
    Tab-separated, header line starting with ``#CHROM`` (PLINK 2 style), missing values as ``.``,
    floats at full precision. Columns: see :mod:`gwas_models.formats.sumstats_schema`.
``<stem>.sumstats.parquet``
    The same table, for fast reading. Its schema metadata may hold, under the key ``gwasm``, a JSON
    object that says where the table came from (store, dataset, architectures, scores); see
    :func:`read_sumstats_metadata`.
``<stem>.log``
    What was run, on which runs, λGC, counts of significant examples, warnings.
``<stem>.gwas-ssf.tsv`` (or ``<stem>.<score>.gwas-ssf.tsv`` when several scores are written)
    The GWAS Catalog summary-statistics layout (GWAS-SSF v1.0) of one score, with a
    ``.tsv-meta.yaml`` beside it; see :func:`to_gwas_ssf` for the stand-ins.

Every file is written under a temporary hidden name and renamed into place only after all of them
were written, so a failure never leaves a half-written or partial set of files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from gwas_models.errors import InputError, ResultsError
from gwas_models.formats.atomic import ensure_directory, write_all_atomic
from gwas_models.formats.results import DEFAULT_RESULTS_DIR
from gwas_models.formats.sumstats_schema import INTEGER_COLUMNS, MISSING, REQUIRED_COLUMNS, TEXT_COLUMNS

TSV_SUFFIX = ".sumstats.tsv"
PARQUET_SUFFIX = ".sumstats.parquet"
LOG_SUFFIX = ".log"
SSF_SUFFIX = ".gwas-ssf.tsv"
SSF_META_SUFFIX = "-meta.yaml"
#: File layouts: ``plink`` (TSV + Parquet + log), ``gwas-ssf`` (also the GWAS Catalog layout).
OUTPUT_FORMATS: tuple[str, ...] = ("plink", "gwas-ssf")
#: Key of the Parquet schema metadata that holds where a table came from (JSON).
METADATA_KEY = b"gwasm"

#: GWAS-SSF mandatory columns, in their mandatory order.
SSF_COLUMNS: tuple[str, ...] = (
    "chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
    "effect_allele_frequency", "p_value",
)  # fmt: skip

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_NAME = 80
# Below this, p is written from NEG_LOG10_P as mantissa and exponent (float64 p is 0 or subnormal).
_TEXT_P_BELOW = 1e-300


# --------------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------------


def safe_name(name: str) -> str:
    """A file-name-safe form of an architecture or dataset name.

    Characters other than letters, digits and ``. _ + -`` become ``_`` and leading dots or dashes
    are dropped (no hidden files, nothing that reads as an option). When anything had to change,
    or the name is long, a short hash of the original is appended, so two names that differ only
    in unsafe characters (``pkg.mod:f`` and ``pkg.mod_f``) still get different files.

    Examples
    --------
    >>> safe_name("resnet20")
    'resnet20'
    >>> safe_name("pkg.models:factory").startswith("pkg.models_factory-")
    True
    """
    name = str(name)
    cleaned = _UNSAFE.sub("_", name).lstrip(".-") or "_"
    if cleaned != name or len(cleaned) > _MAX_NAME:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
        cleaned = f"{cleaned[:_MAX_NAME]}-{digest}"
    return cleaned


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


@dataclass(frozen=True)
class SumstatsPaths:
    """Files written for one comparison."""

    tsv: Path
    parquet: Path
    log: Path | None = None
    gwas_ssf: tuple[Path, ...] = ()

    def all(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.tsv, self.parquet, self.log, *self.gwas_ssf) if p is not None)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table with plain string columns (NaN becomes null)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names)


def _write_delimited(table: pa.Table, path: Path, null: str) -> None:
    options = dict(delimiter="\t", null_string=null, quoting_header="none")
    try:
        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none", **options))
    except pa.ArrowInvalid:
        # A text value holds a tab, quote or newline: quote text values rather than fail.
        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="needed", **options))


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
    """Write one comparison's table as TSV and Parquet (plus its log and GWAS-SSF files).

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
    ssf_frames: dict[Path, pd.DataFrame] = {}
    for score in dict.fromkeys(gwas_ssf_scores):
        name = f"{stem.name}{SSF_SUFFIX}" if len(set(gwas_ssf_scores)) == 1 else f"{stem.name}.{safe_name(score)}{SSF_SUFFIX}"
        ssf_frames[stem.with_name(name)] = to_gwas_ssf(frame, score)
    ensure_directory(stem.parent, "results", ResultsError)

    table = _arrow_table(frame)
    paths = SumstatsPaths(
        tsv=stem.with_name(stem.name + TSV_SUFFIX),
        parquet=stem.with_name(stem.name + PARQUET_SUFFIX),
        log=stem.with_name(stem.name + LOG_SUFFIX) if log_text is not None else None,
        gwas_ssf=tuple(ssf_frames),
    )
    files: dict[Path, Callable[[Path], None]] = {
        paths.tsv: lambda path: _write_delimited(table, path, MISSING),
        paths.parquet: lambda path: pq.write_table(_with_metadata(pa.Table.from_pandas(frame, preserve_index=False), metadata), path),
    }
    if paths.log is not None:
        files[paths.log] = lambda path: path.write_text(log_text)
    for path, ssf in ssf_frames.items():
        files[path] = lambda target, ssf=ssf: _write_delimited(pa.Table.from_pandas(ssf, preserve_index=False), target, "NA")
        meta = path.with_name(path.name + SSF_META_SUFFIX)
        files[meta] = lambda target, ssf=ssf, data_name=path.name: target.write_text(
            _ssf_metadata_yaml(ssf, data_name, archs[:2], ssf_metadata or {})
        )
    write_all_atomic(files)
    return paths


# --------------------------------------------------------------------------------------------
# GWAS-SSF
# --------------------------------------------------------------------------------------------


def format_p_from_log(p: np.ndarray, neg_log10_p: np.ndarray) -> np.ndarray:
    """p-values as text, taking p below 1e-300 from -log10 p so that none reads as 0.

    Examples
    --------
    >>> list(format_p_from_log(np.array([0.5, 0.0]), np.array([0.30103, 400.5])))
    ['0.5', '3.1623e-401']
    """
    p = np.asarray(p, dtype=np.float64)
    neg_log10_p = np.asarray(neg_log10_p, dtype=np.float64)
    text = np.asarray(pc.cast(pa.array(p, from_pandas=True), pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    tiny = np.isfinite(neg_log10_p) & (p < _TEXT_P_BELOW)
    if tiny.any():
        exponent = np.ceil(neg_log10_p[tiny])
        mantissa = np.round(10.0 ** (exponent - neg_log10_p[tiny]), 4)  # in [1, 10]: 5 significant digits
        wrapped = mantissa >= 10.0  # 10e-k is 1e-(k-1)
        mantissa = np.where(wrapped, 1.0, mantissa)
        exponent = np.where(wrapped, exponent - 1, exponent).astype(np.int64)
        text[tiny] = np.char.add(np.char.add(np.char.mod("%.5g", mantissa), "e-"), exponent.astype(str))
    return text


def to_gwas_ssf(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    """One score of a pair table in the GWAS Catalog summary-statistics layout (GWAS-SSF v1.0).

    Stand-ins for the genetic fields: ``chromosome`` = class index + 1 (GWAS-SSF counts from 1;
    its validators accept 1-25, so datasets with more classes go beyond the catalog's range),
    ``base_pair_location`` = POS, ``effect_allele`` = B and ``other_allele`` = A (beta =
    mean(B) - mean(A)), ``effect_allele_frequency`` = NA, ``variant_id`` =
    ``<chromosome>_<position>_<A>_<B>``, ``n`` = runs used. Extra columns: ``example_id``,
    ``class_name``, ``score``. Only tested examples (ERRCODE '.') are kept, since GWAS-SSF requires
    a p-value on every row; p below 1e-300 is written from -log10 p, never as 0.

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
    rows = frame[(scores == score).to_numpy() & (frame["ERRCODE"].astype(str) == MISSING).to_numpy()]
    rows = rows.sort_values(["LABEL", "POS"], kind="stable")
    chromosome = rows["LABEL"].to_numpy(dtype=np.int64) + 1
    position = rows["POS"].to_numpy(dtype=np.int64)
    a, b = rows["A"].astype(str).to_numpy(), rows["B"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "chromosome": chromosome,
            "base_pair_location": position,
            "effect_allele": b,
            "other_allele": a,
            "beta": rows["BETA"].to_numpy(dtype=np.float64),
            "standard_error": rows["SE"].to_numpy(dtype=np.float64),
            "effect_allele_frequency": np.full(len(rows), np.nan),
            "p_value": format_p_from_log(rows["P"].to_numpy(), rows["NEG_LOG10_P"].to_numpy()),
            "variant_id": _join_text(chromosome.astype(str), position.astype(str), a, b),
            "n": (rows["N_A"].to_numpy() + rows["N_B"].to_numpy()).astype(np.int64),
            "example_id": rows["ID"].to_numpy(dtype=np.int64),
            "class_name": rows["#CHROM"].astype(str).to_numpy(),
            "score": np.full(len(rows), score, dtype=object),
        }
    )


def _join_text(*parts: np.ndarray) -> np.ndarray:
    joined = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, "_"), np.asarray(part, dtype=str))
    return joined.astype(object)


def _ssf_metadata_yaml(ssf: pd.DataFrame, data_name: str, archs: Sequence[str], extra: Mapping[str, object]) -> str:
    score = str(ssf["score"].iloc[0]) if len(ssf) else ""
    sample_size = int(ssf["n"].max()) if len(ssf) else 0
    fields = {
        "data_file_name": data_name,
        "file_type": "GWAS-SSF v1.0",
        "genome_assembly": "NA (training set: chromosome = class index + 1, base_pair_location = order in class)",
        "coordinate_system": "1-based",
        "trait_description": [f"difficulty score {score}: {archs[1]} (effect allele) vs {archs[0]} (other allele)"],
        "sample_size": sample_size,
        "sample_ancestry_category": ["NA (trained models)"],
        "genotyping_technology": ["NA (trained models)"],
        "analysis_software": "gwas-models (p below 1e-300 computed in log space)",
        "is_sorted": True,
        "is_harmonised": False,
        **dict(extra),
    }
    return "".join(_yaml_line(key, value) for key, value in fields.items())


def _yaml_line(key: str, value: object) -> str:
    def scalar(item: object) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return str(item)
        return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'

    if isinstance(value, (list, tuple)):
        return f"{key}:\n" + "".join(f"  - {scalar(v)}\n" for v in value)
    return f"{key}: {scalar(value)}\n"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_sumstats(path: str | os.PathLike) -> pd.DataFrame:
    """Read a sumstats table written by :func:`write_sumstats` (TSV or Parquet).

    Text columns come back as strings ('.' when missing), integer columns as int64, the others as
    float64 (NaN when missing), whichever of the two formats is read.

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
    numeric = {c: [MISSING] for c in header if c not in TEXT_COLUMNS}
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
    """Every sumstats file (``*.sumstats.parquet``, ``*.sumstats.tsv``) in a directory, oldest first."""
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
    """The most recently written sumstats file of a directory (its Parquet copy when there is one).

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
    """The comparison's stem of a sumstats file: its name without ``.sumstats.tsv`` or
    ``.sumstats.parquet`` (other names lose their last suffix, ``.tsv.gz`` both).

    Examples
    --------
    >>> comparison_stem_of("gwasm-results/digits.resnet20_vs_vgg11.sumstats.parquet")
    'digits.resnet20_vs_vgg11'
    """
    name = Path(path).name
    for suffix in (TSV_SUFFIX, PARQUET_SUFFIX, ".tsv.gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
