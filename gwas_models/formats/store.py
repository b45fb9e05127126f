"""The run store: Hive-partitioned Parquet, one directory per run.

Layout::

    <store>/dataset=<d>/_dataset.json                       class names, n_examples, data source
    <store>/dataset=<d>/arch=<a>/seed=<n>/part-0.parquet    example_id, label, one column per score
    <store>/dataset=<d>/arch=<a>/seed=<n>/_provenance.json  config, seeds, accuracy, versions, device
    <store>/dataset=<d>/arch=<a>/seed=<n>/_trajectories.npz optional float16 per-epoch trajectories
    <store>/_imported/dataset=<d>/<name>.parquet            scores computed elsewhere (one run each)

Files whose names start with ``_`` or ``.`` are skipped by pyarrow's and pandas' dataset discovery,
so ``pandas.read_parquet(store)`` returns exactly the runs, with ``dataset``, ``arch`` and ``seed``
as columns. Partition values are percent-encoded the way pyarrow decodes them, so an architecture
named ``pkg.models:factory`` round-trips. Every run file carries every score definition's column
(NaN where it was not recorded), so all files share one schema; a variant's column is named after
it, ``vog:agarwal`` (quote it in SQL: ``SELECT "vog:agarwal" FROM ...``).

Definition versions: a run records the version of the score definitions it was computed with
(``score_definitions`` in its provenance, and the table's ``gwasm.score_definitions`` metadata).
Runs without either were written before named variants existed (version 1): their bare columns hold
what are now variants (their ``loss`` is ``loss:presentations``, their ``vog`` is ``vog:logit``;
see :data:`gwas_models.scores.LEGACY_COLUMNS`), and :func:`read_run_scores`,
:func:`load_score_matrices` and :func:`recorded_scores` rename them on read, so that no analysis
pools an old ``loss`` with a new one. A raw pandas or pyarrow read shows a version-1 run's columns
as they were written.

A run is written into a hidden temporary directory and renamed into place only when complete, so
readers never see half a run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gwas_models.errors import InputError, StoreError
from gwas_models.formats.atomic import atomic_path, ensure_directory, temporary_name, write_text_atomic
from gwas_models.matrix import ScoreMatrix, format_seeds
from gwas_models.scores import ALL_SCORE_NAMES, DEFINITIONS_VERSION, SCORES, legacy_column_name

DEFAULT_STORE = "./gwasm-store"
STORE_ENV = "GWASM_STORE"
RUN_FILE = "part-0.parquet"
PROVENANCE_FILE = "_provenance.json"
TRAJECTORY_FILE = "_trajectories.npz"
DATASET_FILE = "_dataset.json"
IMPORTED_DIR = "_imported"
DEFINITIONS_METADATA_KEY = b"gwasm.score_definitions"
"""Parquet schema metadata of a run table: the version of the score definitions it holds."""
#: The provenance entry that parameterises a score (by its base name); runs pooled for that score
#: must agree on it (an el2n at epoch 1 is not an el2n at epoch 2).
SCORE_PARAMETERS: dict[str, str] = {"el2n": "early_epoch", "grand": "early_epoch", "vog": "vog_epochs"}


@dataclass(frozen=True)
class RunKey:
    """Identifies one run: a dataset, an architecture and a replicate seed."""

    dataset: str
    arch: str
    seed: int

    def __str__(self) -> str:
        return f"{self.dataset}/{self.arch}/seed {self.seed}"


def resolve_store(store: str | os.PathLike | None = None) -> Path:
    """The store path: the argument, else ``$GWASM_STORE``, else ``./gwasm-store``."""
    path = Path(store if store is not None else os.environ.get(STORE_ENV) or DEFAULT_STORE)
    if path.exists() and not path.is_dir():
        raise StoreError(f"store path {path} is a file, not a directory")
    return path


def _segment(key: str, value: Any) -> str:
    return f"{key}={quote(str(value), safe='')}"


def _value(segment: str) -> str:
    return unquote(segment.split("=", 1)[1])


def dataset_dir(store: Path, dataset: str) -> Path:
    return Path(store) / _segment("dataset", dataset)


def run_dir(store: Path, key: RunKey) -> Path:
    """Directory of one run (which exists only once the run is complete)."""
    return dataset_dir(store, key.dataset) / _segment("arch", key.arch) / _segment("seed", key.seed)


def run_exists(store: Path, key: RunKey) -> bool:
    return (run_dir(store, key) / RUN_FILE).is_file()


def _ensure_writable(directory: Path) -> None:
    ensure_directory(Path(directory), "store", StoreError)


def check_writable(store: Path) -> None:
    """Raise :class:`StoreError` unless runs can be written under ``store``."""
    _ensure_writable(Path(store))


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def check_dataset_info(store: Path, dataset: str, info: Mapping[str, Any]) -> bool:
    """True when ``dataset`` is recorded in the store with the same examples and classes.

    False when the store has no such dataset yet; :class:`StoreError` when it has one by that name
    with other examples or classes (its runs could not be compared with new ones).
    """
    path = dataset_dir(store, dataset) / DATASET_FILE
    if not path.exists():
        return False
    old = json.loads(path.read_text())
    if old.get("n_examples") != info.get("n_examples") or old.get("class_names") != list(info.get("class_names", [])):
        raise StoreError(
            f"dataset {dataset!r} in {store} was collected with {old.get('n_examples')} examples "
            f"and other classes; store these runs under another dataset name or in another store"
        )
    # An image folder is known by its files' content; its images by their shape after resizing.
    for key, what in (("identity", "other image files"), ("input_shape", "another image size")):
        if key in old and old.get(key) != _jsonable(info.get(key)):
            raise StoreError(
                f"dataset {dataset!r} in {store} was collected from {what} ({key} differs); "
                "store these runs under another dataset name or in another store"
            )
    return True


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=_json_default))


def write_dataset_info(store: Path, dataset: str, info: Mapping[str, Any]) -> None:
    """Record the dataset's class names, size and source once per dataset."""
    if check_dataset_info(store, dataset, info):
        return
    directory = dataset_dir(store, dataset)
    _ensure_writable(directory)
    _write_json_atomic(directory / DATASET_FILE, dict(info))


def read_dataset_info(store: Path, dataset: str) -> dict[str, Any]:
    path = dataset_dir(store, dataset) / DATASET_FILE
    if not path.is_file():
        raise StoreError(f"dataset {dataset!r} not found in store {store}; datasets there: {', '.join(list_datasets(store)) or 'none'}")
    return json.loads(path.read_text())


def run_table(example_id: np.ndarray, labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> pa.Table:
    """The Parquet table of one run, with every score definition's column (NaN where absent).

    The table's schema metadata records the definitions version, so a run written by any loop
    (not only ``gwasm collect``) is read with today's definitions.
    """
    n_examples = len(example_id)
    columns: dict[str, pa.Array] = {
        "example_id": pa.array(np.asarray(example_id, dtype=np.int64)),
        "label": pa.array(np.asarray(labels, dtype=np.int64)),
    }
    unknown = set(scores) - set(ALL_SCORE_NAMES)
    if unknown:
        raise InputError(f"unknown score columns {sorted(unknown)}; bring in other scores as imported scores")
    for name in ALL_SCORE_NAMES:
        values = np.asarray(scores.get(name, np.full(n_examples, np.nan)), dtype=np.float64)
        if values.shape != (n_examples,):
            raise InputError(f"score {name!r} has shape {values.shape}, expected ({n_examples},)")
        columns[name] = pa.array(values)
    return pa.table(columns).replace_schema_metadata({DEFINITIONS_METADATA_KEY: str(DEFINITIONS_VERSION).encode()})


def write_run(
    store: Path,
    key: RunKey,
    table: pa.Table,
    provenance: Mapping[str, Any],
    trajectories: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write one complete run atomically and return its directory.

    The files go into a hidden temporary directory next to the final one, which is then renamed.
    If another process finished the same run first, this copy is discarded.
    """
    final = run_dir(store, key)
    parent = final.parent
    _ensure_writable(parent)
    tmp = temporary_name(final)
    tmp.mkdir()
    try:
        pq.write_table(table, tmp / RUN_FILE)
        (tmp / PROVENANCE_FILE).write_text(json.dumps(dict(provenance), indent=2, sort_keys=True, default=_json_default))
        if trajectories:
            np.savez_compressed(tmp / TRAJECTORY_FILE, **{k: np.asarray(v, dtype=np.float16) for k, v in trajectories.items()})
        try:
            os.rename(tmp, final)
        except OSError:
            if not run_exists(store, key):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _subdirs(directory: Path, key: str) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(f"{key}="))


def list_datasets(store: Path) -> list[str]:
    return [_value(p.name) for p in _subdirs(Path(store), "dataset")]


def iter_run_keys(store: Path, dataset: str | None = None) -> Iterable[RunKey]:
    """Every complete run in the store, in (dataset, arch, seed) order."""
    datasets = [dataset] if dataset is not None else list_datasets(store)
    for name in datasets:
        for arch_dir in _subdirs(dataset_dir(store, name), "arch"):
            seeds = []
            for seed_dir in _subdirs(arch_dir, "seed"):
                if (seed_dir / RUN_FILE).is_file():
                    try:
                        seeds.append(int(_value(seed_dir.name)))
                    except ValueError:
                        continue
            for seed in sorted(seeds):
                yield RunKey(name, _value(arch_dir.name), seed)


def read_provenance(store: Path, key: RunKey) -> dict[str, Any]:
    path = run_dir(store, key) / PROVENANCE_FILE
    if not path.is_file():
        raise StoreError(f"run {key} has no provenance in {store}")
    return json.loads(path.read_text())


def read_trajectories(store: Path, key: RunKey) -> dict[str, np.ndarray]:
    """Per-epoch trajectories of a run collected with ``keep_trajectories``."""
    path = run_dir(store, key) / TRAJECTORY_FILE
    if not path.is_file():
        raise StoreError(f"run {key} has no trajectories: it was collected without keeping them")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def list_runs(store: Path, dataset: str | None = None) -> pd.DataFrame:
    """One row per run: dataset, arch, seed, test_accuracy, n_parameters, wall_time_s, device."""
    rows = []
    for key in iter_run_keys(store, dataset):
        prov = read_provenance(store, key)
        rows.append(
            {
                "dataset": key.dataset,
                "arch": key.arch,
                "seed": key.seed,
                "test_accuracy": np.nan if prov.get("test_accuracy") is None else prov["test_accuracy"],
                "n_parameters": prov.get("n_parameters", np.nan),
                "wall_time_s": prov.get("wall_time_s", np.nan),
                "device": prov.get("device", ""),
            }
        )
    columns = ["dataset", "arch", "seed", "test_accuracy", "n_parameters", "wall_time_s", "device"]
    return pd.DataFrame(rows, columns=columns)


def summarize_runs(store: Path) -> pd.DataFrame:
    """One row per (dataset, arch): n_runs, seeds, mean_test_accuracy, n_parameters."""
    runs = list_runs(store)
    columns = ["dataset", "arch", "n_runs", "seeds", "mean_test_accuracy", "n_parameters"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    grouped = runs.groupby(["dataset", "arch"], sort=True)
    summary = grouped.agg(
        n_runs=("seed", "size"),
        seeds=("seed", format_seeds),
        mean_test_accuracy=("test_accuracy", "mean"),
        n_parameters=("n_parameters", "first"),
    ).reset_index()
    return summary[columns]


def list_archs(store: Path, dataset: str) -> list[str]:
    return list(dict.fromkeys(key.arch for key in iter_run_keys(store, dataset)))


def resolve_dataset(store: Path, dataset: str | None) -> str:
    """The dataset to analyse: the one given, or the store's only dataset."""
    datasets = list_datasets(store)
    if dataset is not None:
        if dataset not in datasets:
            raise StoreError(f"dataset {dataset!r} not found in store {store}; datasets there: {', '.join(datasets) or 'none'}")
        return dataset
    if not datasets:
        raise StoreError(f"store {store} holds no runs", missing_step="collect")
    if len(datasets) > 1:
        raise InputError(f"dataset must be named: store {store} holds several ({', '.join(datasets)})", parameter="dataset")
    return datasets[0]


def definitions_version(provenance: Mapping[str, Any], schema: pa.Schema) -> int:
    """The score-definitions version of a run: from its provenance, else its table, else 1.

    Raises
    ------
    StoreError
        A version newer than this gwas-models knows.
    """
    record = provenance.get("score_definitions")
    if isinstance(record, Mapping) and "version" in record:
        version = int(record["version"])
    elif DEFINITIONS_METADATA_KEY in (schema.metadata or {}):
        version = int(schema.metadata[DEFINITIONS_METADATA_KEY])
    else:
        version = 1
    if version > DEFINITIONS_VERSION:
        raise StoreError(f"a run holds score definitions version {version}; this gwas-models reads up to {DEFINITIONS_VERSION}: upgrade it")
    return version


def _provenance_or_empty(store: Path, key: RunKey) -> dict[str, Any]:
    path = run_dir(store, key) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_run_scores(store: Path, key: RunKey) -> pa.Table:
    """One run's table with every column named by the definition it holds.

    A version-1 run's columns are renamed to the definitions they were computed with
    (:data:`gwas_models.scores.LEGACY_COLUMNS`); today's definitions it lacks are simply absent.
    """
    table = pq.read_table(run_dir(store, key) / RUN_FILE)
    if definitions_version(_provenance_or_empty(store, key), table.schema) == 1:
        table = table.rename_columns([legacy_column_name(name) for name in table.column_names])
    return table


def _score_column(table: pa.Table, name: str, key: RunKey) -> np.ndarray:
    """A score column as float64; NaN for a definition the run did not record (e.g. an old run)."""
    if name in table.column_names:
        return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    if name not in SCORES:
        raise StoreError(f"run {key} has no column {name!r}")
    return np.full(table.num_rows, np.nan)


def _check_score_parameters(scores: Iterable[str], keys: list[RunKey], provenances: list[Mapping[str, Any]]) -> None:
    """Refuse to pool the runs of one architecture whose score was taken with other parameters."""
    for name in scores:
        parameter = SCORE_PARAMETERS.get(SCORES[name].base) if name in SCORES else None
        if parameter is None:
            continue
        seen: dict[str, dict[str, list[int]]] = {}
        for key, provenance in zip(keys, provenances):
            if provenance.get(parameter) is not None:
                value = json.dumps(provenance[parameter])
                seen.setdefault(key.arch, {}).setdefault(value, []).append(key.seed)
        for arch, values in seen.items():
            if len(values) > 1:
                which = "; ".join(f"{value} (seeds {format_seeds(seeds)})" for value, seeds in values.items())
                raise StoreError(
                    f"runs of {arch!r} took {name!r} with different {parameter}: {which}; "
                    "collect runs of other settings under another architecture label"
                )


def load_score_matrices(
    store: Path,
    dataset: str,
    scores: Iterable[str],
    archs: Iterable[str] | None = None,
) -> dict[str, ScoreMatrix]:
    """Read scores of the runs of some architectures into one :class:`ScoreMatrix` per score.

    Parameters
    ----------
    store, dataset
        Where to read.
    scores
        Score definition names (``loss``, ``vog:agarwal``, ...). Version-1 runs are read with their
        columns renamed (see :func:`read_run_scores`), so a definition a run did not record is NaN
        in its row: an old ``loss`` (``loss:presentations``) never fills a new ``loss``.
    archs
        Architectures to include, in this order (default: all of the dataset). Each must have at
        least one run.

    Returns
    -------
    dict mapping score name to its matrix, runs ordered by architecture then seed.

    Raises
    ------
    StoreError
        Unknown architectures, runs over other examples, or runs of one architecture whose
        ``el2n``/``grand`` early epoch or VoG checkpoints differ.
    """
    store = Path(store)
    info = read_dataset_info(store, dataset)
    scores = list(scores)
    keys = list(iter_run_keys(store, dataset))
    present = list(dict.fromkeys(k.arch for k in keys))
    wanted = list(archs) if archs is not None else present
    missing = [a for a in wanted if a not in present]
    if missing:
        raise StoreError(
            f"no runs of {', '.join(missing)} for dataset {dataset!r} in {store}; "
            f"architectures there: {', '.join(present) or 'none'}"
        )
    keys = [k for a in wanted for k in keys if k.arch == a]
    example_id = labels = None
    blocks = {name: [] for name in scores}
    provenances = []
    for key in keys:
        provenances.append(_provenance_or_empty(store, key))
        table = read_run_scores(store, key)
        ids = table.column("example_id").to_numpy()
        if example_id is None:
            example_id, labels = ids, table.column("label").to_numpy()
        elif not np.array_equal(ids, example_id):
            raise StoreError(f"run {key} covers other examples than the first run of {dataset!r}")
        for name in scores:
            blocks[name].append(_score_column(table, name, key))
    _check_score_parameters(scores, keys, provenances)
    groups = np.array([k.arch for k in keys], dtype=str)
    seeds = np.array([k.seed for k in keys], dtype=np.int64)
    return {
        name: ScoreMatrix(
            score=name,
            values=np.vstack(blocks[name]) if blocks[name] else np.empty((0, 0)),
            groups=groups,
            seeds=seeds,
            example_id=example_id,
            labels=labels,
            class_names=tuple(info["class_names"]),
            dataset=dataset,
            higher_is_harder=SCORES[name].higher_is_harder if name in SCORES else True,
        )
        for name in scores
    }


def recorded_scores(store: Path, dataset: str, archs: Iterable[str] | None = None) -> list[str]:
    """Score definitions that hold at least one finite value in the first run of each architecture.

    Named as :func:`read_run_scores` names them (a version-1 run's ``loss`` is
    ``loss:presentations``), in the registry's order: the paper's definitions, then the variants.
    """
    keys = list(iter_run_keys(store, dataset))
    wanted = set(archs) if archs is not None else {k.arch for k in keys}
    firsts = {}
    for key in keys:
        if key.arch in wanted and key.arch not in firsts:
            firsts[key.arch] = key
    found: set[str] = set(ALL_SCORE_NAMES)
    for key in firsts.values():
        table = read_run_scores(store, key)
        found &= {
            name
            for name in ALL_SCORE_NAMES
            if name in table.column_names and np.isfinite(table.column(name).to_numpy(zero_copy_only=False)).any()
        }
    return [name for name in ALL_SCORE_NAMES if name in found]


# --------------------------------------------------------------------------------------------
# Imported scores: single-run scores computed elsewhere (ensemble agreement, memorisation, ...).
# --------------------------------------------------------------------------------------------


def imported_dir(store: Path, dataset: str) -> Path:
    return Path(store) / IMPORTED_DIR / _segment("dataset", dataset)


def write_imported_score(
    store: Path, dataset: str, name: str, example_id: np.ndarray, values: np.ndarray, higher_is_harder: bool, source: str
) -> Path:
    """Store a score computed elsewhere as a single-run score of ``dataset``."""
    if name in SCORES:
        raise InputError(f"name {name!r} is taken by a built-in score; import under another name", parameter="name")
    if not name or any(ch in name for ch in "/\\=") or name.startswith(("_", ".")):
        raise InputError(f"score name {name!r} must be non-empty and contain no '/', '\\' or '='")
    directory = imported_dir(store, dataset)
    _ensure_writable(directory)
    table = pa.table({"example_id": pa.array(np.asarray(example_id, dtype=np.int64)), name: pa.array(np.asarray(values, dtype=np.float64))})
    metadata = {b"gwasm": json.dumps({"higher_is_harder": bool(higher_is_harder), "source": source}).encode()}
    table = table.replace_schema_metadata(metadata)
    final = directory / f"{name}.parquet"
    with atomic_path(final) as temporary:
        pq.write_table(table, temporary)
    return final


def list_imported_scores(store: Path, dataset: str) -> list[str]:
    directory = imported_dir(store, dataset)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))


def read_imported_score(store: Path, dataset: str, name: str) -> tuple[pd.Series, bool]:
    """An imported score as a Series indexed by example_id, and whether higher is harder."""
    path = imported_dir(store, dataset) / f"{name}.parquet"
    if not path.is_file():
        raise StoreError(f"no imported score {name!r} for dataset {dataset!r} in {store}")
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"gwasm", b"{}"))
    frame = table.to_pandas()
    return frame.set_index("example_id")[name], bool(meta.get("higher_is_harder", True))
