"""Damaged runs and leftovers of killed collectors: `gwasm runs --check`, `--pending`, cleaning,
and damaged runs never counted as complete."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gwas_models.formats import claims
from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey

torch.set_num_threads(1)

FAST = ["--device", "cpu", "--threads", "1", "-q"]
TMP = "0123456789abcdef0123456789abcdef"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def claim(store: Path, key: RunKey, host: str | None = None, pid: int | None = None, age: float = 0.0, job_id: str | None = None) -> Path:
    path = S.claim_path(store, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid or os.getpid(), "job_id": job_id, "started_at": "x", "token": os.urandom(4).hex()}))
    age_path(path, age)
    return path


def age_path(path: Path, age: float) -> Path:
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def fake_run(store: Path, seed: int, n: int = 4, label: str = "a", **provenance) -> Path:
    table = S.run_table(np.arange(n), np.arange(n) % 2, {"loss": np.arange(n) + float(seed)})
    return S.write_run(store, RunKey("d", label, seed), table, {"dataset": "d", "label": label, "seed": seed, "test_accuracy": 0.5, **provenance})


@pytest.fixture
def damaged_store(tmp_path):
    """Seed 0 sound; seeds 1-4 damaged in one way each; leftovers of killed collectors for 5-7."""
    store = tmp_path / "store"
    S.write_dataset_info(store, "d", {"name": "d", "n_examples": 4, "class_names": ["x", "y"], "source": {}})
    for seed in range(5):
        fake_run(store, seed)
    table = S.run_dir(store, RunKey("d", "a", 1)) / S.RUN_FILE
    table.write_bytes(table.read_bytes()[:40])  # truncated Parquet
    (S.run_dir(store, RunKey("d", "a", 2)) / S.PROVENANCE_FILE).unlink()
    shutil.rmtree(S.run_dir(store, RunKey("d", "a", 3)))
    fake_run(store, 3, n=3)  # wrong row count
    (S.run_dir(store, RunKey("d", "a", 4)) / S.PROVENANCE_FILE).write_text(json.dumps({"dataset": "d", "label": "a", "seed": 7}))
    label_dir = S.run_dir(store, RunKey("d", "a", 0)).parent
    age_path(_mkdir(label_dir / f".seed=5.{TMP}.tmp"), 300)
    claim(store, RunKey("d", "a", 6), pid=dead_pid())
    tombstone = label_dir / f".seed=7.claim.{TMP}.tomb"
    tombstone.touch()
    age_path(tombstone, 300)
    return store


@pytest.fixture(autouse=True)
def _fresh_queue_answers():
    # squeue's answers are reused for a few seconds; each test brings its own queue.
    claims._queue_answers.clear()
    yield
    claims._queue_answers.clear()


def test_check_reports_every_kind_of_damage_and_leftover(damaged_store):
    report = S.check_store(damaged_store)
    found = {(row.problem, row.seed): row.reason for row in report.itertuples()}
    assert set(found) == {("damaged", 1), ("damaged", 2), ("damaged", 3), ("damaged", 4), ("leftover", 5), ("leftover", 6), ("leftover", 7)}
    assert found[("damaged", 1)].startswith("unreadable Parquet")
    assert found[("damaged", 2)] == "no provenance (_provenance.json)"
    assert found[("damaged", 3)] == "3 rows, the dataset has 4 examples"
    assert found[("damaged", 4)] == "provenance names seed 7, the directory 4"
    assert found[("leftover", 5)] == "temporary directory of an unfinished run"
    assert found[("leftover", 6)].startswith("stale claim of") and "is gone" in found[("leftover", 6)]
    assert found[("leftover", 7)] == "tombstone of a replaced run or claim"
    assert report.set_index("seed").loc[5, "age_s"] >= 299
    assert list(report.columns) == S.CHECK_COLUMNS


def test_damaged_runs_are_never_listed_as_complete(damaged_store, run_gwasm):
    assert [k.seed for k in S.sound_run_keys(damaged_store)] == [0]
    assert not S.run_exists(damaged_store, RunKey("d", "a", 2))  # cheap check: no provenance
    assert 2 not in [k.seed for k in S.iter_run_keys(damaged_store)]
    code, out, err = run_gwasm("runs", "--store", damaged_store)
    assert code == 0 and out.strip().splitlines()[1].split()[:4] == ["d", "a", "1", "0"]
    assert err.strip() == "4 damaged run(s) not listed; see gwasm runs --check"
    code, out, _ = run_gwasm("runs", "--detail", "--store", damaged_store)
    assert [line.split()[2] for line in out.strip().splitlines()[1:]] == ["0"]
    code, out, err = run_gwasm("runs", "--check", "--store", damaged_store)
    assert code == 0 and err == ""
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [line[:4] for line in lines] == [["leftover", "d", "a", f"seed {s}"] for s in (5, 6, 7)] + [["damaged", "d", "a", f"seed {s}"] for s in (1, 2, 3, 4)]
    assert lines[0][4] == "temporary directory of an unfinished run (300 s old)" and lines[0][5].endswith(f".seed=5.{TMP}.tmp")
    assert lines[5][4:] == ["3 rows, the dataset has 4 examples", str(S.run_dir(damaged_store, RunKey("d", "a", 3)))]


def test_check_of_a_clean_store_and_conflicting_views(tmp_path, run_gwasm):
    store = tmp_path / "store"
    fake_run(store, 0)
    assert run_gwasm("runs", "--check", "--store", store) == (0, f"store clean: {store}\n", "")
    code, _, err = run_gwasm("runs", "--check", "--pending", "--store", store)
    assert code == 2 and "--check" in err and len(err.splitlines()) == 1
    code, _, err = run_gwasm("runs", "--pending", "--claim-timeout", "0", "--store", store)
    assert code == 2 and err.startswith("gwasm: error: --claim-timeout must be a positive number")


def test_pending_lists_claims_live_and_stale(tmp_path, run_gwasm, monkeypatch):
    store = tmp_path / "store"
    # node3's job is still in the queue (a job that left it makes its claim stale: test_claims.py)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "squeue").write_text("#!/bin/bash\necho RUNNING\n")
    (tmp_path / "bin" / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    fake_run(store, 0)
    claim(store, RunKey("d", "a", 1), host="node3", pid=4711, age=5, job_id="812_1")
    claim(store, RunKey("d", "a", 2), pid=dead_pid())
    claim(store, RunKey("d", "a", 3), host="node4", pid=9, age=900)
    claims_table = S.list_claims(store).set_index("seed")
    assert claims_table["state"].to_dict() == {1: "live", 2: "stale", 3: "stale"}
    assert claims_table.loc[1, "job_id"] == "812_1" and claims_table.loc[1, "host"] == "node3" and claims_table.loc[1, "pid"] == 4711
    assert 4 <= claims_table.loc[1, "heartbeat_age_s"] <= 60
    code, out, _ = run_gwasm("runs", "--pending", "--store", store)
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == S.CLAIM_COLUMNS
    assert rows[0].split()[:6] == ["d", "a", "1", "node3", "4711", "812_1"] and rows[0].split()[-1] == "live"
    assert S.list_claims(store, stale_after=1000).set_index("seed")["state"].to_dict() == {1: "live", 2: "stale", 3: "live"}
    assert run_gwasm("runs", "--pending", "--store", tmp_path / "none")[1].startswith("no runs being trained")


def test_cleaning_removes_only_what_no_live_collector_uses(tmp_path):
    store = tmp_path / "store"
    fake_run(store, 0)
    label_dir = S.run_dir(store, RunKey("d", "a", 0)).parent
    old_orphan = age_path(_mkdir(label_dir / f".seed=1.{TMP}.tmp"), 300)
    young_orphan = _mkdir(label_dir / f".seed=2.{TMP}.tmp")  # a writer without a claim may be at work
    claim(store, RunKey("d", "a", 3))  # live: this process
    in_progress = age_path(_mkdir(label_dir / f".seed=3.{TMP}.tmp"), 300)
    claim(store, RunKey("d", "a", 4), pid=dead_pid())
    killed_write = _mkdir(label_dir / f".seed=4.{TMP}.tmp")  # young, but its writer is known dead
    claim(store, RunKey("d", "a", 5), host="node4", pid=9, age=900)
    removed = S.clean_leftovers(store, "d", "a", stale_after=600)
    assert sorted(p.name for p in removed) == sorted([old_orphan.name, killed_write.name, ".seed=4.claim", ".seed=5.claim"])
    assert sorted(p.name for p in label_dir.iterdir()) == sorted([young_orphan.name, ".seed=3.claim", in_progress.name, "seed=0"])
    assert [(row.seed, row.problem) for row in S.check_store(store).itertuples()] == [(2, "leftover")]


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_write_run_replaces_a_damaged_run_but_keeps_a_sound_one(tmp_path):
    store = tmp_path / "store"
    first = fake_run(store, 0)
    (first / S.PROVENANCE_FILE).write_text("")  # damaged: empty provenance
    replaced = fake_run(store, 0, test_accuracy=0.75)
    assert replaced == first and S.run_damage(store, RunKey("d", "a", 0)) is None
    assert S.read_provenance(store, RunKey("d", "a", 0))["test_accuracy"] == 0.75
    fake_run(store, 0, test_accuracy=0.25)  # a second writer of a sound run: discarded
    assert S.read_provenance(store, RunKey("d", "a", 0))["test_accuracy"] == 0.75
    assert [p.name for p in store.rglob(".*")] == []


def test_a_collector_retrains_a_damaged_run(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    args = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--runs", "2", "--store", store, *FAST]
    assert run_gwasm(*args)[0] == 0
    table = S.run_dir(store, RunKey("tiny_digits", "mlp", 1)) / S.RUN_FILE
    good = table.read_bytes()
    table.write_bytes(good[: len(good) // 2])
    assert S.run_exists(store, RunKey("tiny_digits", "mlp", 1))  # the cheap check cannot tell
    with pytest.raises(S.StoreError, match="damaged: unreadable Parquet"):
        S.load_score_matrices(store, "tiny_digits", ["loss"])
    code, out, err = run_gwasm(*args)
    assert code == 0, err
    assert "1 damaged run(s) of mlp will be trained again" in err and "tiny_digits\tmlp\tseed 1\t" in out and "seed 0" not in out
    assert table.read_bytes() == good  # the same seed trains the same run
    assert S.check_store(store).empty
