"""`gwasm collect --batch-replicates`: K runs trained as one batched model, each stored as its own run.

The numerical equivalence of batched and one-by-one training (float64, every score) is tested in
tests/test_batched_training.py and tests/test_batched_recorder.py; here, what the store gets.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch

from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey
from gwas_models.scores import SCORE_NAMES
from gwas_models.training import collect as C
from gwas_models.training.train import preset

from test_cli_collect import FAST, assert_nothing_half_written, assert_one_error_line

torch.set_num_threads(1)


def _collect(run_gwasm, dataset, store, *extra):
    return run_gwasm("collect", "--arch", "mlp", "--dataset", dataset, "--epochs", "2", "--store", store, *FAST, *extra)


def test_each_batched_run_is_stored_as_its_own_complete_run(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, out, err = _collect(run_gwasm, tiny_digits_npz, store, "--runs", "3", "--batch-replicates", "3", "--keep-trajectories")
    assert code == 0, err
    assert "training 3 runs at a time as one batched model" in err
    assert "collected 3 run(s), 0 already present" in out
    accuracies = set()
    for seed in range(3):
        key = RunKey("tiny_digits", "mlp", seed)
        provenance = S.read_provenance(store, key)
        assert provenance["batched"] == {"n_replicates": 3, "seeds": [0, 1, 2]}
        assert provenance["seed"] == seed and provenance["n_parameters"] == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
        table = pq.read_table(S.run_dir(store, key) / S.RUN_FILE).to_pandas()
        assert len(table) == 300 and all(table[name].notna().all() for name in SCORE_NAMES)
        assert S.read_trajectories(store, key)["loss"].shape == (2, 300)
        accuracies.add(provenance["test_accuracy"])
    assert len(accuracies) == 3  # three runs, not one copied three times


def test_batched_and_one_by_one_runs_share_a_configuration_and_pool(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    assert _collect(run_gwasm, tiny_digits_npz, store, "--runs", "2", "--batch-replicates", "2")[0] == 0
    code, out, err = _collect(run_gwasm, tiny_digits_npz, store, "--seeds", "2-3")
    assert code == 0, err  # batching is how runs were trained, not what they are
    ids = {S.read_provenance(store, RunKey("tiny_digits", "mlp", s))["configuration_id"] for s in range(4)}
    assert len(ids) == 1
    matrices = S.load_score_matrices(store, "tiny_digits", ["loss"])
    assert matrices["loss"].values.shape == (4, 300)


def test_batched_replicates_compose_with_workers(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, out, err = _collect(run_gwasm, tiny_digits_npz, store, "--runs", "4", "--batch-replicates", "2", "--workers", "2")
    assert code == 0, err
    groups = {tuple(S.read_provenance(store, RunKey("tiny_digits", "mlp", s))["batched"]["seeds"]) for s in range(4)}
    assert sorted(groups) == [(0, 1), (2, 3)]


def test_a_group_trains_only_the_seeds_it_claims(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    assert _collect(run_gwasm, tiny_digits_npz, store, "--seeds", "1")[0] == 0
    plan, data = C.plan_collection("mlp", [0, 1, 2], preset("digits", epochs=2), dataset=str(tiny_digits_npz), store=store, device="cpu", batch_replicates=3)
    assert plan.todo == (0, 2) and plan.batch_replicates == 2
    outcomes = C.run_claimed_group(plan, (0, 1, 2), data=data)
    assert [outcomes[s].status for s in (0, 1, 2)] == ["trained", "exists", "trained"]
    assert S.read_provenance(store, RunKey("tiny_digits", "mlp", 2))["batched"]["seeds"] == [0, 2]
    assert S.read_provenance(store, RunKey("tiny_digits", "mlp", 1))["batched"] is None


def test_a_model_that_cannot_be_batched_trains_one_run_at_a_time_with_a_notice(tmp_path, user_factory, tiny_digits_npz, run_gwasm):
    arch = user_factory("gwasm_test_zoo_batched")
    store = tmp_path / "store"
    code, out, err = run_gwasm(
        "collect", "--arch", arch, "--dataset", tiny_digits_npz, "--epochs", "1", "--runs", "2", "--batch-replicates", "2", "--scores", "loss", "--store", store, *FAST
    )
    assert code == 0, err
    notices = [line for line in err.splitlines() if "cannot be trained as a batched model" in line]
    assert len(notices) == 1 and arch in notices[0] and "one at a time" in notices[0]
    assert all(S.read_provenance(store, RunKey("tiny_digits", arch, s))["batched"] is None for s in range(2))


def test_auto_picks_a_batch_that_fits(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, out, err = _collect(run_gwasm, tiny_digits_npz, store, "--runs", "3", "--batch-replicates", "auto", "--scores", "loss")
    assert code == 0, err
    n_replicates = S.read_provenance(store, RunKey("tiny_digits", "mlp", 0))["batched"]["n_replicates"]
    assert n_replicates == 3  # three tiny MLPs fit in any memory


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_bad_batch_replicates_is_one_line_and_trains_nothing(tmp_path, tiny_digits_npz, run_gwasm, value):
    store = tmp_path / "store"
    code, _, err = _collect(run_gwasm, tiny_digits_npz, store, "--runs", "2", "--batch-replicates", value)
    line = assert_one_error_line(code, err)
    assert "--batch-replicates must be a positive integer or 'auto'" in line
    assert_nothing_half_written(store)


def test_auto_is_refused_for_slurm_tasks_on_an_accelerator_this_host_cannot_measure(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, _, err = run_gwasm(
        "collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--store", store, "--executor", "slurm", "--device", "cuda", "--batch-replicates", "auto"
    )
    line = assert_one_error_line(code, err)
    assert line.startswith("gwasm: error: --batch-replicates 'auto' measures the memory of this machine's device") and "executor 'slurm'" in line
    assert_nothing_half_written(store)
