"""Where the runs of a collection train: in this process, in local worker processes, or as a SLURM job array.

:func:`gwas_models.training.collect.collect` plans what to train and dispatches here.

- In this process (:func:`run_in_process`): runs one after another; Ctrl-C stops at once, and the
  store only ever holds complete runs (each is written atomically).
- Local workers (:func:`run_in_workers`): a pool of spawned processes, one compute thread each.
  Workers report epochs back through a queue, so progress is per epoch as in this process. On
  Ctrl-C (or any failure) the queued runs are cancelled and the workers terminated: each worker
  turns SIGTERM into an exception, so the run it was training unwinds (its claim and temporary
  directory go) before the process exits.
- SLURM (:func:`submit_to_slurm`, :func:`wait_for_slurm`): every run the store lacks becomes one task
  of one job array submitted through submitit. Tasks write into the store on the shared
  filesystem; job logs and submitit's pickles go into ``<store>/.slurm/`` (hidden: dataset
  discovery skips it), with one JSON record per submission so that a second submission skips the
  runs still queued. A task that hits its time limit or is preempted is requeued by submitit's
  checkpointing and restarts its run from scratch.

:class:`ProgressLines` writes progress as plain lines (elapsed time, ETA) for output that is not a
terminal: a pipe, ``nohup``, a SLURM log.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty
from typing import Any, Callable, Iterable, Iterator, Mapping, TextIO

import submitit

from gwas_models.data import ImageDataset
from gwas_models.errors import InputError
from gwas_models.formats import store as run_store
from gwas_models.formats.atomic import write_text_atomic
from gwas_models.matrix import format_seeds
from gwas_models.training import collect as collect_module
from gwas_models.training.collect import CollectPlan, RunOutcome

ProgressHook = Callable[[str, dict], None]

#: Where the runs of a collection can train.
EXECUTORS: tuple[str, ...] = ("local", "slurm")
#: The folder of a store that holds SLURM job logs and submission records (hidden from datasets).
SLURM_DIR = ".slurm"
#: sbatch settings that gwasm sets itself: from its own options, or for the job array to work.
_OWN_SBATCH_SETTINGS = {
    "partition": "partition",
    "time": "time_minutes",
    "cpus-per-task": "cpus_per_run",
    "gpus-per-node": "gpus_per_run",
    "gpus": "gpus_per_run",
    "mem": "mem_gb",
    "array": None,
    "job-name": None,
    "output": None,
    "error": None,
    "open-mode": None,
    "signal": None,
}
#: squeue states of a task that will still run (or runs).
_WAITING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED"}
_RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
#: States of a task that may have written its run: a slow shared filesystem can show the run (or
#: the result) some seconds after the task ended.
_ENDED_WELL = {"COMPLETED", "GONE"}
#: Seconds such a task may have ended without its run or result in sight before it counts as failed.
_RESULT_GRACE_S = 10.0


# --------------------------------------------------------------------------------------------
# SLURM options
# --------------------------------------------------------------------------------------------


def parse_time_minutes(value: int | str) -> int:
    """A SLURM time limit in whole minutes (seconds round up).

    Parameters
    ----------
    value : int or str
        Minutes, or ``"HH:MM:SS"``, ``"MM:SS"``, ``"D-HH:MM:SS"``, ``"D-HH"`` as sbatch reads them.

    Raises
    ------
    InputError
        Unreadable, or under one minute.
    """
    text = str(value).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if match is None:
        raise InputError(f"time_minutes must be minutes or HH:MM:SS, got {value!r}", parameter="time_minutes")
    days, first, second, third = match.groups()
    numbers = [int(v) for v in (first, second, third) if v is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        numbers += [0] * (3 - len(numbers))
        seconds = int(days) * 86400 + numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    elif len(numbers) == 1:  # MM
        seconds = numbers[0] * 60
    elif len(numbers) == 2:  # MM:SS
        seconds = numbers[0] * 60 + numbers[1]
    else:  # HH:MM:SS
        seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    if seconds < 60:
        raise InputError(f"time_minutes must be at least 1 minute, got {value!r}", parameter="time_minutes")
    return math.ceil(seconds / 60)


_MEMORY_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def parse_memory_gb(value: float | int | str) -> float:
    """Memory per run in GB: a number of GB, or text with a unit as sbatch writes it (``8G``, ``512M``).

    Raises
    ------
    InputError
        Unreadable, without a unit (sbatch would read a bare number as megabytes), or not positive.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        gigabytes = float(value)
    else:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGTkmgt])[Bb]?", str(value).strip())
        if match is None:
            raise InputError(f"mem_gb must be a size with a unit, e.g. 8G or 512M, got {value!r}", parameter="mem_gb")
        gigabytes = float(match.group(1)) * _MEMORY_UNITS[match.group(2).upper()]
    if not gigabytes > 0 or not math.isfinite(gigabytes):
        raise InputError(f"mem_gb must be positive, got {value!r}", parameter="mem_gb")
    return gigabytes


def parse_sbatch_settings(items: Mapping[str, Any] | Iterable[str]) -> dict[str, str]:
    """Extra sbatch settings: ``{"account": "lab"}`` or ``["account=lab", "qos=short"]``.

    Keys are sbatch's long option names without the dashes; underscores read as dashes.

    Raises
    ------
    InputError
        An item without ``=``, an empty or malformed key, a one-letter key (use the long name), or a
        setting that gwasm sets itself.
    """
    pairs: list[tuple[str, Any]] = []
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        for item in items:
            key, equals, value = str(item).partition("=")
            if not equals or not value.strip():
                raise InputError(f"extra settings are KEY=VALUE, got {item!r}", parameter="extra")
            pairs.append((key, value))
    settings: dict[str, str] = {}
    for key, value in pairs:
        name = str(key).strip().replace("_", "-")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise InputError(f"extra setting {key!r} is not an sbatch option name (e.g. account, qos)", parameter="extra")
        if len(name) == 1:
            raise InputError(f"extra setting {key!r}: use sbatch's long option name", parameter="extra")
        if name in _OWN_SBATCH_SETTINGS:
            owner = _OWN_SBATCH_SETTINGS[name]
            reason = f"set it with {owner}" if owner else "gwasm sets it for the job array"
            raise InputError(f"extra setting {name!r} cannot be passed through: {reason}", parameter="extra")
        settings[name] = str(value).strip()
    return settings


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of each task of a SLURM job array (one task trains one run).

    Text forms are accepted where a user types them, and normalised on construction.

    Attributes
    ----------
    partition : str, optional
        The partition (default: the cluster's default partition).
    time_minutes : int or str
        Time limit of a task: minutes, or ``"HH:MM:SS"``. A task that reaches it is requeued and its
        run restarts, so give a run's training time with a margin.
    cpus_per_run : int
        CPUs of a task; also its compute threads unless the collection sets ``threads``.
    gpus_per_run : int
        GPUs of a task (``gpus-per-node``); 0 asks for none.
    mem_gb : float or str, optional
        Memory of a task in GB, or ``"8G"``, ``"512M"`` (default: the partition's default).
    array_parallelism : int, optional
        Most tasks of the array running at once (default: as many as the cluster allows).
    extra : mapping or iterable of ``"KEY=VALUE"``
        Other sbatch settings, passed through (``{"account": "lab", "qos": "short"}``).
    """

    partition: str | None = None
    time_minutes: int | str = 60
    cpus_per_run: int = 1
    gpus_per_run: int = 0
    mem_gb: float | str | None = None
    array_parallelism: int | None = None
    extra: Mapping[str, str] | Iterable[str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.partition is not None and not re.fullmatch(r"[^\s,]+(,[^\s,]+)*", str(self.partition)):
            raise InputError(f"partition must be a partition name, got {self.partition!r}", parameter="partition")
        object.__setattr__(self, "time_minutes", parse_time_minutes(self.time_minutes))
        if self.mem_gb is not None:
            object.__setattr__(self, "mem_gb", parse_memory_gb(self.mem_gb))
        for name, low in (("cpus_per_run", 1), ("gpus_per_run", 0), ("array_parallelism", 1)):
            value = getattr(self, name)
            if value is None and name == "array_parallelism":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name} must be an integer of at least {low}, got {value!r}", parameter=name)
        object.__setattr__(self, "extra", parse_sbatch_settings(self.extra))

    def sbatch_parameters(self) -> dict[str, Any]:
        """The parameters of :class:`submitit.SlurmExecutor` these options stand for."""
        parameters: dict[str, Any] = {"time": self.time_minutes, "cpus_per_task": self.cpus_per_run}
        if self.partition is not None:
            parameters["partition"] = self.partition
        if self.gpus_per_run:
            parameters["gpus_per_node"] = self.gpus_per_run
        if self.mem_gb is not None:
            parameters["mem"] = f"{max(1, math.ceil(self.mem_gb * 1024))}M"
        if self.array_parallelism is not None:
            parameters["array_parallelism"] = self.array_parallelism
        if self.extra:
            parameters["additional_parameters"] = dict(self.extra)
        return parameters


# --------------------------------------------------------------------------------------------
# Progress as plain lines
# --------------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``72`` -> ``"1m12s"``, ``3725`` -> ``"1h02m"``, ``9`` -> ``"9s"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines:
    """A progress hook that writes one plain line per finished epoch, run, or change of job states.

    For output that is not a terminal (a pipe, ``nohup``, a SLURM log), where a progress bar
    prints nothing useful. Each line has the time of day, the elapsed time and an estimate of the
    time left, from the epochs done so far::

        [12:03:05] run 3/8 seed 2 epoch 7/30 train acc 0.912 elapsed 1m12s eta 9m40s

    Parameters
    ----------
    stream : text stream
        Where to write (flushed after each line).
    n_runs, epochs : int
        Runs of the collection and epochs of each, for the ETA.
    clock : callable, optional
        Seconds, monotonic (default :func:`time.monotonic`).
    """

    def __init__(self, stream: TextIO, n_runs: int, epochs: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.epochs = epochs
        self.total_epochs = n_runs * epochs
        self.clock = clock
        self.started = clock()
        self.epochs_done: dict[int, int] = {}
        self.last_status: tuple | None = None

    def __call__(self, event: str, info: dict) -> None:
        if event == "epoch":
            self.epochs_done[info["seed"]] = info["epoch"]
            self._write(
                f"run {info['index']}/{info['total']} seed {info['seed']} epoch {info['epoch']}/{self.epochs} "
                f"train acc {info['train_accuracy']:.3f}"
            )
        elif event == "run_end":
            status = info.get("status", "trained")
            head = f"run {info['index']}/{info['total']} seed {info['seed']}"
            if status == "trained":
                self.epochs_done[info["seed"]] = self.epochs
                accuracy = info["test_accuracy"]
                self._write(f"{head} done, " + ("no test split" if accuracy != accuracy else f"test acc {accuracy:.4f}"))
            else:
                # Not trained here: its epochs leave the estimate rather than count as done.
                self.total_epochs -= self.epochs - self.epochs_done.pop(info["seed"], 0)
                reason = "found in the store" if status == "exists" else f"left to {info.get('holder')}, who holds its claim"
                self._write(f"{head} {reason}")
        elif event == "slurm_status":
            status = tuple(info[k] for k in ("finished", "running", "pending", "failed"))
            if status != self.last_status:
                self.last_status = status
                self._write(
                    f"job {info['job_id']}: {info['finished']}/{info['total']} runs finished, {info['running']} running, "
                    f"{info['pending']} pending, {info['failed']} failed",
                    eta_from=(info["finished"] + info["failed"], info["total"]),
                )

    def _write(self, text: str, eta_from: tuple[int, int] | None = None) -> None:
        elapsed = self.clock() - self.started
        done, total = eta_from if eta_from is not None else (sum(self.epochs_done.values()), self.total_epochs)
        eta = format_duration(elapsed * (total - done) / done) if done else "?"
        stamp = datetime.now().strftime("%H:%M:%S")
        self.stream.write(f"[{stamp}] {text} elapsed {format_duration(elapsed)} eta {eta}\n")
        self.stream.flush()


# --------------------------------------------------------------------------------------------
# Local execution
# --------------------------------------------------------------------------------------------


def _train(plan: CollectPlan, seeds: tuple[int, ...], data: ImageDataset | None = None, on_epoch=None, job_id: str | None = None) -> dict[int, RunOutcome]:
    """Claim, train and write a group of seeds (:func:`~gwas_models.training.collect.run_claimed_group`):
    every executor trains through here."""
    # Looked up on the module at each call, so that tests can replace it.
    return collect_module.run_claimed_group(plan, seeds, data=data, on_epoch=on_epoch, job_id=job_id)


def _run_end(outcome: RunOutcome) -> dict:
    return {"test_accuracy": outcome.test_accuracy, "status": outcome.status, "holder": outcome.holder}


def run_in_process(plan: CollectPlan, data: ImageDataset, notify: ProgressHook) -> dict[int, RunOutcome]:
    """Train ``plan.todo`` in this process, one group of batched replicates after another
    (one run after another unless ``plan.batch_replicates`` > 1); return each seed's outcome.

    A KeyboardInterrupt propagates at once: the runs being trained are dropped, earlier runs stay.
    """
    outcomes: dict[int, RunOutcome] = {}
    runs = _RunIndex(len(plan.todo))
    for group in collect_module.replicate_groups(plan):
        for seed in group:
            notify("run_start", runs.info(seed, arch=plan.arch))

        def on_epoch(seed: int, epoch: int, accuracy: float) -> None:
            notify("epoch", runs.info(seed, epoch=epoch, train_accuracy=accuracy))

        outcomes.update(_train(plan, group, data=data, on_epoch=on_epoch))
        for seed in group:
            notify("run_end", runs.info(seed, **_run_end(outcomes[seed])))
    return outcomes


# State of a worker process (set by its initializer).
_worker_events = None
_worker_terminating = False


def _on_terminate(signum: int, frame: Any) -> None:
    # Unwind the run being trained (its claim and temporary directory are removed on the way out);
    # the task wrapper then ends the process rather than take the next queued run.
    global _worker_terminating
    _worker_terminating = True
    raise SystemExit(128 + signum)


def _init_worker(events) -> None:
    global _worker_events
    # Ctrl-C on a terminal signals the whole process group: the parent alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_terminate)
    # One compute thread per worker unless told otherwise (set before torch is imported).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker_events = events


def _worker_run(plan: CollectPlan, seeds: tuple[int, ...]) -> dict[int, RunOutcome]:
    events = _worker_events
    for seed in seeds:
        events.put(("run_start", seed, {}))

    def on_epoch(seed: int, epoch: int, accuracy: float) -> None:
        events.put(("epoch", seed, {"epoch": epoch, "train_accuracy": accuracy}))

    try:
        return _train(plan, seeds, on_epoch=on_epoch)
    except SystemExit:
        if _worker_terminating:
            os._exit(143)
        raise


class _RunIndex:
    """Numbers runs in the order they start, for "run i/n" (workers start them in any order)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.index: dict[int, int] = {}
        self.ended: set[int] = set()

    def info(self, seed: int, **extra: Any) -> dict:
        index = self.index.setdefault(seed, len(self.index) + 1)
        return {"index": index, "total": self.total, "seed": seed, **extra}


def _relay(events, runs: _RunIndex, notify: ProgressHook, plan: CollectPlan, timeout: float) -> None:
    """Pass the workers' events on to ``notify``: wait up to ``timeout`` for the first, then drain."""
    while True:
        try:
            event, seed, extra = events.get(timeout=timeout) if timeout > 0 else events.get_nowait()
        except Empty:
            return
        timeout = 0
        if seed in runs.ended:  # an epoch event that arrived after its run's result
            continue
        if event == "run_start":
            notify("run_start", runs.info(seed, arch=plan.arch))
        else:
            notify(event, runs.info(seed, **extra))


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued runs and end the workers: SIGTERM, then SIGKILL for any still alive after 5 s."""
    # The pool offers no public handle on its processes before Python 3.14 (terminate_workers).
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(1.0)


def run_in_workers(plan: CollectPlan, workers: int, notify: ProgressHook) -> dict[int, RunOutcome]:
    """Train ``plan.todo`` in ``workers`` spawned processes, a group of batched replicates
    (``plan.batch_replicates``) per task; return each seed's outcome.

    On KeyboardInterrupt, or when a run fails, the queued runs are cancelled and the workers
    terminated before the exception propagates; the runs written so far stay.
    """
    if plan.threads is None:
        plan = replace(plan, threads=1)
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    runs = _RunIndex(len(plan.todo))
    outcomes = {}
    groups = collect_module.replicate_groups(plan)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=context, initializer=_init_worker, initargs=(events,))
    try:
        pending = {pool.submit(_worker_run, plan, group) for group in groups}
        while pending:
            _relay(events, runs, notify, plan, timeout=0.2)
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                group_outcomes = future.result()
                _relay(events, runs, notify, plan, timeout=0)
                for outcome in group_outcomes.values():
                    runs.ended.add(outcome.seed)
                    outcomes[outcome.seed] = outcome
                    notify("run_end", runs.info(outcome.seed, **_run_end(outcome)))
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        events.close()
    pool.shutdown(wait=True)
    return outcomes


# --------------------------------------------------------------------------------------------
# SLURM
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedRun:
    """A run whose SLURM task ended without writing it."""

    seed: int
    job_id: str
    state: str
    log: str
    error: str


@dataclass(frozen=True)
class SlurmCollection:
    """A collection submitted as a SLURM job array, and, after waiting, how it ended.

    Attributes
    ----------
    job_id : str or None
        The job array's id; None when there was nothing to submit.
    job_name : str
    submitted : tuple of int
        Seeds submitted, one task each.
    tasks : tuple of str
        The task training each seed of ``submitted``: ``JOB_INDEX`` in a job array, or the job's
        id when one run was submitted (submitit submits it as a plain job).
    skipped : tuple of int
        Seeds already in the store.
    claimed : dict
        Seeds left to another live collector (when planning, or when the task found its claim),
        with who holds each.
    queued : tuple of int
        Seeds left out because an earlier submission still has them queued or running.
    log_dir : str
        Where the tasks' logs are.
    waited : bool
        Whether the fields below are filled in (the caller waited for the array to end).
    finished : tuple of int
        Seeds whose runs are in the store.
    failed : tuple of FailedRun
    test_accuracy : dict
        Test accuracy of each finished run.
    """

    dataset: str
    arch: str
    label: str
    store: str
    job_id: str | None
    job_name: str
    submitted: tuple[int, ...]
    skipped: tuple[int, ...]
    queued: tuple[int, ...]
    log_dir: str
    tasks: tuple[str, ...] = ()
    claimed: dict[int, str] = field(default_factory=dict)
    waited: bool = False
    finished: tuple[int, ...] = ()
    failed: tuple[FailedRun, ...] = ()
    test_accuracy: dict[int, float] = field(default_factory=dict)


class SlurmRunTask(submitit.helpers.Checkpointable):
    """What one task of the job array runs: train its seeds into the store.

    Checkpointable, so that submitit requeues a task that hits its time limit or is preempted; the
    requeued task calls this object again with the same seeds, and each run restarts from scratch
    (the store only ever holds complete runs). It takes a tuple of seeds so that one task can
    train several runs.
    """

    def __init__(self, plan: CollectPlan) -> None:
        self.plan = plan

    def __call__(self, seeds: tuple[int, ...]) -> dict[int, RunOutcome]:
        job_id = submitit.JobEnvironment().job_id
        log = ProgressLines(sys.stderr, len(seeds), self.plan.config["epochs"])
        runs = _RunIndex(len(seeds))
        outcomes: dict[int, RunOutcome] = {}
        for group in collect_module.replicate_groups(self.plan, seeds):
            which = f"seeds {format_seeds(group)} as one batched model" if len(group) > 1 else f"seed {group[0]}"
            print(f"gwasm: job {job_id} trains {self.plan.label} {which} into {self.plan.store}", file=sys.stderr, flush=True)

            def on_epoch(seed: int, epoch: int, accuracy: float) -> None:
                log("epoch", runs.info(seed, epoch=epoch, train_accuracy=accuracy))

            outcomes.update(_train(self.plan, group, on_epoch=on_epoch, job_id=job_id))
            for seed in group:
                log("run_end", runs.info(seed, **_run_end(outcomes[seed])))
        return outcomes


def slurm_job_name(plan: CollectPlan, seeds: Iterable[int]) -> str:
    """``gwasm-<dataset>-<label>-s<seeds>``, e.g. ``gwasm-digits-resnet20-s0-7`` (the label is the architecture unless named)."""
    name = f"gwasm-{plan.dataset_name}-{plan.label}-s{format_seeds(seeds)}"
    return re.sub(r"\s+", "_", name)


def slurm_dir(store: str | os.PathLike) -> Path:
    """The folder of a store with its SLURM logs and submission records."""
    return Path(store) / SLURM_DIR


def _require_slurm() -> None:
    missing = [command for command in ("sbatch", "squeue", "srun") if shutil.which(command) is None]
    if missing:
        raise InputError(f"executor 'slurm' needs the SLURM commands on the PATH; missing: {', '.join(missing)}", parameter="executor")


def _task_states(job_ids: Iterable[str]) -> dict[str, str]:
    """The queue state of every task of the given jobs still known to SLURM: ``{"12_3": "RUNNING"}``.

    Tasks of a job array are named ``ARRAY_INDEX``; a job of one run, which submitit submits as a
    plain job, by its id.
    """
    job_ids = sorted(set(job_ids))
    if not job_ids:
        return {}
    try:
        result = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in result.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task and state:
            states[task] = state.split()[0]
    return states


def _record_path(store: str, job_id: str) -> Path:
    return slurm_dir(store) / f"{job_id}.json"


def _queued_seeds(plan: CollectPlan) -> set[int]:
    """Seeds of this dataset and architecture whose tasks of an earlier submission are still queued or running."""
    folder = slurm_dir(plan.store)
    records = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("dataset") == plan.dataset_name and record.get("label") == plan.label:
            records.append(record)
    states = _task_states(str(r["job_id"]) for r in records)
    queued = set()
    for record in records:
        for task, seed in zip(record.get("tasks", []), record.get("seeds", [])):
            if states.get(task) in _WAITING_STATES | _RUNNING_STATES:
                queued.add(int(seed))
    return queued


@contextlib.contextmanager
def _removed_on_failure(folder: Path) -> Iterator[None]:
    """Remove what a failed submission left in ``folder`` (submitit's pickles and scripts)."""
    existed = folder.exists()
    before = set(folder.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if folder.exists():
            for path in set(folder.iterdir()) - before:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            if not existed:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


def submit_to_slurm(plan: CollectPlan, options: SlurmOptions) -> SlurmCollection:
    """Submit every run of ``plan.todo`` not queued by an earlier submission as one SLURM job array.

    Raises
    ------
    InputError
        When the SLURM commands are missing, or sbatch refuses the job (its message, one line).
    """
    queued = _queued_seeds(plan)
    seeds = tuple(s for s in plan.todo if s not in queued)
    folder = slurm_dir(plan.store)
    name = slurm_job_name(plan, seeds)
    common = dict(
        dataset=plan.dataset_name,
        arch=plan.arch,
        label=plan.label,
        store=plan.store,
        job_name=name,
        skipped=plan.done,
        queued=tuple(sorted(queued & set(plan.todo))),
        log_dir=str(folder),
        claimed=dict(plan.claimed_by),
    )
    if not seeds:
        return SlurmCollection(job_id=None, submitted=(), **common)
    _require_slurm()
    task_plan = plan if plan.threads is not None else replace(plan, threads=options.cpus_per_run)
    with _removed_on_failure(folder):
        folder.mkdir(parents=True, exist_ok=True)
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(job_name=name, **options.sbatch_parameters())
        # submitit prints sbatch's complaints to stderr before raising: keep them for the one-line error.
        complaints = io.StringIO()
        try:
            with contextlib.redirect_stderr(complaints):
                groups = collect_module.replicate_groups(plan, seeds)
                jobs = executor.map_array(SlurmRunTask(task_plan), groups)
        except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError, OSError) as failure:
            # sbatch's first line says what is wrong; the next ones how to get help.
            lines = [line.strip() for line in (str(failure) or complaints.getvalue()).splitlines() if line.strip()]
            raise InputError(f"sbatch refused the job: {lines[0] if lines else type(failure).__name__}") from None
    job_id = jobs[0].job_id.split("_")[0]
    # The task of each seed (a task trains a group of batched replicates).
    tasks = tuple(job.job_id for job, group in zip(jobs, groups) for _ in group)
    record = {
        "job_id": job_id,
        "job_name": name,
        "dataset": plan.dataset_name,
        "arch": plan.arch,
        "label": plan.label,
        "seeds": list(seeds),
        "tasks": list(tasks),
        "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_text_atomic(_record_path(plan.store, job_id), json.dumps(record, indent=1))
    return SlurmCollection(job_id=job_id, submitted=seeds, tasks=tasks, **common)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not set(line.strip()) <= {"-"}]
    return lines[-1] if lines else ""


def _task_error(job: submitit.SlurmJob) -> str | None:
    """The last line of the error a task's function raised, None when it has no result or succeeded."""
    if not job.paths.result_pickle.exists():
        return None
    error = job.exception()
    if error is None:
        return None
    # submitit frames the trace with dashed lines and pointers to the logs: keep the trace's last
    # line ("RuntimeError: boom").
    parts = str(error).split("----------------------")
    return _last_line(parts[1] if len(parts) > 2 else str(error)) or type(error).__name__


def _claimed_by(job: submitit.SlurmJob, seed: int) -> str | None:
    """Who holds the claim a task found on its seed (it then left the run alone), else None."""
    if not job.paths.result_pickle.exists():
        return None
    outcome = job.result().get(seed)
    return outcome.holder if outcome is not None and outcome.status == "claimed" else None


def wait_for_slurm(plan: CollectPlan, collection: SlurmCollection, notify: ProgressHook, poll_seconds: float = 10.0) -> SlurmCollection:
    """Block until every task of ``collection``'s array has ended; report the runs written and the failures.

    Progress goes to ``notify`` as ``("slurm_status", {"job_id", "total", "finished", "running",
    "pending", "failed"})`` at each poll: finished runs are read from the store, the other states
    from the queue (squeue) and from submitit's record of each task's outcome. A task that ended
    without its run in the store failed; its error is the last line of the exception its function
    raised, else of its log. The queue is polled every second at first, then less often, up to
    every ``poll_seconds`` (a busy controller should not answer squeue all day).
    """
    if collection.job_id is None:
        return replace(collection, waited=True)
    jobs = {seed: submitit.SlurmJob(folder=collection.log_dir, job_id=task) for seed, task in zip(collection.submitted, collection.tasks)}
    store = Path(plan.store)
    finished: dict[int, float] = {}
    failed: dict[int, FailedRun] = {}
    claimed: dict[int, str] = {}
    ended_at: dict[int, float] = {}
    started = time.monotonic()
    while True:
        states = _task_states([collection.job_id])
        counts = {"running": 0, "pending": 0}
        for seed, job in jobs.items():
            if seed in finished or seed in failed or seed in claimed:
                continue
            state = states.get(job.job_id, "GONE")
            if state in _RUNNING_STATES or state in _WAITING_STATES:
                counts["running" if state in _RUNNING_STATES else "pending"] += 1
                continue
            key = run_store.RunKey(plan.dataset_name, plan.label, seed)
            error = _task_error(job)
            holder = _claimed_by(job, seed) if error is None else None
            if error is None and run_store.run_exists(store, key):
                finished[seed] = collect_module._stored_accuracy(store, key)
            elif holder is not None:
                claimed[seed] = holder
            elif error is not None or state not in _ENDED_WELL or time.monotonic() - ended_at.setdefault(seed, time.monotonic()) > _RESULT_GRACE_S:
                # Failed, or ended without a result: cancelled, killed for memory or time, node failure.
                log = job.paths.stderr
                if error is None:
                    error = (_last_line(log.read_text(errors="replace")) if log.exists() else "") or "ended without writing its run"
                failed[seed] = FailedRun(seed, job.job_id, state, str(log), error)
            else:
                counts["running"] += 1  # ended a moment ago: its run may still be reaching the shared filesystem
        counts["finished"] = len(finished) + len(claimed)  # a claimed run is another collector's to finish
        notify("slurm_status", {"job_id": collection.job_id, "total": len(jobs), "failed": len(failed), **counts})
        if len(finished) + len(failed) + len(claimed) == len(jobs):
            break
        time.sleep(min(poll_seconds, 1.0 + (time.monotonic() - started) / 30))
    return replace(
        collection,
        waited=True,
        finished=tuple(sorted(finished)),
        failed=tuple(failed[s] for s in sorted(failed)),
        test_accuracy=finished,
        claimed={**collection.claimed, **claimed},
    )


def check_executor(executor: str, workers: int, slurm: SlurmOptions | None) -> None:
    """Refuse an unknown executor, and settings that do not apply to the one chosen."""
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}", parameter="executor")
    if executor == "slurm" and workers != 1:
        raise InputError(f"workers applies to executor 'local' only (each SLURM task trains one run, or one group of batched replicates), got {workers}", parameter="workers")
    if executor == "local" and slurm is not None:
        raise InputError("executor 'local' takes no SLURM settings (partition, time, memory, ...): they apply to executor 'slurm'", parameter="executor")

