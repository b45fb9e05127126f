"""`gwasm collect --executor slurm` end to end against a real SLURM cluster.

CI starts a one-machine cluster first (scripts/slurm-single-node.sh); elsewhere the module is
skipped when SLURM is missing. Each test submits tiny runs into a store under pytest's temporary
folder (on this host, so every job sees it). The jobs run this environment's Python (submitit
uses ``sys.executable``) with the environment sbatch exports, PYTHONPATH included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey

ROOT = Path(__file__).resolve().parents[1]


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo failed: {error}"
    if not any(s.rstrip("*") in ("idle", "mixed", "allocated", "completing") for s in state):
        return f"no SLURM node is up (sinfo: {state})"
    return None


_PROBLEM = _cluster_problem()
if _PROBLEM is not None:
    if os.environ.get("CI"):
        pytest.fail(f"CI runs scripts/slurm-single-node.sh before the tests, yet: {_PROBLEM}", pytrace=False)
    pytest.skip(f"no SLURM cluster ({_PROBLEM}); start one with scripts/slurm-single-node.sh", allow_module_level=True)


@pytest.fixture(autouse=True)
def _jobs_import_this_checkout(monkeypatch):
    # sbatch exports the submitting environment to the jobs: make the checkout importable there.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _base(dataset, store, *extra) -> list[str]:
    return ["collect", "--arch", "mlp", "--dataset", str(dataset), "--device", "cpu", "--store", str(store), "--executor", "slurm", *map(str, extra)]


def _job_of(out: str) -> str:
    match = re.search(r"through job (\d+)", out)
    assert match, out
    return match.group(1)


def test_collect_waits_for_the_job_array_and_every_run_is_stored_once(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, out, err = run_gwasm(*_base(tiny_digits_npz, store, "--epochs", "1", "--runs", "3", "--time", "0:05:00", "--wait"))
    assert code == 0, err
    job = _job_of(out)
    assert "collected 3 run(s) through job" in out and "0 failed" in out
    # plain progress lines (stderr is not a terminal here), read from the queue and the store
    assert re.search(rf"job {job}: 3/3 runs finished, 0 running, 0 pending, 0 failed", err), err
    keys = list(S.iter_run_keys(store))
    assert sorted(k.seed for k in keys) == [0, 1, 2]
    tasks = set()
    for key in keys:
        frame = pq.read_table(S.run_dir(store, key) / S.RUN_FILE).to_pandas()
        assert len(frame) == 300 and frame["loss"].notna().all()
        provenance = S.read_provenance(store, key)
        assert provenance["job_id"].split("_")[0] == job
        tasks.add(provenance["job_id"])
    assert len(tasks) == 3  # one task of the array per run
    assert pd.read_parquet(store)["seed"].astype(int).value_counts().to_dict() == {0: 300, 1: 300, 2: 300}
    # the job name says dataset, architecture and seeds; logs live in the store's hidden folder
    record = json.loads((store / ".slurm" / f"{job}.json").read_text())
    assert record["job_name"] == "gwasm-tiny_digits-mlp-s0-2" and record["seeds"] == [0, 1, 2]
    assert all((store / ".slurm" / f"{task}_0_log.err").exists() for task in record["tasks"])

    code, out, _ = run_gwasm(*_base(tiny_digits_npz, store, "--epochs", "1", "--runs", "3"))
    assert code == 0 and "nothing to submit: 3 run(s) already present" in out


def test_one_task_trains_a_group_of_batched_replicates(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, out, err = run_gwasm(*_base(tiny_digits_npz, store, "--epochs", "1", "--runs", "3", "--batch-replicates", "2", "--wait"))
    assert code == 0, err
    job = _job_of(out)
    provenances = [S.read_provenance(store, RunKey("tiny_digits", "mlp", seed)) for seed in range(3)]
    assert [p["batched"] for p in provenances] == [{"n_replicates": 2, "seeds": [0, 1]}, {"n_replicates": 2, "seeds": [0, 1]}, None]
    tasks = [p["job_id"] for p in provenances]
    assert tasks[0] == tasks[1] != tasks[2] and all(t.split("_")[0] == job for t in tasks)  # two tasks: seeds 0-1, seed 2
    record = json.loads((store / ".slurm" / f"{job}.json").read_text())
    assert record["seeds"] == [0, 1, 2] and record["tasks"][0] == record["tasks"][1] != record["tasks"][2]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_a_cancelled_run_is_reported_and_submitted_again(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    # Long enough (seconds) to be caught training: a cancelled job gets SIGKILL KillWait (2 s) after
    # the SIGTERM that submitit ignores.
    argv = _base(tiny_digits_npz, store, "--epochs", "300", "--seeds", "7", "--label", "mlp-long", "--wait")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "gwasm_cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        records = _wait_for(lambda: list((store / ".slurm").glob("*.json")), 60, "the submission")
        record = json.loads(records[0].read_text())
        task = record["tasks"][0]
        log = store / ".slurm" / f"{task}_0_log.err"
        # The task claims its run right before it trains it.
        claim = store / "dataset=tiny_digits" / "arch=mlp-long" / ".seed=7.claim"
        _wait_for(claim.exists, 60, "the run to be claimed")
        subprocess.run(["scancel", record["job_id"]], check=True, timeout=30)
        _, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1, err
    failure = [line for line in err.splitlines() if "seed 7 failed" in line]
    assert len(failure) == 1 and f"job {task}" in failure[0] and str(log) in failure[0], err
    key = RunKey("tiny_digits", "mlp-long", 7)
    assert not S.run_exists(store, key), "the run finished before the cancellation took effect"

    code, out, err = run_gwasm(*argv)
    assert code == 0, err
    job = _job_of(out)
    assert job != record["job_id"] and "collected 1 run(s)" in out
    assert S.run_exists(store, key)
    assert S.read_provenance(store, key)["job_id"] == job
    assert len(pq.read_table(S.run_dir(store, key) / S.RUN_FILE)) == 300


def test_sbatch_refusal_is_one_line_and_leaves_no_log_folder(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    for extra, expected in ((["--partition", "nosuch"], "invalid partition"), (["--slurm-option", "no-such-option=1"], "no-such-option")):
        code, out, err = run_gwasm(*_base(tiny_digits_npz, store, "--epochs", "1", *extra))
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("gwasm: error: sbatch refused the job") and expected in err
        assert not (store / ".slurm").exists()
