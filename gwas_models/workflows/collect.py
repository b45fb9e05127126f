"""Producing runs: train replicate runs into the store, list them, import scores made elsewhere."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from gwas_models.errors import InputError
from gwas_models.scores import parse_score_list

if TYPE_CHECKING:  # pandas is imported where runs are listed, not to start a collection
    import pandas as pd

#: Directions of an imported score: higher values mean harder, or easier, examples.
DIRECTIONS: tuple[str, ...] = ("harder", "easier")


def collect_runs(
    arch: str,
    *,
    seeds: str | Iterable[int] | None = None,
    runs: int | None = None,
    preset: str = "digits",
    overrides: Mapping[str, Any] | None = None,
    dataset: str = "digits",
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    image_size: int | None = None,
    arch_options: Mapping[str, Any] | Iterable[str] | None = None,
    scores: str | Iterable[str] | None = None,
    store: str | os.PathLike | None = None,
    device: str = "auto",
    threads: int | None = None,
    workers: int = 1,
    keep_trajectories: bool = False,
    on_plan: Callable[[Any], None] | None = None,
    progress: Callable[[str, dict], None] | None = None,
):
    """Train the runs of ``arch`` that the store does not hold yet, and record their scores.

    Everything that can be checked (architecture, dataset, store, hyper-parameters) is checked
    before any training, so a bad request trains and writes nothing.

    Parameters
    ----------
    arch : str
        Architecture name (see :func:`gwas_models.training.models.build_model`), e.g. ``resnet20``
        or ``timm:vit_tiny_patch16_224``.
    seeds : str or iterable of int, optional
        Seeds to collect: ``"0-9,12"`` or a sequence. Exclusive with ``runs``.
    runs : int, optional
        Collect seeds ``0..runs-1`` (default 1 run).
    preset : str
        Training preset (:data:`gwas_models.training.train.PRESETS`).
    overrides : mapping, optional
        :class:`~gwas_models.training.train.TrainConfig` fields to change; ``None`` values are ignored.
    dataset, data_root, download, image_size
        Which data (see :func:`gwas_models.data.load_dataset`): a built-in name, an ``.npz`` file or
        an image folder (resized to ``image_size``).
    arch_options : mapping or iterable of ``"key=value"`` strings, optional
        Keyword arguments of the model's constructor (``timm:`` models), e.g. ``{"patch_size": 2}``.
    scores : str or iterable of str, optional
        Score definitions to record: ``paper`` (default: the paper's code), ``all``, or names and
        variants (``loss,vog:agarwal``); see :mod:`gwas_models.scores`.
    store : path, optional
        Run store (default ``$GWASM_STORE``, else ``./gwasm-store``).
    device, threads, workers, keep_trajectories
        Where and how to train (see :func:`gwas_models.training.collect.collect`).
    on_plan : callable(CollectPlan), optional
        Called once the plan is made, before training (e.g. to say which runs are skipped).
    progress : callable(event, info), optional
        Progress events of the training.

    Returns
    -------
    gwas_models.training.collect.CollectSummary
    """
    from gwas_models.training.arch_names import parse_arch_name

    parse_arch_name(arch)  # a mistyped name is reported before anything heavy is loaded
    from gwas_models.training.collect import collect, parse_seeds, plan_collection
    from gwas_models.training.models import parse_arch_options
    from gwas_models.training.train import preset as make_config

    config = make_config(preset, **dict(overrides or {}))
    seed_list = parse_seeds(seeds, runs) if seeds is None or isinstance(seeds, str) else sorted(set(seeds))
    score_names = parse_score_list(scores) if scores is None or isinstance(scores, str) else tuple(scores)
    if arch_options is not None and not isinstance(arch_options, Mapping):
        arch_options = parse_arch_options(arch_options)
    plan, data = plan_collection(
        arch,
        seed_list,
        config,
        dataset=dataset,
        data_root=None if data_root is None else str(data_root),
        download=download,
        image_size=image_size,
        arch_options=arch_options,
        scores=score_names,
        store=store,
        device=device,
        threads=threads,
        keep_trajectories=keep_trajectories,
    )
    if on_plan is not None:
        on_plan(plan)
    return collect(plan, data, workers=workers, progress=progress)


@dataclass(frozen=True)
class RunListing:
    """The runs of a store, one row per run (``detail``) or per dataset and architecture."""

    store: Path
    table: "pd.DataFrame"


def list_store_runs(store: str | os.PathLike | None = None, detail: bool = False) -> RunListing:
    """The runs of a store: per run with ``detail``, else per dataset and architecture.

    See :func:`gwas_models.formats.store.list_runs` and :func:`~gwas_models.formats.store.summarize_runs`
    for the columns.
    """
    from gwas_models.formats import store as run_store

    path = run_store.resolve_store(store)
    table = run_store.list_runs(path) if detail else run_store.summarize_runs(path)
    return RunListing(store=path, table=table)


def import_score_file(
    path: str | os.PathLike,
    name: str,
    dataset: str,
    store: str | os.PathLike | None = None,
    direction: str = "harder",
) -> Path:
    """Import a score computed elsewhere as a single-run score of ``dataset``.

    Parameters
    ----------
    path : path
        CSV with ``example_id`` and one value column, or a ``.npy`` vector indexed by example id.
    name : str
        Name to store it under.
    dataset : str
        A dataset of the store.
    store : path, optional
    direction : {"harder", "easier"}
        What higher values mean.

    Returns
    -------
    Path
        The imported score's file in the store.
    """
    from gwas_models.training.collect import import_scores

    if direction not in DIRECTIONS:
        raise InputError(f"direction must be harder or easier, got {direction!r}", parameter="direction")
    return import_scores(path, name, dataset, store=store, higher_is_harder=direction == "harder")
