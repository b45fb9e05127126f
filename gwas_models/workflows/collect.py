"""Producing runs: train replicate runs into the store, list them, import scores made elsewhere."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TextIO

from gwas_models.errors import InputError
from gwas_models.formats.claims import DEFAULT_STALE_AFTER
from gwas_models.scores import parse_score_list

if TYPE_CHECKING:  # pandas is imported where runs are listed, not to start a collection
    import pandas as pd

    from gwas_models.training.executors import SlurmOptions

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
    batch_replicates: int | str = 1,
    keep_trajectories: bool = False,
    label: str | None = None,
    claim_timeout: float = DEFAULT_STALE_AFTER,
    executor: str = "local",
    slurm: SlurmOptions | Mapping[str, Any] | None = None,
    wait: bool = False,
    on_plan: Callable[[Any], None] | None = None,
    progress: Callable[[str, dict], None] | TextIO | None = None,
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
    batch_replicates : int or "auto"
        Train the runs K at a time as one batched model (:mod:`gwas_models.training.batched`): the
        same results as one by one, faster on a GPU and on a CPU with cores to spare. ``"auto"``
        takes the largest K that fits in the device's memory. Combines with ``workers`` (each
        process trains groups of K) and with the SLURM executor (each task trains a group of K).
        An architecture that cannot be batched is trained one run at a time, with a notice in
        ``plan.notices``.
    label : str, optional
        Name to store the runs under (default: ``arch``), e.g. ``resnet20-lr0.01`` for runs of
        ``resnet20`` with another learning rate: runs under one label must share one
        configuration, and a collection that differs from the runs stored under its label is
        refused before anything trains.
    claim_timeout : float
        Seconds without a heartbeat after which another collector's claim on a run is stale and
        taken over (a claim of a dead process on this host is stale at once).
    executor : {"local", "slurm"}
        ``local`` trains here (``workers`` processes); ``slurm`` submits every run the store lacks
        as one SLURM job array and returns (see :mod:`gwas_models.training.executors`). The
        submitting host needs no GPU: a ``device`` of ``cuda`` is checked on the compute nodes.
    slurm : SlurmOptions or mapping, optional
        Resources of each SLURM task: a :class:`~gwas_models.training.executors.SlurmOptions` or
        its fields as a mapping (text forms accepted: ``{"time_minutes": "2:00:00", "mem_gb":
        "8G", "extra": ["account=lab"]}``). Only with executor ``slurm``.
    wait : bool
        With executor ``slurm``: block until the job array ends, and report its failed runs.
    on_plan : callable(CollectPlan), optional
        Called once the plan is made, before training (e.g. to say which runs are skipped).
    progress : callable(event, info) or text stream, optional
        Progress events of the training (see :func:`gwas_models.training.collect.collect`); a
        stream (``sys.stderr``) gets them as plain lines with elapsed time and ETA
        (:class:`~gwas_models.training.executors.ProgressLines`).

    Returns
    -------
    gwas_models.training.collect.CollectSummary
        With executor ``local``.
    gwas_models.training.executors.SlurmCollection
        With executor ``slurm``: the job array submitted, and with ``wait`` how it ended.
    """
    from gwas_models.training.arch_names import parse_arch_name

    parse_arch_name(arch)  # a mistyped name is reported before anything heavy is loaded
    from gwas_models.training.collect import collect, parse_seeds, plan_collection
    from gwas_models.training.executors import ProgressLines, SlurmOptions, check_executor
    from gwas_models.training.models import parse_arch_options
    from gwas_models.training.train import preset as make_config

    if slurm is not None and not isinstance(slurm, SlurmOptions):
        slurm = SlurmOptions(**slurm)
    check_executor(executor, workers, slurm)
    # The submitting host may have no GPU: leave an explicit accelerator to the compute nodes.
    plan_device = "cpu" if executor == "slurm" and device in ("cuda", "mps") else device
    if plan_device != device and batch_replicates == "auto":
        raise InputError(
            f"batch_replicates 'auto' measures the memory of this machine's device, not of the compute nodes' {device}: "
            "give a number of runs per task with executor 'slurm'",
            parameter="batch_replicates",
        )

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
        device=plan_device,
        threads=threads,
        keep_trajectories=keep_trajectories,
        label=label,
        claim_timeout=claim_timeout,
        batch_replicates=batch_replicates,
        workers=workers,
    )
    if plan_device != device:
        plan = replace(plan, device=device)
    if on_plan is not None:
        on_plan(plan)
    if progress is not None and hasattr(progress, "write"):
        progress = ProgressLines(progress, len(plan.todo), plan.config["epochs"])
    return collect(plan, data, workers=workers, progress=progress, executor=executor, slurm=slurm, wait=wait)


#: What :func:`list_store_runs` can show.
VIEWS: tuple[str, ...] = ("summary", "detail", "check", "pending")


@dataclass(frozen=True)
class RunListing:
    """A view of a store's runs.

    Attributes
    ----------
    store : Path
    view : {"summary", "detail", "check", "pending"}
        Runs per dataset and label, or one row per run (sound runs only); what is wrong in the
        store (:func:`check_store`); or the claims of runs being trained (or left stale).
    table : DataFrame
    n_damaged : int
        Damaged runs left out of a ``summary`` or ``detail`` listing.
    """

    store: Path
    table: "pd.DataFrame"
    view: str = "summary"
    n_damaged: int = 0


def list_store_runs(
    store: str | os.PathLike | None = None,
    detail: bool = False,
    check: bool = False,
    pending: bool = False,
    claim_timeout: float = DEFAULT_STALE_AFTER,
) -> RunListing:
    """The runs of a store: per dataset and label, per run (``detail``), its problems (``check``),
    or its claims (``pending``).

    See :func:`gwas_models.formats.store.list_runs`, :func:`~gwas_models.formats.store.summarize_runs`,
    :func:`~gwas_models.formats.store.check_store` and :func:`~gwas_models.formats.store.list_claims`
    for the columns. ``claim_timeout`` decides which claims are stale. Damaged runs are never listed
    as complete.
    """
    from gwas_models.formats import store as run_store
    from gwas_models.formats.claims import check_stale_after

    if sum((detail, check, pending)) > 1:
        raise InputError("choose one of detail, check and pending")
    claim_timeout = check_stale_after(claim_timeout)
    path = run_store.resolve_store(store)
    if check:
        return RunListing(store=path, table=check_store(path, claim_timeout), view="check")
    if pending:
        return RunListing(store=path, table=run_store.list_claims(path, claim_timeout), view="pending")
    table = run_store.list_runs(path) if detail else run_store.summarize_runs(path)
    return RunListing(store=path, table=table, view="detail" if detail else "summary", n_damaged=len(run_store.damaged_runs(path)))


def check_store(store: str | os.PathLike | None = None, claim_timeout: float = DEFAULT_STALE_AFTER) -> "pd.DataFrame":
    """What is wrong in a store: leftovers of killed collectors and damaged runs, with the reason each.

    Leftovers are temporary run directories, stale claims and tombstones (with their age in
    seconds); damaged runs have an unreadable table, no provenance, provenance that names another
    dataset, label or seed, or another row count than the dataset's examples. Empty when the store
    is clean. The next collection of a label removes its leftovers and retrains its damaged runs.
    See :func:`gwas_models.formats.store.check_store`.
    """
    from gwas_models.formats import store as run_store

    return run_store.check_store(run_store.resolve_store(store), claim_timeout)


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
