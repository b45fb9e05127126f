"""Run claims: exclusive, live or stale, taken over by exactly one collector, released on failure;
concurrent collectors and a killed collector end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gwas_models.formats import claims
from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey
from gwas_models.training import collect as C

torch.set_num_threads(1)

FAST = ["--device", "cpu", "--threads", "1", "-q"]


@pytest.fixture(autouse=True)
def _fresh_queue_answers():
    # squeue's answers are reused for a few seconds; each test brings its own queue.
    claims._queue_answers.clear()
    yield
    claims._queue_answers.clear()


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_claim(path: Path, host: str | None = None, pid: int | None = None, age: float = 0.0, raw: str | None = None) -> Path:
    """A claim file as another collector would leave it, its heartbeat ``age`` seconds old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"host": host or socket.gethostname(), "pid": pid or os.getpid(), "job_id": None, "started_at": "2024-01-01T00:00:00+00:00", "token": os.urandom(8).hex()}
    path.write_text(json.dumps(content) if raw is None else raw)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------


def test_a_claim_is_exclusive_records_its_holder_and_goes_on_release(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "812")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    path = claims.claim_file(tmp_path / "seed=3")
    assert path == tmp_path / ".seed=3.claim"
    held = claims.acquire(path, job_id=claims.current_job_id())
    assert isinstance(held, claims.Claim)
    content = json.loads(path.read_text())
    assert content["host"] == socket.gethostname() and content["pid"] == os.getpid() and content["job_id"] == "812_3"
    assert content["started_at"] and content["token"] == held.token
    other = claims.acquire(path)
    assert isinstance(other, claims.ClaimInfo) and other.is_live(600)
    assert other.holder == f"{socket.gethostname()}:{os.getpid()}/812_3"
    held.release()
    assert not path.exists()
    held.release()  # twice is harmless


def test_job_id_and_environment_from_slurm_variables():
    assert claims.current_job_id({}) is None
    assert claims.current_job_id({"SLURM_JOB_ID": "77"}) == "77"
    assert claims.current_job_id({"SLURM_JOB_ID": "80", "SLURM_ARRAY_JOB_ID": "79", "SLURM_ARRAY_TASK_ID": "1"}) == "79_1"
    assert claims.job_environment({"SLURM_JOB_ID": "77", "HOME": "/root", "SLURMD_NODENAME": "n1"}) == {"SLURM_JOB_ID": "77", "SLURMD_NODENAME": "n1"}
    assert claims.job_environment({}) == {}


def test_a_claim_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    path = write_claim(tmp_path / ".seed=0.claim", pid=dead_pid())
    info = claims.read_claim(path)
    assert "is gone" in info.stale_reason(600)
    held = claims.acquire(path, stale_after=600)
    assert isinstance(held, claims.Claim) and json.loads(path.read_text())["pid"] == os.getpid()
    held.release()


def test_a_claim_without_heartbeat_goes_stale_after_the_timeout(tmp_path):
    # Another host: its pid says nothing here, only the heartbeat counts.
    path = write_claim(tmp_path / ".seed=0.claim", host="elsewhere", pid=1, age=30)
    assert claims.read_claim(path).is_live(60)
    assert isinstance(claims.acquire(path, stale_after=60), claims.ClaimInfo)
    assert "no heartbeat for 30 s" in claims.read_claim(path).stale_reason(20)
    held = claims.acquire(path, stale_after=20)
    assert isinstance(held, claims.Claim)
    held.release()


def _fake_squeue(folder: Path, script: str) -> str:
    """A PATH whose ``squeue`` runs ``script`` (bash)."""
    folder.mkdir()
    (folder / "squeue").write_text("#!/bin/bash\n" + script + "\n")
    (folder / "squeue").chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize(
    "squeue, stale",
    [
        ("exit 0", True),  # the queue holds no such job: it ended (cancelled, failed, done)
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", True),
        ("echo RUNNING", False),
        ("echo PENDING", False),  # requeued after preemption: its run will restart
        ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1", False),
    ],
)
def test_a_claim_of_another_nodes_job_that_has_left_the_queue_is_stale(tmp_path, monkeypatch, squeue, stale):
    path = tmp_path / ".seed=0.claim"
    content = {"host": "othernode", "pid": 1, "job_id": "812_3", "started_at": "2024-01-01T00:00:00+00:00", "token": "ab"}
    path.write_text(json.dumps(content))
    monkeypatch.setenv("PATH", _fake_squeue(tmp_path / "bin", squeue))
    reason = claims.read_claim(path).stale_reason(600)
    assert (reason == "its SLURM job 812_3 has ended") if stale else reason is None


def test_the_queue_is_asked_once_per_job_while_a_collector_plans(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", _fake_squeue(tmp_path / "bin", f"echo x >> {calls}; echo RUNNING"))
    path = tmp_path / ".seed=0.claim"
    path.write_text(json.dumps({"host": "othernode", "pid": 1, "job_id": "900_1", "started_at": None, "token": "ab"}))
    for _ in range(3):  # cleaning, choosing seeds, taking it over: the same claim judged again
        assert claims.read_claim(path).is_live(600)
    assert calls.read_text().count("x") == 1


def test_without_squeue_a_job_claim_counts_by_its_heartbeat(tmp_path, monkeypatch):
    path = tmp_path / ".seed=0.claim"
    path.write_text(json.dumps({"host": "othernode", "pid": 1, "job_id": "812_3", "started_at": None, "token": "ab"}))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert claims.slurm_job_ended("812_3") is None
    assert claims.read_claim(path).is_live(600)


def test_a_half_written_claim_is_live_until_its_heartbeat_is_old(tmp_path):
    path = write_claim(tmp_path / ".seed=0.claim", raw='{"host": "a')
    info = claims.read_claim(path)
    assert info.host is None and info.holder == "?:?" and info.is_live(60)
    write_claim(path, raw="", age=120)
    assert not claims.read_claim(path).is_live(60)


def test_the_heartbeat_keeps_a_held_claim_live(tmp_path):
    path = claims.claim_file(tmp_path / "seed=0")
    with claims.acquire(path, stale_after=0.4) as held:
        old = time.time() - 100
        os.utime(path, (old, old))
        deadline = time.monotonic() + 5
        while claims.read_claim(path).age() > 50 and time.monotonic() < deadline:
            time.sleep(0.05)  # the heartbeat beats every 0.1 s
        info = claims.read_claim(path)
        assert info.token == held.token and info.age() < 5
    assert not path.exists()


def test_exactly_one_of_several_takers_wins_a_stale_claim(tmp_path):
    for round_ in range(10):
        path = write_claim(tmp_path / f".seed={round_}.claim", pid=dead_pid())
        start = threading.Barrier(6)
        results = []

        def take() -> None:
            start.wait()
            results.append(claims.acquire(path, stale_after=600))

        threads = [threading.Thread(target=take) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [r for r in results if isinstance(r, claims.Claim)]
        assert len(winners) == 1, results
        # the losers saw the winner's claim (or it empty, just created: live, its holder unknown)
        assert all(r.token in (winners[0].token, None) and r.is_live(600) for r in results if isinstance(r, claims.ClaimInfo))
        assert json.loads(path.read_text())["token"] == winners[0].token
        winners[0].release()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".seed={round_}.")) == []


def test_a_taker_that_lost_the_race_puts_the_fresh_claim_back(tmp_path):
    path = write_claim(tmp_path / ".seed=0.claim", pid=dead_pid())
    judged = claims.read_claim(path)
    assert not judged.is_live(600)
    assert claims.remove_stale(judged)  # the first taker removes it ...
    fresh = claims.acquire(path)  # ... and claims the run
    assert isinstance(fresh, claims.Claim)
    assert not claims.remove_stale(judged)  # a second taker that judged the old claim stale
    assert json.loads(path.read_text())["token"] == fresh.token
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    fresh.release()


def test_a_released_claim_never_removes_the_claim_that_replaced_it(tmp_path):
    path = claims.claim_file(tmp_path / "seed=0")
    held = claims.acquire(path)
    write_claim(path, host="elsewhere")  # taken over while this holder was frozen
    held.release()
    assert json.loads(path.read_text())["host"] == "elsewhere"


def test_a_claim_is_released_when_its_block_raises(tmp_path):
    path = claims.claim_file(tmp_path / "seed=0")
    for error in (RuntimeError, KeyboardInterrupt, SystemExit):
        with pytest.raises(error):
            with claims.acquire(path):
                assert path.exists()
                raise error()
        assert not path.exists()


def test_claim_timeout_must_be_positive():
    from gwas_models.errors import InputError

    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="^claim_timeout must be a positive number"):
            claims.check_stale_after(bad)


# --------------------------------------------------------------------------------------------
# run_claimed and the plan
# --------------------------------------------------------------------------------------------


@pytest.fixture
def plan(tmp_path, tiny_digits_npz):
    from gwas_models.training.train import preset

    plan, data = C.plan_collection("mlp", [0, 1, 2], preset("digits", epochs=1), dataset=str(tiny_digits_npz), store=tmp_path / "store", device="cpu", threads=1)
    return plan, data


def _hidden(store: Path) -> list[str]:
    return sorted(p.name for p in Path(store).rglob(".*"))


def test_run_claimed_trains_writes_and_records_the_job(plan, monkeypatch):
    plan, data = plan
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURMD_NODENAME", "node7")
    outcome = C.run_claimed(plan, 0, data=data)
    assert outcome.status == "trained" and outcome.seed == 0 and 0 <= outcome.test_accuracy <= 1 and outcome.holder is None
    key = RunKey("tiny_digits", "mlp", 0)
    provenance = S.read_provenance(Path(plan.store), key)
    assert provenance["job_id"] == "4242" and provenance["job_environment"] == {"SLURM_JOB_ID": "4242", "SLURMD_NODENAME": "node7"}
    assert provenance["label"] == "mlp" and provenance["arch"] == "mlp"
    assert provenance["configuration_id"] == plan.configuration_id and provenance["configuration"] == plan.configuration
    assert _hidden(plan.store) == []
    again = C.run_claimed(plan, 0, data=data, job_id="other")
    assert again.status == "exists" and again.test_accuracy == outcome.test_accuracy


def test_run_claimed_leaves_a_live_claim_alone(plan, monkeypatch):
    plan, data = plan
    trained = []
    monkeypatch.setattr(C, "run_one", lambda *args, **kwargs: trained.append(args[1]))
    key = RunKey("tiny_digits", "mlp", 1)
    write_claim(S.claim_path(Path(plan.store), key), host="node3", pid=4711)
    outcome = C.run_claimed(plan, 1, data=data)
    assert (outcome.status, outcome.holder, trained) == ("claimed", "node3:4711", [])
    assert np.isnan(outcome.test_accuracy)
    assert not S.run_dir(Path(plan.store), key).exists()


def test_run_claimed_releases_its_claim_when_training_fails(plan, monkeypatch):
    plan, data = plan

    def interrupted(*args, **kwargs):
        assert S.claim_path(Path(plan.store), RunKey("tiny_digits", "mlp", 2)).exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(C, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        C.run_claimed(plan, 2, data=data)
    assert _hidden(plan.store) == []


def test_the_plan_sets_claimed_seeds_apart_and_cleans_stale_claims(tmp_path, tiny_digits_npz):
    from gwas_models.training.train import preset

    store = tmp_path / "store"
    config = preset("digits", epochs=1)
    write_claim(S.claim_path(store, RunKey("tiny_digits", "mlp", 1)), host="node3", pid=4711)
    write_claim(S.claim_path(store, RunKey("tiny_digits", "mlp", 2)), pid=dead_pid())
    write_claim(S.claim_path(store, RunKey("tiny_digits", "mlp", 3)), host="node4", pid=1, age=120)
    plan, _ = C.plan_collection("mlp", [0, 1, 2, 3], config, dataset=str(tiny_digits_npz), store=store, device="cpu", claim_timeout=60)
    assert plan.claimed == (1,) and plan.claimed_by == {1: "node3:4711"}
    assert plan.todo == (0, 2, 3) and plan.done == () and plan.claim_timeout == 60
    assert _hidden(store) == [".seed=1.claim"]


# --------------------------------------------------------------------------------------------
# Collectors as separate processes
# --------------------------------------------------------------------------------------------


def gwasm_process(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "GWASM_RESULTS": str(kwargs.pop("results"))}
    env.pop("GWASM_STORE", None)
    command = [sys.executable, "-m", "gwasm_cli.main", *[str(a) for a in args]]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def trained_seeds(out: str) -> list[int]:
    """The seeds a collect printed as trained (``dataset<TAB>label<TAB>seed N<TAB>...``)."""
    return [int(line.split("\t")[2].split()[1]) for line in out.splitlines() if line.count("\t") == 3 and "\tseed " in line]


def test_two_collectors_on_one_store_train_every_run_once(tmp_path, tiny_digits_npz):
    store = tmp_path / "store"
    base = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "6", "--store", store, *FAST]
    first = gwasm_process(*base, "--seeds", "0-5", results=tmp_path)
    second = gwasm_process(*base, "--seeds", "3-8", results=tmp_path)
    outputs = [process.communicate(timeout=240) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    a, b = (trained_seeds(out) for out, _ in outputs)
    assert set(a).isdisjoint(b), (a, b)
    assert sorted(a + b) == list(range(9)), outputs
    keys = list(S.iter_run_keys(store))
    assert keys == [RunKey("tiny_digits", "mlp", s) for s in range(9)]
    assert all(S.run_damage(store, key) is None for key in keys)
    assert all(len(list(S.run_dir(store, key).parent.glob(f"seed={key.seed}*"))) == 1 for key in keys)
    assert _hidden(store) == []


def test_a_killed_collector_is_taken_over_and_the_store_is_left_clean(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    args = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "40", "--seeds", "0-2", "--store", store, *FAST]
    victim = gwasm_process(*args, results=tmp_path)
    deadline = time.monotonic() + 120
    while not [info for info in map(claims.read_claim, store.rglob("*.claim")) if info and info.pid]:  # written in full
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    left = list(store.rglob("*.claim"))
    assert len(left) == 1 and json.loads(left[0].read_text())["pid"] == victim.pid
    complete = [k.seed for k in S.iter_run_keys(store)]
    assert len(complete) < 3

    code, out, err = run_gwasm(*args)
    assert code == 0, err
    assert sorted(trained_seeds(out) + complete) == [0, 1, 2]
    assert [k.seed for k in S.iter_run_keys(store)] == [0, 1, 2]
    code, out, err = run_gwasm("runs", "--check", "--store", store)
    assert code == 0 and out.strip() == f"store clean: {store}", out
    assert _hidden(store) == []


def test_a_bad_claim_timeout_is_one_line_and_writes_nothing(tmp_path, tiny_digits_npz, run_gwasm):
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--claim-timeout", "0", "--store", tmp_path / "store", *FAST)
    assert (code, out) == (2, "")
    assert err == "gwasm: error: --claim-timeout must be a positive number of seconds, got 0.0\n"
    assert not (tmp_path / "store").exists()


def test_a_takeover_lock_keeps_a_second_taker_off_and_an_abandoned_one_is_dropped(tmp_path):
    path = write_claim(tmp_path / ".seed=0.claim", pid=dead_pid())
    lock = path.with_name(path.name + claims.LOCK_SUFFIX)
    lock.touch()  # a taker at work
    assert not claims.remove_stale(claims.read_claim(path))
    assert path.exists() and lock.exists()
    os.utime(lock, (time.time() - 2 * claims.LOCK_STALE_AFTER,) * 2)  # its taker died holding it
    held = claims.acquire(path)
    assert isinstance(held, claims.Claim) and not lock.exists()
    held.release()
