"""Collect replicate runs of an architecture into the run store.

:func:`collect` validates everything it can before training anything (architecture, dataset,
store, hyper-parameters), then trains each seed that the store does not hold yet, so rerunning an
interrupted collection resumes it. Runs execute one after another in this process, or in worker
processes with one compute thread each (more threads than cores slows training several-fold).
"""

from __future__ import annotations

import os
import platform
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from gwas_models import __version__
from gwas_models.data import ImageDataset, load_dataset
from gwas_models.errors import InputError
from gwas_models.formats import store as run_store
from gwas_models.scores import SCORE_NAMES, definition_record, score_info

ProgressHook = Callable[[str, dict], None]


def parse_seeds(text: str | None = None, runs: int | None = None) -> list[int]:
    """The seeds of a collection, sorted and unique.

    Parameters
    ----------
    text : str, optional
        Seeds and inclusive ranges, e.g. ``"0-9,12"``.
    runs : int, optional
        Seeds ``0..runs-1``; used when ``text`` is None (default 1 run).

    Raises
    ------
    InputError
        When both are given, ``runs`` is below 1, or ``text`` holds anything but non-negative
        integers and ranges.
    """
    if text is not None and runs is not None:
        raise InputError("give either runs or seeds, not both")
    if text is None:
        n_runs = 1 if runs is None else runs
        if n_runs < 1:
            raise InputError(f"runs must be at least 1, got {n_runs}", parameter="runs")
        return list(range(n_runs))
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low > high:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            elif part:
                seeds.append(int(part))
        except ValueError:
            raise InputError(f"cannot read seeds {text!r}: use non-negative integers and ranges, e.g. 0-9,12") from None
    if not seeds or min(seeds) < 0:
        raise InputError(f"cannot read seeds {text!r}: use non-negative integers and ranges, e.g. 0-9,12")
    return sorted(set(seeds))


@dataclass(frozen=True)
class CollectPlan:
    """Everything a collection needs; built and validated by :func:`plan_collection`."""

    dataset_spec: str
    data_root: str | None
    arch: str
    seeds: tuple[int, ...]
    config: dict
    scores: tuple[str, ...]
    store: str
    device: str
    threads: int | None
    keep_trajectories: bool
    dataset_name: str = ""
    image_size: int | None = None
    arch_options: dict = field(default_factory=dict)
    todo: tuple[int, ...] = field(default_factory=tuple)
    done: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CollectSummary:
    """What a collection did: runs trained and runs found already complete."""

    dataset: str
    arch: str
    trained: tuple[int, ...]
    skipped: tuple[int, ...]
    test_accuracy: dict[int, float]
    store: str


def plan_collection(
    arch: str,
    seeds: Iterable[int],
    config,
    dataset: str = "digits",
    data_root: str | None = None,
    download: bool = False,
    image_size: int | None = None,
    arch_options: Mapping[str, Any] | None = None,
    scores: Iterable[str] = SCORE_NAMES,
    store: str | Path | None = None,
    device: str = "auto",
    threads: int | None = None,
    keep_trajectories: bool = False,
) -> tuple[CollectPlan, ImageDataset]:
    """Validate a collection and find which seeds still need training; trains nothing."""
    from gwas_models.training.models import build_model  # torch wing, imported on use
    from gwas_models.training.train import resolve_device

    scores = tuple(score_info(s).name for s in scores)
    if not scores:
        raise InputError("no scores requested")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}", parameter="threads")
    resolve_device(device)
    store_path = run_store.resolve_store(store)
    data = load_dataset(dataset, data_root=data_root, download=download, image_size=image_size)
    arch_options = dict(arch_options or {})
    build_model(arch, data.n_classes, data.input_shape, init_seed=0, options=arch_options)  # fails early on a bad arch
    run_store.check_writable(store_path)
    run_store.check_dataset_info(store_path, data.name, data.info())
    seeds = tuple(seeds)
    done = tuple(s for s in seeds if run_store.run_exists(store_path, run_store.RunKey(data.name, arch, s)))
    todo = tuple(s for s in seeds if s not in done)
    plan = CollectPlan(
        dataset_spec=dataset,
        data_root=None if data_root is None else str(data_root),
        arch=arch,
        seeds=seeds,
        config=config.to_dict(),
        scores=scores,
        store=str(store_path),
        device=device,
        threads=threads,
        keep_trajectories=keep_trajectories,
        dataset_name=data.name,
        image_size=image_size,
        arch_options=arch_options,
        todo=todo,
        done=done,
    )
    return plan, data


def _versions() -> dict[str, str]:
    import pandas
    import pyarrow
    import torch

    return {
        "gwas_models": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
    }


def run_one(plan: CollectPlan, seed: int, data: ImageDataset | None = None, on_epoch=None) -> float:
    """Train one seed of a plan, write it to the store, and return its test accuracy."""
    import torch

    previous_threads = torch.get_num_threads()
    if plan.threads is not None:
        torch.set_num_threads(plan.threads)
    try:
        return _train_and_write(plan, seed, data, on_epoch)
    finally:
        # The thread count is process-wide: give the caller back the one it had.
        torch.set_num_threads(previous_threads)


def _train_and_write(plan: CollectPlan, seed: int, data: ImageDataset | None, on_epoch) -> float:
    import torch

    from gwas_models.training.models import build_model, count_parameters, model_description
    from gwas_models.training.recorder import ScoreRecorder
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, resolve_device, train

    if data is None:
        data = load_dataset(plan.dataset_spec, data_root=plan.data_root, image_size=plan.image_size)
    config = TrainConfig(**plan.config)
    device = resolve_device(plan.device)
    streams = SeedStreams(seed)
    model = build_model(plan.arch, data.n_classes, data.input_shape, streams.init, options=plan.arch_options).to(device)
    device_data = DeviceData.from_dataset(data, device)
    recorder = ScoreRecorder(
        device_data.x_train,
        device_data.y_train,
        data.n_classes,
        config.epochs,
        scores=plan.scores,
        early_epoch=config.early_epoch,
        vog_checkpoints=config.vog_checkpoints,
        eval_batch_size=config.eval_batch_size,
        keep_trajectories=plan.keep_trajectories,
    )
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = train(model, device_data, config, streams, recorder=recorder, on_epoch=on_epoch)
    key = run_store.RunKey(data.name, plan.arch, seed)
    provenance = {
        "dataset": data.name,
        "dataset_source": data.source,
        "arch": plan.arch,
        "arch_options": dict(plan.arch_options),
        "model": model_description(plan.arch, plan.arch_options, data.n_classes, data.input_shape),
        "seed": seed,
        "seed_streams": {"init": streams.init, "order": streams.order, "augment": streams.augment},
        "config": plan.config,
        "scores": list(plan.scores),
        # Which definition each score column holds: the store reads runs without it as version 1.
        "score_definitions": definition_record(plan.scores),
        "early_epoch": recorder.early_epoch,
        "vog_epochs": list(recorder.vog_epochs),
        "n_examples": data.n_examples,
        "n_parameters": count_parameters(model),
        # JSON has no NaN: a dataset without a test split has no test accuracy.
        "test_accuracy": None if np.isnan(result["test_accuracy"]) else result["test_accuracy"],
        "train_accuracy": result["train_accuracy"],
        "wall_time_s": result["wall_time_s"],
        "device": str(device),
        "n_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "started_at": started_at,
        "versions": _versions(),
    }
    table = run_store.run_table(np.arange(data.n_examples), data.y_train, recorder.scores())
    trajectories = recorder.trajectories() if plan.keep_trajectories else None
    run_store.write_dataset_info(Path(plan.store), data.name, data.info())
    run_store.write_run(Path(plan.store), key, table, provenance, trajectories)
    return result["test_accuracy"]


def _run_in_worker(plan: CollectPlan, seed: int) -> tuple[int, float]:
    # Worker processes compute with one thread each unless told otherwise.
    if plan.threads is None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        plan = CollectPlan(**{**plan.__dict__, "threads": 1})
    return seed, run_one(plan, seed)


def collect(plan: CollectPlan, data: ImageDataset, workers: int = 1, progress: ProgressHook | None = None) -> CollectSummary:
    """Train every seed of ``plan.todo`` and write each run to the store as it completes.

    Parameters
    ----------
    workers : int
        1 trains in this process; more starts that many worker processes.
    progress : callable(event, info), optional
        Called with ``("run_start", {...})``, ``("epoch", {...})`` and ``("run_end", {...})``.
    """
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}", parameter="workers")
    notify = progress or (lambda event, info: None)
    accuracies: dict[int, float] = {}
    n_todo = len(plan.todo)
    if workers == 1 or n_todo <= 1:
        for index, seed in enumerate(plan.todo, start=1):
            notify("run_start", {"index": index, "total": n_todo, "seed": seed, "arch": plan.arch})
            on_epoch = lambda epoch, acc, seed=seed, index=index: notify(  # noqa: E731
                "epoch", {"index": index, "total": n_todo, "seed": seed, "epoch": epoch, "train_accuracy": acc}
            )
            accuracies[seed] = run_one(plan, seed, data=data, on_epoch=on_epoch)
            notify("run_end", {"index": index, "total": n_todo, "seed": seed, "test_accuracy": accuracies[seed]})
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n_todo), mp_context=context) as pool:
            futures = [pool.submit(_run_in_worker, plan, seed) for seed in plan.todo]
            for index, future in enumerate(as_completed(futures), start=1):
                seed, accuracy = future.result()
                accuracies[seed] = accuracy
                notify("run_end", {"index": index, "total": n_todo, "seed": seed, "test_accuracy": accuracy})
    return CollectSummary(
        dataset=plan.dataset_name,
        arch=plan.arch,
        trained=plan.todo,
        skipped=plan.done,
        test_accuracy=accuracies,
        store=plan.store,
    )


def import_scores(
    path: str | Path,
    name: str,
    dataset: str,
    store: str | Path | None = None,
    higher_is_harder: bool = True,
) -> Path:
    """Bring in a score computed elsewhere as a single-run score of ``dataset``.

    Parameters
    ----------
    path : CSV with columns ``example_id`` and one value column, or a ``.npy`` vector whose index
        is the example id.
    name : score name to store it under.
    dataset : a dataset already in the store (its example count is checked).
    """
    from gwas_models.formats.score_vector import read_score_vector

    store_path = run_store.resolve_store(store)
    info = run_store.read_dataset_info(store_path, dataset)
    path = Path(path)
    n_examples = int(info["n_examples"])
    example_id, values = read_score_vector(path, n_examples)
    if not np.isfinite(values).any():
        raise InputError(f"{path}: no finite values")
    full = np.full(n_examples, np.nan)
    full[example_id] = values
    return run_store.write_imported_score(store_path, dataset, name, np.arange(n_examples), full, higher_is_harder, str(path.resolve()))


