"""Collect replicate runs of an architecture into the run store.

:func:`collect` validates everything it can before training anything (architecture, dataset,
store, hyper-parameters), then trains each seed that the store does not hold yet, so rerunning an
interrupted collection resumes it. Runs execute one after another in this process, in worker
processes with one compute thread each (more threads than cores slows training several-fold), or
as a SLURM job array (:mod:`gwas_models.training.executors`).
"""

from __future__ import annotations

import platform
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from gwas_models import __version__
from gwas_models.data import ImageDataset, load_dataset
from gwas_models.errors import InputError
from gwas_models.formats import claims
from gwas_models.formats import store as run_store
from gwas_models.formats.configuration import configuration_id, run_configuration
from gwas_models.scores import SCORE_NAMES, definition_record, score_info

if TYPE_CHECKING:  # the executors import this module
    from gwas_models.training.executors import SlurmCollection, SlurmOptions

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
    """Everything a collection needs; built and validated by :func:`plan_collection`.

    ``label`` is the name the runs are stored under (the architecture unless named otherwise);
    ``configuration`` and ``configuration_id`` what they compute
    (:mod:`gwas_models.formats.configuration`). Of ``seeds``, ``done`` are complete in the store,
    ``claimed`` are being trained by another live collector (``claimed_by``: seed to holder), and
    ``todo`` remain, ``damaged`` among them (a damaged run is retrained and replaced).
    """

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
    label: str = ""
    claim_timeout: float = claims.DEFAULT_STALE_AFTER
    configuration: dict = field(default_factory=dict)
    configuration_id: str = ""
    claimed: tuple[int, ...] = field(default_factory=tuple)
    claimed_by: dict = field(default_factory=dict)
    damaged: tuple[int, ...] = field(default_factory=tuple)
    batch_replicates: int = 1
    notices: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.label:  # a plan made by hand stores its runs under the architecture's name
            object.__setattr__(self, "label", self.arch)


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_claimed` did with one seed.

    Attributes
    ----------
    seed : int
    status : {"trained", "exists", "claimed"}
        Trained and written now; found complete (another collector finished it); or left to the
        live collector that holds its claim.
    test_accuracy : float
        Of the run trained or found (NaN without a test split, or when claimed).
    holder : str or None
        For ``claimed``: who holds the claim, ``host:pid`` with ``/job`` under a batch system.
    """

    seed: int
    status: str
    test_accuracy: float = float("nan")
    holder: str | None = None


@dataclass(frozen=True)
class CollectSummary:
    """What a collection did: runs trained and runs found already complete."""

    dataset: str
    arch: str
    trained: tuple[int, ...]
    skipped: tuple[int, ...]
    test_accuracy: dict[int, float]
    store: str
    #: Seeds left to another live collector, with who holds each (``host:pid``).
    claimed: dict[int, str] = field(default_factory=dict)


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
    label: str | None = None,
    claim_timeout: float = claims.DEFAULT_STALE_AFTER,
    batch_replicates: int | str = 1,
    workers: int = 1,
) -> tuple[CollectPlan, ImageDataset]:
    """Validate a collection and find which seeds still need training; trains nothing.

    Runs are stored under ``label`` (default: ``arch``). A collection whose configuration differs
    from the runs already stored under that label is refused (:class:`StoreError` naming each
    differing setting). Leftovers of killed collectors under the label are removed, seeds a live
    collector has claimed are set apart (``plan.claimed``), and a claim without a heartbeat for
    ``claim_timeout`` seconds counts as stale.

    ``batch_replicates`` K > 1 trains the runs K at a time as one batched model
    (:mod:`gwas_models.training.batched`); ``"auto"`` takes the largest K that fits in the device's
    memory for the runs each of ``workers`` processes trains. An architecture that cannot be
    batched (timm models, user factories) is trained one run at a time, with a notice in
    ``plan.notices``.
    """
    from gwas_models.training.models import build_model  # torch wing, imported on use
    from gwas_models.training.train import resolve_device

    scores = tuple(score_info(s).name for s in scores)
    if not scores:
        raise InputError("no scores requested")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}", parameter="threads")
    label = run_store.check_label(arch if label is None else label)
    claim_timeout = claims.check_stale_after(claim_timeout)
    check_batch_replicates(batch_replicates)
    resolve_device(device)
    store_path = run_store.resolve_store(store)
    data = load_dataset(dataset, data_root=data_root, download=download, image_size=image_size)
    arch_options = dict(arch_options or {})
    build_model(arch, data.n_classes, data.input_shape, init_seed=0, options=arch_options)  # fails early on a bad arch
    run_store.check_writable(store_path)
    run_store.check_dataset_info(store_path, data.name, data.info())
    configuration = run_configuration(_configuration_fields(arch, arch_options, config.to_dict(), scores, data))
    run_store.check_configuration(store_path, data.name, label, configuration)
    run_store.clean_leftovers(store_path, data.name, label, claim_timeout)
    seeds = tuple(seeds)
    states = _seed_states(store_path, run_store.RunKey(data.name, label, 0), seeds, data.n_examples, claim_timeout)
    todo = tuple(s for s in seeds if states[s] in ("missing", "damaged"))
    n_replicates, notices = _replicates_per_group(batch_replicates, arch, data, config, device, todo, workers)
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
        done=tuple(s for s in seeds if states[s] == "done"),
        label=label,
        claim_timeout=claim_timeout,
        configuration=configuration,
        configuration_id=configuration_id(configuration),
        claimed=tuple(s for s in seeds if states[s].startswith("claimed")),
        claimed_by={s: states[s].split(" ", 1)[1] for s in seeds if states[s].startswith("claimed")},
        damaged=tuple(s for s in seeds if states[s] == "damaged"),
        batch_replicates=n_replicates,
        notices=notices,
    )
    return plan, data


def check_batch_replicates(batch_replicates: int | str) -> None:
    """Refuse a number of batched replicates that is neither a positive integer nor ``"auto"``."""
    if batch_replicates == "auto":
        return
    if isinstance(batch_replicates, bool) or not isinstance(batch_replicates, int) or batch_replicates < 1:
        raise InputError(f"batch_replicates must be a positive integer or 'auto', got {batch_replicates!r}", parameter="batch_replicates")


def _replicates_per_group(
    batch_replicates: int | str, arch: str, data: ImageDataset, config, device: str, todo: tuple[int, ...], workers: int
) -> tuple[int, tuple[str, ...]]:
    """The K runs trained together, and a notice when the architecture cannot be batched."""
    if batch_replicates == 1 or len(todo) < 2:
        return 1, ()
    from gwas_models.training.batched import can_batch, choose_n_replicates
    from gwas_models.training.train import DeviceData, resolve_device

    if not can_batch(arch):
        return 1, (f"{arch} cannot be trained as a batched model (only the built-in ResNets, VGGs and MLP can): training its runs one at a time",)
    runs_per_worker = -(-len(todo) // max(1, workers))
    if batch_replicates == "auto":
        torch_device = resolve_device(device)
        return choose_n_replicates(arch, DeviceData.from_dataset(data, torch_device), config, torch_device, runs_per_worker), ()
    return min(int(batch_replicates), len(todo)), ()


def replicate_groups(plan: CollectPlan, seeds: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """The seeds of ``plan.todo`` (or ``seeds``) in groups of ``plan.batch_replicates``, trained together."""
    seeds = tuple(plan.todo if seeds is None else seeds)
    size = max(1, plan.batch_replicates)
    return [seeds[start : start + size] for start in range(0, len(seeds), size)]


def _configuration_fields(arch: str, arch_options: Mapping[str, Any], config: Mapping[str, Any], scores: Iterable[str], data: ImageDataset) -> dict:
    """The provenance fields a run's configuration is read from, as :func:`_train_and_write` records them."""
    return {
        "arch": arch,
        "arch_options": dict(arch_options),
        "config": dict(config),
        "score_definitions": definition_record(scores),
        "dataset": data.name,
        "dataset_source": data.source,
        "n_examples": data.n_examples,
    }


def _seed_states(store: Path, first: run_store.RunKey, seeds: Iterable[int], n_examples: int, claim_timeout: float) -> dict[int, str]:
    """Each seed's state: ``done``, ``damaged``, ``claimed <holder>`` or ``missing``."""
    live = run_store.live_claims(store, first.dataset, first.arch, claim_timeout)
    states = {}
    for seed in seeds:
        key = run_store.RunKey(first.dataset, first.arch, seed)
        damage = run_store.run_damage(store, key, n_examples) if run_store.run_dir(store, key).exists() else "no run directory"
        if damage is None:
            states[seed] = "done"
        elif seed in live:
            states[seed] = f"claimed {live[seed].holder}"
        else:
            states[seed] = "missing" if damage == "no run directory" else "damaged"
    return states


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


GroupEpochCallback = Callable[[int, int, float], None]
"""Progress of a group of runs: ``(seed, epoch, running_train_accuracy)``."""


def run_claimed(
    plan: CollectPlan, seed: int, data: ImageDataset | None = None, on_epoch=None, job_id: str | None = None
) -> RunOutcome:
    """Claim one seed of a plan, train and write it unless it is done or claimed, release the claim.

    Concurrent collectors on one store (terminals, job arrays, nodes) train each run once. The
    claim is released when the run is written, and when training fails or is interrupted.

    Parameters
    ----------
    plan : CollectPlan
    seed : int
    data : ImageDataset, optional
        The plan's dataset, when the caller has it loaded (else it is loaded).
    on_epoch : callable(epoch, train_accuracy), optional
    job_id : str, optional
        The batch job that runs this seed (default: read from ``SLURM_*``; None outside SLURM).

    Returns
    -------
    RunOutcome
    """
    per_seed = None if on_epoch is None else (lambda _seed, epoch, accuracy: on_epoch(epoch, accuracy))
    return run_claimed_group(plan, (seed,), data=data, on_epoch=per_seed, job_id=job_id)[seed]


def run_claimed_group(
    plan: CollectPlan,
    seeds: Iterable[int],
    data: ImageDataset | None = None,
    on_epoch: GroupEpochCallback | None = None,
    job_id: str | None = None,
) -> dict[int, RunOutcome]:
    """Claim a group of seeds, train those neither done nor claimed elsewhere, write each, release.

    This is what every executor runs per group of :func:`replicate_groups`: with
    ``plan.batch_replicates`` above 1, the seeds it holds train together as one batched model
    (:func:`gwas_models.training.batched.train_replicates`), else one after another. Every run is
    written as its own complete run; the claims are released once the group is written, or when
    training fails or is interrupted.

    Returns
    -------
    dict mapping each seed to its :class:`RunOutcome`.
    """
    import contextlib

    store = Path(plan.store)
    job = job_id if job_id is not None else claims.current_job_id()
    outcomes: dict[int, RunOutcome] = {}
    with contextlib.ExitStack() as held_claims:
        mine = []
        for seed in seeds:
            key = run_store.RunKey(plan.dataset_name, plan.label, seed)
            directory = run_store.run_dir(store, key)
            run_store.check_writable(directory.parent)
            held = claims.acquire(claims.claim_file(directory), plan.claim_timeout, job)
            if isinstance(held, claims.ClaimInfo):
                outcomes[seed] = RunOutcome(seed, "claimed", holder=held.holder)
                continue
            held_claims.enter_context(held)
            # Another collector may have finished the run between the plan and the claim.
            if run_store.run_exists(store, key) and run_store.run_damage(store, key) is None:
                outcomes[seed] = RunOutcome(seed, "exists", _stored_accuracy(store, key))
            else:
                mine.append(seed)
        if len(mine) > 1 and plan.batch_replicates > 1:
            accuracies = run_batched(plan, mine, data=data, on_epoch=on_epoch, job_id=job)
        else:
            accuracies = {}
            for seed in mine:
                per_epoch = None if on_epoch is None else (lambda epoch, accuracy, seed=seed: on_epoch(seed, epoch, accuracy))
                accuracies[seed] = run_one(plan, seed, data=data, on_epoch=per_epoch, job_id=job)
        outcomes.update({seed: RunOutcome(seed, "trained", accuracy) for seed, accuracy in accuracies.items()})
    return {seed: outcomes[seed] for seed in seeds}


def _stored_accuracy(store: Path, key: run_store.RunKey) -> float:
    accuracy = run_store.read_provenance(store, key).get("test_accuracy")
    return float("nan") if accuracy is None else float(accuracy)


@contextmanager
def _thread_count(threads: int | None) -> Iterator[None]:
    """Compute with ``threads`` threads (None: as is), then give the caller back the count it had
    (the count is process-wide)."""
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)


def run_one(plan: CollectPlan, seed: int, data: ImageDataset | None = None, on_epoch=None, job_id: str | None = None) -> float:
    """Train one seed of a plan, write it to the store, and return its test accuracy.

    No claim is taken: executors call :func:`run_claimed_group`, which calls this.
    """
    with _thread_count(plan.threads):
        return _train_and_write(plan, seed, data, on_epoch, job_id)


def run_batched(
    plan: CollectPlan, seeds: Iterable[int], data: ImageDataset | None = None, on_epoch: GroupEpochCallback | None = None, job_id: str | None = None
) -> dict[int, float]:
    """Train several seeds of a plan as one batched model, write each as its own run, return their
    test accuracies. No claim is taken (see :func:`run_claimed_group`)."""
    with _thread_count(plan.threads):
        return _train_and_write_batched(plan, tuple(seeds), data, on_epoch, job_id)


def _recorder(plan: CollectPlan, device_data, n_classes: int, config, n_replicates: int = 1):
    from gwas_models.training.recorder import ScoreRecorder

    return ScoreRecorder(
        device_data.x_train,
        device_data.y_train,
        n_classes,
        config.epochs,
        scores=plan.scores,
        early_epoch=config.early_epoch,
        vog_checkpoints=config.vog_checkpoints,
        eval_batch_size=config.eval_batch_size,
        keep_trajectories=plan.keep_trajectories,
        n_replicates=n_replicates,
    )


def _train_and_write(plan: CollectPlan, seed: int, data: ImageDataset | None, on_epoch, job_id: str | None = None) -> float:
    from gwas_models.training.models import build_model
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, resolve_device, train

    data = data if data is not None else load_dataset(plan.dataset_spec, data_root=plan.data_root, image_size=plan.image_size)
    config = TrainConfig(**plan.config)
    device = resolve_device(plan.device)
    streams = SeedStreams(seed)
    model = build_model(plan.arch, data.n_classes, data.input_shape, streams.init, options=plan.arch_options).to(device)
    device_data = DeviceData.from_dataset(data, device)
    recorder = _recorder(plan, device_data, data.n_classes, config)
    started_at = _now()
    result = train(model, device_data, config, streams, recorder=recorder, on_epoch=on_epoch)
    provenance = _provenance(plan, data, streams, model, recorder, result, device, started_at, job_id)
    trajectories = recorder.trajectories() if plan.keep_trajectories else None
    _write(plan, data, seed, recorder.scores(), provenance, trajectories)
    return result["test_accuracy"]


def _train_and_write_batched(
    plan: CollectPlan, seeds: tuple[int, ...], data: ImageDataset | None, on_epoch: GroupEpochCallback | None, job_id: str | None
) -> dict[int, float]:
    from gwas_models.training.batched import build_batched, train_replicates
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, resolve_device

    data = data if data is not None else load_dataset(plan.dataset_spec, data_root=plan.data_root, image_size=plan.image_size)
    config = TrainConfig(**plan.config)
    device = resolve_device(plan.device)
    streams = [SeedStreams(seed) for seed in seeds]
    model = build_batched(plan.arch, data.n_classes, data.input_shape, streams, device)
    device_data = DeviceData.from_dataset(data, device)
    recorder = _recorder(plan, device_data, data.n_classes, config, n_replicates=len(seeds))
    started_at = _now()

    def per_seed(epoch: int, accuracies: list[float]) -> None:
        for seed, accuracy in zip(seeds, accuracies):
            on_epoch(seed, epoch, accuracy)

    results = train_replicates(model, device_data, config, streams, recorder=recorder, on_epoch=None if on_epoch is None else per_seed)
    scores = recorder.replicate_scores()
    trajectories = recorder.replicate_trajectories() if plan.keep_trajectories else [None] * len(seeds)
    batched = {"n_replicates": len(seeds), "seeds": list(seeds)}
    for k, seed in enumerate(seeds):
        provenance = _provenance(plan, data, streams[k], model.replicate(k), recorder, results[k], device, started_at, job_id, batched)
        _write(plan, data, seed, scores[k], provenance, trajectories[k])
    return {seed: result["test_accuracy"] for seed, result in zip(seeds, results)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _provenance(plan: CollectPlan, data: ImageDataset, streams, model, recorder, result: dict, device, started_at: str, job_id: str | None, batched: dict | None = None) -> dict:
    """A run's provenance: what produced it (its configuration and configuration id), and how."""
    import torch

    from gwas_models.training.models import count_parameters, model_description

    provenance = {
        "dataset": data.name,
        "dataset_source": data.source,
        # The name the run is stored under; the architecture built is "arch".
        "label": plan.label,
        "arch": plan.arch,
        "arch_options": dict(plan.arch_options),
        "model": model_description(plan.arch, plan.arch_options, data.n_classes, data.input_shape),
        "seed": streams.seed,
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
        # A batched run's time is that of the whole batch it trained in.
        "wall_time_s": result["wall_time_s"],
        "device": str(device),
        "n_threads": torch.get_num_threads(),
        # Trained alone (None), or as replicate of a batched model with the runs of these seeds:
        # an execution detail, not part of the configuration (float64 results agree to 1e-13).
        "batched": batched,
        "host": socket.gethostname(),
        "job_id": job_id if job_id is not None else claims.current_job_id(),
        "job_environment": claims.job_environment() or None,
        "started_at": started_at,
        "versions": _versions(),
    }
    # Read back from the fields above, as the store reads every run (old ones too).
    provenance["configuration"] = run_configuration(provenance)
    provenance["configuration_id"] = configuration_id(provenance["configuration"])
    return provenance


def _write(plan: CollectPlan, data: ImageDataset, seed: int, scores: Mapping[str, np.ndarray], provenance: dict, trajectories) -> None:
    key = run_store.RunKey(data.name, plan.label, seed)
    table = run_store.run_table(np.arange(data.n_examples), data.y_train, scores)
    run_store.write_dataset_info(Path(plan.store), data.name, data.info())
    run_store.write_run(Path(plan.store), key, table, provenance, trajectories)


def collect(
    plan: CollectPlan,
    data: ImageDataset,
    workers: int = 1,
    progress: ProgressHook | None = None,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    wait: bool = False,
) -> CollectSummary | SlurmCollection:
    """Train every seed of ``plan.todo`` and write each run to the store as it completes.

    Each seed is claimed before it trains (:func:`run_claimed`), so collectors sharing a store
    train each run once. The executors are in :mod:`gwas_models.training.executors`.

    Parameters
    ----------
    workers : int
        With executor ``local``: 1 trains in this process; more starts that many worker processes
        (one compute thread each unless ``plan.threads`` says otherwise).
    progress : callable(event, info), optional
        Called with ``("run_start", {...})``, ``("epoch", {...})`` and ``("run_end", {...})`` for
        local runs (``run_end`` has ``status``: trained, exists or claimed), and with
        ``("slurm_status", {...})`` while waiting for a SLURM job array.
    executor : {"local", "slurm"}
        ``slurm`` submits the runs as one SLURM job array (:func:`~gwas_models.training.executors.submit_to_slurm`).
    slurm : SlurmOptions, optional
        Resources of each SLURM task (default :class:`~gwas_models.training.executors.SlurmOptions`).
    wait : bool
        With executor ``slurm``: block until the job array ends and report its failures.

    Returns
    -------
    CollectSummary
        For executor ``local``.
    SlurmCollection
        For executor ``slurm``: the job submitted, and with ``wait`` how it ended.
    """
    from gwas_models.training import executors

    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}", parameter="workers")
    executors.check_executor(executor, workers, slurm)
    notify = progress or (lambda event, info: None)
    if executor == "slurm":
        submission = executors.submit_to_slurm(plan, slurm if slurm is not None else executors.SlurmOptions())
        return executors.wait_for_slurm(plan, submission, notify) if wait else submission
    if workers == 1 or len(plan.todo) <= 1:
        outcomes = executors.run_in_process(plan, data, notify)
    else:
        outcomes = executors.run_in_workers(plan, workers, notify)
    return CollectSummary(
        dataset=plan.dataset_name,
        arch=plan.arch,
        trained=tuple(s for s in plan.todo if outcomes[s].status == "trained"),
        skipped=tuple(sorted(plan.done + tuple(s for s in plan.todo if outcomes[s].status == "exists"))),
        test_accuracy={s: o.test_accuracy for s, o in outcomes.items() if o.status != "claimed"},
        store=plan.store,
        claimed={**plan.claimed_by, **{s: o.holder for s, o in outcomes.items() if o.status == "claimed"}},
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


