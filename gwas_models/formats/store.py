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

Labels: the ``arch=`` directory names the label runs are stored under, the architecture by default
(:attr:`RunKey.arch`); the architecture a run built is its provenance's ``arch``. Runs under one
label must share one configuration (:mod:`gwas_models.formats.configuration`):
:func:`load_score_matrices` refuses to pool runs trained otherwise.

Concurrent collectors claim runs before training them (:mod:`gwas_models.formats.claims`). What a
killed collector leaves, all hidden beside the runs of its label, is found by :func:`check_store`
and removed by :func:`clean_leftovers`::

    .seed=<n>.<hex>.tmp          a run being written (or whose writer died)
    .seed=<n>.claim              a claim; stale once its process is gone or its heartbeat stops
    .seed=<n>.claim.<hex>.tomb   a stale claim being taken over
    .seed=<n>.claim.lock         the lock of a collector taking a stale claim over
    .seed=<n>.<hex>.replaced     a damaged run being replaced by a complete one

A run counts as complete when its table and provenance are present and not empty
(:func:`run_exists`, :func:`iter_run_keys`, cheap); :func:`run_damage` also reads the table's footer
and the provenance (dataset, label, seed, row count) and decides what :func:`list_runs` shows, what
a collection retrains and what :func:`write_run` may replace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gwas_models.errors import InputError, StoreError
from gwas_models.formats import claims
from gwas_models.formats.atomic import atomic_path, ensure_directory, temporary_name, write_text_atomic
from gwas_models.formats.configuration import (
    SCORE_PARAMETERS,
    conflicting_settings,
    describe_values,
    format_setting,
    run_configuration,
    settings_against,
)
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
#: Seconds after which a collector removes a leftover whose writer may still be alive (a temporary
#: run directory without a live claim, a tombstone): far longer than writing a run takes.
LEFTOVER_MIN_AGE = 60.0
REPLACED_SUFFIX = ".replaced"


@dataclass(frozen=True)
class RunKey:
    """Identifies one run: a dataset, a label (the architecture unless named otherwise) and a seed."""

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


def check_name(name: str, what: str, parameter: str | None = None) -> str:
    """``name`` if it can name a directory or file of the store, else :class:`InputError`.

    A name must be non-empty, hold no ``/``, ``\\`` or ``=`` and not start with ``.`` or ``_``
    (Parquet dataset discovery skips such files, and the store keeps its own files under them).
    ``what`` names it in the message, which it starts; with ``parameter``, ``what`` starts with it.
    """
    if not name or any(ch in name for ch in "/\\=") or name.startswith(("_", ".")):
        message = f"{what} {name!r} must be non-empty, contain no '/', '\\' or '=', and not start with '.' or '_'"
        raise InputError(message, parameter=parameter)
    return name


def check_label(label: str) -> str:
    """``label`` if runs can be stored under it (see :func:`check_name`)."""
    return check_name(label, "label", parameter="label")


def _present(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _looks_complete(directory: Path) -> bool:
    """The cheap check: the run's table and provenance are there and not empty."""
    return _present(directory / RUN_FILE) and _present(directory / PROVENANCE_FILE)


def run_exists(store: Path, key: RunKey) -> bool:
    """Whether the run is in the store (table and provenance present and not empty).

    Cheap: a truncated table still counts; :func:`run_damage` reads it.
    """
    return _looks_complete(run_dir(store, key))


def run_damage(store: Path, key: RunKey, n_examples: int | None = None) -> str | None:
    """Why the run's directory does not hold a sound run, or None when it does.

    Checks that the table and the provenance are present and readable (the table's footer, not its
    data), that the provenance names this dataset, label and seed (where it records them), and that
    the table has ``n_examples`` rows (default: the dataset's, when the store records it).
    """
    if n_examples is None:
        n_examples = _recorded_n_examples(store, key.dataset)
    return _directory_damage(run_dir(store, key), key, n_examples)


def _recorded_n_examples(store: Path, dataset: str) -> int | None:
    try:
        return int(json.loads((dataset_dir(store, dataset) / DATASET_FILE).read_text())["n_examples"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _directory_damage(directory: Path, key: RunKey, n_examples: int | None) -> str | None:
    if not directory.is_dir():
        return "no run directory"
    for name, what in ((RUN_FILE, "table"), (PROVENANCE_FILE, "provenance")):
        if not (directory / name).is_file():
            return f"no {what} ({name})"
        if not _present(directory / name):
            return f"empty {what} ({name})"
    try:
        n_rows = pq.read_metadata(directory / RUN_FILE).num_rows
    except (OSError, pa.ArrowException) as failure:
        return f"unreadable Parquet ({' '.join(str(failure).split())[:120]})"
    try:
        provenance = json.loads((directory / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return "unreadable provenance (not JSON)"
    if not isinstance(provenance, dict):
        return "unreadable provenance (not a JSON object)"
    mismatch = _provenance_mismatch(provenance, key)
    if mismatch is not None:
        return mismatch
    if n_examples is not None and n_rows != n_examples:
        return f"{n_rows} rows, the dataset has {n_examples} examples"
    return None


def _provenance_mismatch(provenance: Mapping[str, Any], key: RunKey) -> str | None:
    """How a run's provenance contradicts its directory, where it records dataset, label and seed."""
    # Runs before labels were stored under their architecture's name.
    label = provenance.get("label", provenance.get("arch"))
    for name, recorded, expected in (("dataset", provenance.get("dataset"), key.dataset), ("label", label, key.arch), ("seed", provenance.get("seed"), key.seed)):
        if recorded is not None and recorded != expected:
            return f"provenance names {name} {recorded!r}, the directory {expected!r}"
    return None


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
    If another process finished the same run first, this copy is discarded; a damaged run in the
    way (see :func:`run_damage`) is replaced.
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
        _move_into_place(tmp, final, key, table.num_rows)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _move_into_place(tmp: Path, final: Path, key: RunKey, n_rows: int) -> None:
    """Rename the written run onto its place, unless a sound run is there already.

    A damaged run in the way is first renamed to a hidden name (so the place is never half a run),
    then removed.
    """
    for _ in range(3):
        try:
            os.rename(tmp, final)
            return
        except OSError:
            if not final.exists():
                continue  # the damaged run was moved away meanwhile: try again
            if _directory_damage(final, key, n_rows) is None:
                shutil.rmtree(tmp, ignore_errors=True)  # another writer finished first
                return
            aside = final.with_name(f".{final.name}.{uuid.uuid4().hex}{REPLACED_SUFFIX}")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                continue
            shutil.rmtree(aside, ignore_errors=True)
    os.rename(tmp, final)  # a last try that reports why it fails


def _subdirs(directory: Path, key: str) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(f"{key}="))


def list_datasets(store: Path) -> list[str]:
    return [_value(p.name) for p in _subdirs(Path(store), "dataset")]


def iter_run_keys(store: Path, dataset: str | None = None) -> Iterable[RunKey]:
    """Every complete run in the store (see :func:`run_exists`), in (dataset, label, seed) order."""
    datasets = [dataset] if dataset is not None else list_datasets(store)
    for name in datasets:
        for arch_dir in _subdirs(dataset_dir(store, name), "arch"):
            seeds = []
            for seed_dir in _subdirs(arch_dir, "seed"):
                if _looks_complete(seed_dir):
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


def _scan_runs(store: Path, dataset: str | None = None) -> Iterable[tuple[RunKey, str | None]]:
    """Every run directory (``seed=<n>``) of the store with why it is damaged (None when sound)."""
    datasets = [dataset] if dataset is not None else list_datasets(store)
    for name in datasets:
        n_examples = _recorded_n_examples(store, name)
        for arch_dir in _subdirs(dataset_dir(store, name), "arch"):
            found = {}
            for seed_dir in _subdirs(arch_dir, "seed"):
                try:
                    found[int(_value(seed_dir.name))] = seed_dir
                except ValueError:
                    continue
            for seed in sorted(found):
                key = RunKey(name, _value(arch_dir.name), seed)
                yield key, _directory_damage(found[seed], key, n_examples)


def sound_run_keys(store: Path, dataset: str | None = None) -> list[RunKey]:
    """The complete runs that pass :func:`run_damage`, in the order of :func:`iter_run_keys`."""
    return [key for key, damage in _scan_runs(store, dataset) if damage is None]


def damaged_runs(store: Path, dataset: str | None = None) -> list[tuple[RunKey, str]]:
    """The run directories that do not hold a sound run, with the reason each."""
    return [(key, damage) for key, damage in _scan_runs(store, dataset) if damage is not None]


def list_runs(store: Path, dataset: str | None = None) -> pd.DataFrame:
    """One row per sound run: dataset, arch, seed, test_accuracy, n_parameters, wall_time_s, device.

    ``arch`` is the label the run is stored under. Damaged runs are left out (see :func:`damaged_runs`).
    """
    rows = []
    for key in sound_run_keys(store, dataset):
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
    if not path.is_file():
        return {}
    try:
        provenance = json.loads(path.read_text())
    except ValueError:
        raise StoreError(f"run {key} in {store} is damaged: unreadable provenance; collect it again") from None
    return provenance if isinstance(provenance, dict) else {}


def read_run_scores(store: Path, key: RunKey) -> pa.Table:
    """One run's table with every column named by the definition it holds.

    A version-1 run's columns are renamed to the definitions they were computed with
    (:data:`gwas_models.scores.LEGACY_COLUMNS`); today's definitions it lacks are simply absent.
    """
    table = _read_table(store, key)
    if definitions_version(_provenance_or_empty(store, key), table.schema) == 1:
        table = table.rename_columns([legacy_column_name(name) for name in table.column_names])
    return table


def _read_table(store: Path, key: RunKey) -> pa.Table:
    """A run's table as written; :class:`StoreError` when it cannot be read."""
    try:
        return pq.read_table(run_dir(store, key) / RUN_FILE)
    except (OSError, pa.ArrowException) as failure:
        raise StoreError(f"run {key} in {store} is damaged: unreadable Parquet ({' '.join(str(failure).split())[:120]}); collect it again") from None


def _score_column(table: pa.Table, name: str, key: RunKey) -> np.ndarray:
    """A score column as float64; NaN for a definition the run did not record (e.g. an old run)."""
    if name in table.column_names:
        return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    if name not in SCORES:
        raise StoreError(f"run {key} has no column {name!r}")
    return np.full(table.num_rows, np.nan)


def read_run_configuration(store: Path, key: RunKey) -> dict[str, Any]:
    """The configuration of a stored run (:func:`gwas_models.formats.configuration.run_configuration`).

    Read from its provenance; a run without a ``score_definitions`` record is read with the
    definitions version of its table (a version-1 run's ``loss`` is ``loss:presentations``).
    """
    provenance = _provenance_or_empty(store, key)
    version = None
    if "score_definitions" not in provenance:
        version = definitions_version(provenance, pq.read_schema(run_dir(store, key) / RUN_FILE))
    return run_configuration(provenance, version)


def stored_configurations(store: Path, dataset: str, label: str) -> dict[int, dict[str, Any]]:
    """The configuration of every run stored under ``label``, by seed (unreadable runs left out)."""
    configurations = {}
    for key in iter_run_keys(store, dataset):
        if key.arch != label:
            continue
        try:
            configurations[key.seed] = read_run_configuration(store, key)
        except (OSError, ValueError, pa.ArrowException, StoreError):
            continue  # a damaged run says nothing; the collection retrains it
    return configurations


def check_configuration(store: Path, dataset: str, label: str, configuration: Mapping[str, Any]) -> None:
    """Refuse to store runs of ``configuration`` under a label whose runs were trained otherwise.

    Raises
    ------
    StoreError
        Naming each differing setting with its stored and its new value (``parameter="label"``).
    """
    stored = stored_configurations(store, dataset, label)
    differences = settings_against(configuration, stored)
    if not differences:
        return
    every_run = set(stored)
    # The score parameters follow from epochs unless set: name them after the settings proper.
    differences.sort(key=lambda item: (item[0] in SCORE_PARAMETERS.values(), item[0]))
    texts = []
    for name, values in differences:
        seeds = {seed for group in values.values() for seed in group}
        old = describe_values(values, with_seeds=len(values) > 1 or seeds != every_run)
        texts.append(f"{old} (this collect: {format_setting(name, configuration[name])})")
    raise StoreError(
        f"label {label!r} holds runs of {dataset} in {store} trained with {', '.join(texts)}; "
        "collect under another label, or into another store",
        parameter="label",
    )


def _check_configurations(keys: list[RunKey], configurations: list[Mapping[str, Any]], dataset: str) -> None:
    """Refuse to pool the runs of one label whose configurations differ.

    The score parameters (``early_epoch``, ``vog_epochs``) are left to
    :func:`_check_score_parameters`: they matter only for the scores that use them.
    """
    by_label: dict[str, dict[int, Mapping[str, Any]]] = {}
    for key, configuration in zip(keys, configurations):
        by_label.setdefault(key.arch, {})[key.seed] = configuration
    for label, stored in by_label.items():
        conflicts = conflicting_settings(stored, ignore=set(SCORE_PARAMETERS.values()))
        if conflicts:
            which = "; ".join(describe_values(values, with_seeds=True) for _, values in conflicts)
            raise StoreError(
                f"runs of {label!r} on {dataset} were trained differently and cannot be pooled: {which}; "
                "collect runs of other settings under another label"
            )


def _check_score_parameters(scores: Iterable[str], keys: list[RunKey], provenances: list[Mapping[str, Any]]) -> None:
    """Refuse to pool the runs of one label whose score was taken with other parameters."""
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
                    "collect runs of other settings under another label"
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
    configurations = []
    for key in keys:
        provenance = _provenance_or_empty(store, key)
        provenances.append(provenance)
        table = _read_table(store, key)
        version = definitions_version(provenance, table.schema)
        configurations.append(run_configuration(provenance, None if "score_definitions" in provenance else version))
        if version == 1:
            table = table.rename_columns([legacy_column_name(name) for name in table.column_names])
        ids = table.column("example_id").to_numpy()
        if example_id is None:
            example_id, labels = ids, table.column("label").to_numpy()
        elif not np.array_equal(ids, example_id):
            raise StoreError(f"run {key} covers other examples than the first run of {dataset!r}")
        for name in scores:
            blocks[name].append(_score_column(table, name, key))
    _check_configurations(keys, configurations, dataset)
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
# Claims, leftovers of killed collectors, damaged runs
# --------------------------------------------------------------------------------------------

_TEMPORARY = re.compile(r"^\.(seed=[^.]+)\.[0-9a-f]{32}\.tmp$")
_TOMBSTONE = re.compile(rf"^\.(seed=[^.]+)(?:{re.escape(claims.CLAIM_SUFFIX)}\.[0-9a-f]{{32}}{re.escape(claims.TOMBSTONE_SUFFIX)}|\.[0-9a-f]{{32}}{re.escape(REPLACED_SUFFIX)})$")
_CLAIM = re.compile(rf"^\.(seed=[^.]+){re.escape(claims.CLAIM_SUFFIX)}$")
_LOCK = re.compile(rf"^\.(seed=[^.]+){re.escape(claims.CLAIM_SUFFIX + claims.LOCK_SUFFIX)}$")
#: What each kind of leftover is, as a report says it.
_LEFTOVER_REASONS = {
    "temporary": "temporary directory of an unfinished run",
    "tombstone": "tombstone of a replaced run or claim",
    "lock": "takeover lock of a killed collector",
}
CHECK_COLUMNS = ["problem", "dataset", "label", "seed", "age_s", "reason", "path"]
CLAIM_COLUMNS = ["dataset", "label", "seed", "host", "pid", "job_id", "heartbeat_age_s", "state"]


def claim_path(store: Path, key: RunKey) -> Path:
    """The claim file of a run (:func:`gwas_models.formats.claims.claim_file`)."""
    return claims.claim_file(run_dir(store, key))


@dataclass(frozen=True)
class _Hidden:
    """A hidden entry beside the runs of a label: a temporary run, a claim or a tombstone."""

    kind: str  # "temporary", "claim" or "tombstone"
    key: RunKey
    path: Path


def _seed_of(segment: str) -> int | None:
    try:
        return int(_value(segment))
    except ValueError:
        return None


def _hidden_entries(label_dir: Path, dataset: str) -> list[_Hidden]:
    """The hidden entries of one label's directory, each with the run it belongs to."""
    label = _value(label_dir.name)
    entries = []
    try:
        names = sorted(p.name for p in label_dir.iterdir() if p.name.startswith("."))
    except OSError:
        return []
    for name in names:
        for kind, pattern in (("temporary", _TEMPORARY), ("claim", _CLAIM), ("tombstone", _TOMBSTONE), ("lock", _LOCK)):
            match = pattern.match(name)
            seed = _seed_of(match.group(1)) if match else None
            if seed is not None:
                entries.append(_Hidden(kind, RunKey(dataset, label, seed), label_dir / name))
                break
    return entries


def _label_dirs(store: Path, dataset: str | None = None, label: str | None = None) -> Iterable[tuple[str, Path]]:
    datasets = [dataset] if dataset is not None else list_datasets(store)
    for name in datasets:
        if label is not None:
            directory = dataset_dir(store, name) / _segment("arch", label)
            if directory.is_dir():
                yield name, directory
            continue
        for directory in _subdirs(dataset_dir(store, name), "arch"):
            yield name, directory


def _age(path: Path, now: float) -> float:
    try:
        return max(0.0, now - path.stat().st_mtime)
    except OSError:
        return 0.0


def _live_claims(entries: list[_Hidden], stale_after: float) -> dict[int, claims.ClaimInfo]:
    live = {}
    for entry in entries:
        if entry.kind == "claim":
            info = claims.read_claim(entry.path)
            if info is not None and info.is_live(stale_after):
                live[entry.key.seed] = info
    return live


def live_claims(store: Path, dataset: str, label: str, stale_after: float = claims.DEFAULT_STALE_AFTER) -> dict[int, claims.ClaimInfo]:
    """The live claims of the runs of one label, by seed."""
    found: dict[int, claims.ClaimInfo] = {}
    for name, directory in _label_dirs(store, dataset, label):
        found.update(_live_claims(_hidden_entries(directory, name), stale_after))
    return found


def _leftovers(entries: list[_Hidden], stale_after: float, now: float) -> list[tuple[_Hidden, str, claims.ClaimInfo | None]]:
    """The entries no live collector uses, each with why it is a leftover (and its claim, if one)."""
    live = _live_claims(entries, stale_after)
    found = []
    for entry in entries:
        if entry.kind == "claim":
            info = claims.read_claim(entry.path)
            reason = None if info is None else info.stale_reason(stale_after, now)
            if reason is not None:
                found.append((entry, f"stale claim of {info.holder}: {reason}", info))
        elif entry.kind == "lock":
            # Held for milliseconds while a taker removes a stale claim: old only if its taker died.
            if _age(entry.path, now) > claims.LOCK_STALE_AFTER:
                found.append((entry, _LEFTOVER_REASONS["lock"], None))
        elif entry.key.seed not in live:
            found.append((entry, _LEFTOVER_REASONS[entry.kind], None))
    return found


def clean_leftovers(
    store: Path, dataset: str, label: str, stale_after: float = claims.DEFAULT_STALE_AFTER, min_age: float = LEFTOVER_MIN_AGE
) -> list[Path]:
    """Remove what killed collectors left under one label; return the paths removed.

    Stale claims are removed the safe way (:func:`gwas_models.formats.claims.remove_stale`).
    Temporary run directories, tombstones and takeover locks are removed when no live claim covers
    their run and they are older than ``min_age`` seconds (a writer without a claim may still be at
    work); a temporary run directory at once when its run's claim was held by a process of this host
    that is gone.
    """
    now = time.time()
    removed: list[Path] = []
    for name, directory in _label_dirs(Path(store), dataset, label):
        leftovers = _leftovers(_hidden_entries(directory, name), stale_after, now)
        dead = set()
        for entry, _, info in leftovers:
            if info is not None and claims.remove_stale(info, stale_after):
                removed.append(entry.path)
                if info.host == socket.gethostname() and info.pid is not None and not claims.process_alive(info.pid):
                    dead.add(entry.key.seed)
        for entry, _, info in leftovers:
            # A temporary run of a dead writer can go at once; a tombstone or lock may belong to
            # a taker at work on this very claim.
            killed = entry.kind == "temporary" and entry.key.seed in dead
            if info is None and (killed or _age(entry.path, now) >= min_age):
                if entry.path.is_dir():
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    entry.path.unlink(missing_ok=True)
                removed.append(entry.path)
    return removed


def check_store(store: Path, stale_after: float = claims.DEFAULT_STALE_AFTER) -> pd.DataFrame:
    """What is wrong in a store: leftovers of killed collectors and damaged runs.

    Returns
    -------
    DataFrame
        One row per finding: ``problem`` (``leftover`` or ``damaged``), dataset, label, seed,
        ``age_s`` (of a leftover), reason, path. Empty when the store is clean. Live claims and the
        temporary directories of their runs are work in progress, not findings.
    """
    store = Path(store)
    now = time.time()
    rows = []
    for name, directory in _label_dirs(store):
        for entry, reason, _ in _leftovers(_hidden_entries(directory, name), stale_after, now):
            rows.append(["leftover", name, entry.key.arch, entry.key.seed, round(_age(entry.path, now)), reason, str(entry.path)])
    for key, reason in damaged_runs(store):
        rows.append(["damaged", key.dataset, key.arch, key.seed, None, reason, str(run_dir(store, key))])
    return pd.DataFrame(rows, columns=CHECK_COLUMNS).astype({"seed": "int64", "age_s": "Int64"})


def list_claims(store: Path, stale_after: float = claims.DEFAULT_STALE_AFTER) -> pd.DataFrame:
    """Every claim in the store: dataset, label, seed, host, pid, job_id, heartbeat_age_s, state.

    ``state`` is ``live`` (a collector is training the run) or ``stale`` (its collector is gone;
    the next collection takes the run over).
    """
    now = time.time()
    rows = []
    for name, directory in _label_dirs(Path(store)):
        for entry in _hidden_entries(directory, name):
            info = claims.read_claim(entry.path) if entry.kind == "claim" else None
            if info is not None:
                state = "live" if info.is_live(stale_after, now) else "stale"
                rows.append([name, entry.key.arch, entry.key.seed, info.host, info.pid, info.job_id, round(info.age(now)), state])
    frame = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    return frame.astype({"seed": "int64", "pid": "Int64", "heartbeat_age_s": "int64"})


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
    check_name(name, "score name")
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
