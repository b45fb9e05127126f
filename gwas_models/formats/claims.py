"""Run claims: concurrent collectors on one store train each run once.

Before training a run, a collector creates a claim file beside the run's directory,
``<store>/dataset=d/arch=a/.seed=3.claim`` (hidden: Parquet dataset discovery skips it), with
``os.open(..., O_CREAT | O_EXCL | O_WRONLY)``: of several collectors, exactly one creates it. The
file holds JSON (``host``, ``pid``, ``job_id``, ``started_at`` and a random ``token``); its
modification time is the heartbeat, refreshed by a daemon thread while the run trains.

A claim is live unless it is stale: its process is dead (same host, pid gone), or its heartbeat is
older than ``stale_after`` seconds (a dead node, a frozen process). Clocks of the hosts sharing a
store must agree to well within ``stale_after``.

The content is written right after the exclusive create, so a reader can find the file empty or
half written. Such a claim is taken for a live one whose holder is unknown, and judged by its
heartbeat alone: it goes stale after ``stale_after`` seconds, as a claim of a dead node does.

Taking over a stale claim: take the takeover lock ``.seed=3.claim.lock`` (created exclusively,
held for milliseconds), rename the claim to a unique hidden tombstone, check that the tombstone is
the claim judged stale and still stale (same token and inode), remove it, drop the lock, then
create a fresh claim exclusively. Without the lock, a taker that judged the old claim stale a
moment before another taker replaced it would rename the fresh claim away, and a third collector
could claim the run while the second still trains it. A lock left by a taker that died holding it
is removed after :data:`LOCK_STALE_AFTER` seconds.

A claim is released (removed) when its run is written or fails, on any exception including
``KeyboardInterrupt`` and ``SystemExit``; only its own claim is removed, never one that replaced it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from gwas_models.errors import InputError

CLAIM_SUFFIX = ".claim"
TOMBSTONE_SUFFIX = ".tomb"
#: Suffix (after the claim's name) of the lock a taker holds while it removes a stale claim.
LOCK_SUFFIX = ".lock"
#: Seconds after which a takeover lock counts as abandoned by a taker that died holding it.
LOCK_STALE_AFTER = 30.0
#: Seconds :func:`acquire` keeps trying while other takers hold the takeover lock.
ACQUIRE_PATIENCE = 5.0
#: Seconds without a heartbeat after which a claim is stale (``claim_timeout``).
DEFAULT_STALE_AFTER = 600.0
#: The most seconds between two heartbeats of a held claim.
MAX_HEARTBEAT_INTERVAL = 30.0


def claim_file(run_directory: Path) -> Path:
    """The claim file of a run: hidden, beside the run's directory."""
    run_directory = Path(run_directory)
    return run_directory.with_name(f".{run_directory.name}{CLAIM_SUFFIX}")


def heartbeat_interval(stale_after: float) -> float:
    """Seconds between heartbeats: a quarter of ``stale_after``, at most 30 s."""
    return min(MAX_HEARTBEAT_INTERVAL, stale_after / 4)


def check_stale_after(stale_after: float, parameter: str = "claim_timeout") -> float:
    """``stale_after`` as a float; :class:`InputError` unless it is a positive number of seconds."""
    value = float(stale_after)
    if not value > 0 or value == float("inf"):
        raise InputError(f"{parameter} must be a positive number of seconds, got {stale_after}", parameter=parameter)
    return value


def current_job_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The batch job this process runs in: ``ARRAYJOB_TASK`` or ``JOB`` under SLURM, else None."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


#: Environment variables of a batch job that a run's provenance records.
JOB_VARIABLES: tuple[str, ...] = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME",
    "SLURMD_NODENAME",
    "SLURM_CPUS_PER_TASK",
    "SLURM_JOB_GPUS",
    "SLURM_RESTART_COUNT",
)


def job_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The batch job's variables this process sees (:data:`JOB_VARIABLES`); empty outside a job."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in JOB_VARIABLES if env.get(name)}


@dataclass(frozen=True)
class ClaimInfo:
    """A claim as a reader finds it.

    Attributes
    ----------
    path : Path
    host, pid, job_id, started_at, token
        From the file; None when the file is (still) empty or half written.
    heartbeat : float
        The file's modification time (seconds since the epoch).
    inode : int
    """

    path: Path
    host: str | None
    pid: int | None
    job_id: str | None
    started_at: str | None
    token: str | None
    heartbeat: float
    inode: int

    @property
    def holder(self) -> str:
        """``host:pid`` with ``/job`` when known, e.g. ``node3:4711/1234_5``."""
        text = f"{self.host or '?'}:{self.pid if self.pid is not None else '?'}"
        return f"{text}/{self.job_id}" if self.job_id else text

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, (time.time() if now is None else now) - self.heartbeat)

    def stale_reason(self, stale_after: float, now: float | None = None) -> str | None:
        """Why the claim is stale, or None while it is live."""
        if self.host == socket.gethostname() and self.pid is not None and not process_alive(self.pid):
            return f"process {self.pid} on {self.host} is gone"
        # On another node the pid says nothing; a SLURM job the queue no longer holds says enough
        # (a task cancelled with scancel never released its claim: submitit ignores SIGTERM).
        if self.job_id is not None and self.host != socket.gethostname() and slurm_job_ended(self.job_id):
            return f"its SLURM job {self.job_id} has ended"
        age = self.age(now)
        if age >= stale_after:
            return f"no heartbeat for {age:.0f} s"
        return None

    def is_live(self, stale_after: float, now: float | None = None) -> bool:
        """Whether a collector may still be training the run (see :meth:`stale_reason`)."""
        return self.stale_reason(stale_after, now) is None


#: Seconds an answer of squeue that a job is still queued (or that squeue cannot tell) is reused:
#: a collector judges every claim a few times while it plans (cleaning, then choosing seeds).
QUEUE_ANSWER_TTL = 10.0
_queue_answers: dict[str, tuple[float, bool | None]] = {}


def slurm_job_ended(job_id: str) -> bool | None:
    """Whether SLURM's queue no longer holds job (or array task) ``job_id``: True when squeue
    knows nothing of it, False while it is pending, running, requeued or suspended, None when
    squeue cannot tell (not installed, controller unreachable).

    A job that has left the queue never comes back, so that answer is kept; the others are
    reused for :data:`QUEUE_ANSWER_TTL` seconds.
    """
    asked_at, answer = _queue_answers.get(job_id, (float("-inf"), None))
    if answer is True or time.monotonic() - asked_at < QUEUE_ANSWER_TTL:
        return answer
    answer = _ask_squeue(job_id)
    _queue_answers[job_id] = (time.monotonic(), answer)
    return answer


def _ask_squeue(job_id: str) -> bool | None:
    try:
        result = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        # An id the controller has forgotten is an error; any other error says nothing.
        return True if "invalid job id" in result.stderr.lower() else None
    return not result.stdout.strip()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    try:  # a killed child its parent has not waited for yet still answers signal 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split(":", 1)[1].split()[0]
    except OSError:
        pass
    return True


def read_claim(path: Path) -> ClaimInfo | None:
    """The claim at ``path``, or None when there is none."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            raw = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        content = json.loads(raw)
    except ValueError:  # empty or half written: its holder is unknown
        content = {}
    if not isinstance(content, dict):
        content = {}
    pid = content.get("pid")
    return ClaimInfo(
        path=path,
        host=content.get("host"),
        pid=pid if isinstance(pid, int) else None,
        job_id=content.get("job_id"),
        started_at=content.get("started_at"),
        token=content.get("token"),
        heartbeat=stat.st_mtime,
        inode=stat.st_ino,
    )


class Claim:
    """A held claim: a context manager that keeps its heartbeat and removes it on exit."""

    def __init__(self, path: Path, descriptor: int, token: str, interval: float) -> None:
        self.path = Path(path)
        self.token = token
        self._descriptor = descriptor
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(interval,), name=f"heartbeat {self.path.name}", daemon=True)
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                # Through the descriptor: the heartbeat stays on this claim's file even while a
                # taker that lost a race has it renamed for a moment.
                os.utime(self._descriptor if os.utime in os.supports_fd else self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this claim."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        current = read_claim(self.path)
        if current is not None and current.token == self.token:
            self.path.unlink(missing_ok=True)
        os.close(self._descriptor)

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def _create(path: Path, job_id: str | None, stale_after: float) -> Claim | None:
    """Create the claim file exclusively; None when it exists."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    token = uuid.uuid4().hex
    content = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job_id": job_id,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "token": token,
    }
    try:
        os.write(descriptor, json.dumps(content).encode())
    except BaseException:
        os.close(descriptor)
        path.unlink(missing_ok=True)
        raise
    return Claim(path, descriptor, token, heartbeat_interval(stale_after))


def remove_stale(info: ClaimInfo, stale_after: float = DEFAULT_STALE_AFTER) -> bool:
    """Remove the claim ``info`` judged stale, if it is still that claim and still stale.

    Returns True when it was removed. Takers hold a takeover lock (created exclusively, held for
    the few milliseconds this takes), so that one that judged the claim stale a moment ago can
    never remove the fresh claim another taker has created since.
    """
    lock = info.path.with_name(f"{info.path.name}{LOCK_SUFFIX}")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        _drop_abandoned_lock(lock)
        return False
    try:
        return _remove_if_unchanged(info, stale_after)
    finally:
        lock.unlink(missing_ok=True)


def _drop_abandoned_lock(lock: Path) -> None:
    """Remove a takeover lock whose taker died while holding it (it is held for milliseconds)."""
    try:
        if time.time() - lock.stat().st_mtime > LOCK_STALE_AFTER:
            lock.unlink(missing_ok=True)
    except OSError:
        pass


def _same_stale_claim(found: ClaimInfo | None, info: ClaimInfo, stale_after: float) -> bool:
    return found is not None and (found.inode, found.token) == (info.inode, info.token) and not found.is_live(stale_after)


def _remove_if_unchanged(info: ClaimInfo, stale_after: float) -> bool:
    # Under the lock no other taker touches the claim: if it is still the one judged stale, it is
    # renamed aside, and checked once more there (its holder, come back to life, may have released
    # it at this very moment and another collector claimed the run), then removed.
    if not _same_stale_claim(read_claim(info.path), info, stale_after):
        return False
    tombstone = info.path.with_name(f"{info.path.name}.{uuid.uuid4().hex}{TOMBSTONE_SUFFIX}")
    try:
        os.rename(info.path, tombstone)
    except FileNotFoundError:
        return False
    if _same_stale_claim(read_claim(tombstone), info, stale_after):
        tombstone.unlink(missing_ok=True)
        return True
    try:
        os.link(tombstone, info.path)  # put it back unless yet another claim took the place
    except FileExistsError:
        pass
    except OSError:  # a filesystem without hard links: put it back by a rename
        os.replace(tombstone, info.path)
    tombstone.unlink(missing_ok=True)
    return False


def acquire(path: Path, stale_after: float = DEFAULT_STALE_AFTER, job_id: str | None = None) -> Claim | ClaimInfo:
    """Claim a run: a held :class:`Claim`, or the live :class:`ClaimInfo` of whoever holds it.

    A stale claim is taken over (see the module's description).
    """
    path = Path(path)
    deadline = time.monotonic() + ACQUIRE_PATIENCE
    while True:
        claim = _create(path, job_id, stale_after)
        if claim is not None:
            return claim
        info = read_claim(path)
        if info is not None and info.is_live(stale_after):
            return info
        if info is not None and remove_stale(info, stale_after):
            continue
        if time.monotonic() > deadline:
            # Others keep taking the place: leave the run to whoever holds it now.
            return read_claim(path) or ClaimInfo(path, None, None, None, None, None, time.time(), -1)
        time.sleep(0.01)  # another taker holds the takeover lock, or the claim just went
