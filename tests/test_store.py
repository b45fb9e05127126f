"""The run store: Hive-partitioned Parquet readable as it is, provenance, trajectories, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import torch

from gwas_models.errors import InputError, StoreError
from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey
from gwas_models.scores import ALL_SCORE_NAMES, DEFINITIONS_VERSION, LEGACY_COLUMNS, SCORE_NAMES

torch.set_num_threads(1)

USER_ARCH = "gwasm_test_zoo_b.nets:tiny"
USER_MODULE = """
from torch import nn

def tiny(num_classes, in_channels):
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
"""


def _hidden_or_tmp(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def collected(tmp_path_factory, tiny_digits_npz):
    """Two mlp runs (trajectories kept) and one run of a user factory, in one store."""
    from gwas_models.training.collect import collect, plan_collection
    from gwas_models.training.train import TrainConfig

    root = tmp_path_factory.mktemp("store") / "runs"
    zoo = tmp_path_factory.mktemp("zoo")
    (zoo / "gwasm_test_zoo_b").mkdir()
    (zoo / "gwasm_test_zoo_b" / "__init__.py").write_text("")
    (zoo / "gwasm_test_zoo_b" / "nets.py").write_text(USER_MODULE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(zoo))
        plan, data = plan_collection(
            "mlp", [0, 1], TrainConfig(epochs=2), dataset=str(tiny_digits_npz), store=root, device="cpu", threads=1, keep_trajectories=True
        )
        assert plan.todo == (0, 1) and plan.done == ()
        mlp = collect(plan, data)
        plan, _ = plan_collection(
            USER_ARCH, [3], TrainConfig(epochs=1), dataset=str(tiny_digits_npz), store=root, device="cpu", threads=1, scores=("loss", "accuracy", "confidence")
        )
        user = collect(plan, data)
    return SimpleNamespace(root=root, data=data, mlp=mlp, user=user)


# --------------------------------------------------------------------------------------------
# Reading the store as it is
# --------------------------------------------------------------------------------------------


def test_pandas_reads_the_runs(collected):
    frame = pd.read_parquet(collected.root)
    assert list(frame.columns) == ["example_id", "label", *ALL_SCORE_NAMES, "dataset", "arch", "seed"]
    assert len(frame) == 3 * 300
    assert set(frame["dataset"].astype(str)) == {"tiny_digits"}
    runs = frame.assign(arch=frame["arch"].astype(str), seed=frame["seed"].astype(int)).groupby(["arch", "seed"])
    assert sorted(runs.groups) == sorted([(USER_ARCH, 3), ("mlp", 0), ("mlp", 1)])
    for (arch, seed), run in runs:
        run = run.sort_values("example_id")
        np.testing.assert_array_equal(run["example_id"], np.arange(300))
        np.testing.assert_array_equal(run["label"], collected.data.y_train)
        recorded = SCORE_NAMES if arch == "mlp" else ("loss", "accuracy", "confidence")  # the paper's set by default
        for name in ALL_SCORE_NAMES:
            values = run[name].to_numpy()
            assert values.dtype == np.float64
            if name in recorded:
                assert np.isfinite(values).all(), (arch, name)
            else:
                assert np.isnan(values).all(), (arch, name)


def test_pyarrow_dataset_reads_only_run_files(collected):
    dataset = pads.dataset(collected.root, partitioning="hive")
    files = sorted(Path(f).name for f in dataset.files)
    assert files == [S.RUN_FILE] * 3
    assert dataset.schema.names == ["example_id", "label", *ALL_SCORE_NAMES, "dataset", "arch", "seed"]
    table = dataset.to_table(filter=pads.field("arch") == USER_ARCH)
    assert table.num_rows == 300
    assert set(table.column("seed").to_pylist()) == {3}
    # the arch is percent-encoded on disk and decoded by the reader
    assert (collected.root / "dataset=tiny_digits" / "arch=gwasm_test_zoo_b.nets%3Atiny" / "seed=3" / S.RUN_FILE).is_file()
    # the provenance, trajectory and dataset files are there, but not read as data
    run0 = S.run_dir(collected.root, RunKey("tiny_digits", "mlp", 0))
    assert sorted(p.name for p in run0.iterdir()) == [S.PROVENANCE_FILE, S.TRAJECTORY_FILE, S.RUN_FILE]
    assert (collected.root / "dataset=tiny_digits" / S.DATASET_FILE).is_file()
    assert _hidden_or_tmp(collected.root) == []


def test_store_listing_api(collected):
    root = collected.root
    assert S.list_datasets(root) == ["tiny_digits"]
    assert list(S.iter_run_keys(root)) == [RunKey("tiny_digits", USER_ARCH, 3), RunKey("tiny_digits", "mlp", 0), RunKey("tiny_digits", "mlp", 1)]
    assert set(S.list_archs(root, "tiny_digits")) == {"mlp", USER_ARCH}
    assert S.run_exists(root, RunKey("tiny_digits", USER_ARCH, 3))
    assert not S.run_exists(root, RunKey("tiny_digits", "mlp", 2))
    info = S.read_dataset_info(root, "tiny_digits")
    assert info["n_examples"] == 300 and info["n_test"] == 100 and info["class_names"] == [str(i) for i in range(10)]
    assert info["input_shape"] == [1, 8, 8] and info["source"]["kind"] == "npz"
    assert S.resolve_dataset(root, None) == "tiny_digits"
    matrices = S.load_score_matrices(root, "tiny_digits", ["loss", "aum"], archs=["mlp"])
    frame = pd.read_parquet(S.run_dir(root, RunKey("tiny_digits", "mlp", 1)) / S.RUN_FILE)
    assert matrices["loss"].values.shape == (2, 300)
    np.testing.assert_array_equal(matrices["aum"].values[1], frame["aum"])
    assert S.recorded_scores(root, "tiny_digits", archs=[USER_ARCH]) == ["loss", "accuracy", "confidence"]


def test_trajectories_are_float16_epochs_by_examples(collected):
    key = RunKey("tiny_digits", "mlp", 0)
    with np.load(S.run_dir(collected.root, key) / S.TRAJECTORY_FILE) as raw:
        assert sorted(raw.files) == ["correct", "loss", "margin"]
        for name in raw.files:
            assert raw[name].dtype == np.float16 and raw[name].shape == (2, 300)
    traj = S.read_trajectories(collected.root, key)
    assert set(np.unique(traj["correct"])) <= {0.0, 1.0}
    assert np.all(traj["margin"] >= -1) and np.all(traj["margin"] <= 1) and np.all(traj["loss"] >= 0)
    frame = pd.read_parquet(S.run_dir(collected.root, key) / S.RUN_FILE)
    # the eval-pass scores can be re-derived from the trajectories (the eval passes at epoch ends)
    np.testing.assert_array_equal(traj["correct"].astype(np.float64).mean(axis=0), frame["accuracy"])
    np.testing.assert_allclose(traj["loss"].astype(np.float64).mean(axis=0), frame["loss"], rtol=2e-3)
    np.testing.assert_allclose(traj["margin"].astype(np.float64).mean(axis=0), frame["aum"], atol=2e-3)
    np.testing.assert_allclose(np.exp(-traj["loss"].astype(np.float64)).mean(axis=0), frame["confidence"], atol=3e-3)
    with pytest.raises(StoreError, match="without keeping them"):
        S.read_trajectories(collected.root, RunKey("tiny_digits", USER_ARCH, 3))


def test_provenance(collected):
    from gwas_models.training.models import build_model, count_parameters
    from gwas_models.training.train import SeedStreams, TrainConfig

    prov = S.read_provenance(collected.root, RunKey("tiny_digits", "mlp", 1))
    assert prov["config"] == TrainConfig(epochs=2).to_dict()
    assert prov["dataset"] == "tiny_digits" and prov["arch"] == "mlp" and prov["seed"] == 1
    streams = SeedStreams(1)
    assert prov["seed_streams"] == {"init": streams.init, "order": streams.order, "augment": streams.augment}
    assert prov["test_accuracy"] == collected.mlp.test_accuracy[1]
    assert 0 <= prov["test_accuracy"] <= 1 and 0 <= prov["train_accuracy"] <= 1
    assert prov["n_parameters"] == count_parameters(build_model("mlp", 10, (1, 8, 8), 0)) == 85002
    assert prov["wall_time_s"] > 0
    assert prov["device"] == "cpu" and prov["n_threads"] == 1
    assert {"gwas_models", "python", "torch", "numpy", "pandas", "pyarrow"} <= set(prov["versions"])
    assert prov["versions"]["torch"] == torch.__version__
    assert prov["scores"] == list(SCORE_NAMES)
    assert prov["score_definitions"]["version"] == DEFINITIONS_VERSION
    assert prov["score_definitions"]["recorded"] == list(SCORE_NAMES)
    assert "nn_example_difficulty" in prov["score_definitions"]["sources"]["vog"]
    assert prov["early_epoch"] == 2 and prov["n_examples"] == 300  # at least epoch 2, capped at 2 epochs
    assert prov["vog_epochs"] == [1, 2]  # every epoch end
    assert prov["dataset_source"]["kind"] == "npz"
    user = S.read_provenance(collected.root, RunKey("tiny_digits", USER_ARCH, 3))
    assert user["arch"] == USER_ARCH and user["n_parameters"] == 1 * 4 * 9 + 4 + 4 * 10 + 10
    assert user["scores"] == ["loss", "accuracy", "confidence"]


def test_rerun_plan_skips_complete_runs(collected, tiny_digits_npz):
    from gwas_models.training.collect import plan_collection
    from gwas_models.training.train import TrainConfig

    plan, _ = plan_collection("mlp", [0, 1, 2], TrainConfig(epochs=2), dataset=str(tiny_digits_npz), store=collected.root, device="cpu")
    assert plan.done == (0, 1) and plan.todo == (2,)


# --------------------------------------------------------------------------------------------
# Writing: tables, atomic runs, dataset info
# --------------------------------------------------------------------------------------------


def _write_fake(root, dataset="d", arch="a", seed=0, n=4, accuracy=0.5, **extra):
    table = S.run_table(np.arange(n), np.arange(n) % 2, {"loss": np.arange(n) + float(seed)})
    return S.write_run(Path(root), RunKey(dataset, arch, seed), table, {"test_accuracy": accuracy, "n_parameters": 7, **extra})


def test_run_table_columns():
    table = S.run_table(np.arange(3), np.array([1, 0, 1]), {"aum": np.array([0.1, 0.2, 0.3]), "vog:agarwal": np.zeros(3)})
    assert table.column_names == ["example_id", "label", *ALL_SCORE_NAMES]
    assert table.schema.metadata[S.DEFINITIONS_METADATA_KEY] == str(DEFINITIONS_VERSION).encode()
    assert table.column("vog:agarwal").to_pylist() == [0.0, 0.0, 0.0]
    assert table.column("aum").to_pylist() == [0.1, 0.2, 0.3]
    assert all(np.isnan(v) for v in table.column("loss").to_pylist())
    with pytest.raises(InputError, match="unknown score"):
        S.run_table(np.arange(3), np.zeros(3), {"memorisation": np.zeros(3)})
    with pytest.raises(InputError, match="shape"):
        S.run_table(np.arange(3), np.zeros(3), {"loss": np.zeros(4)})


def test_write_run_is_atomic_and_leaves_nothing_hidden(tmp_path):
    final = _write_fake(tmp_path)
    assert final == S.run_dir(tmp_path, RunKey("d", "a", 0))
    assert sorted(p.name for p in final.iterdir()) == [S.PROVENANCE_FILE, S.RUN_FILE]
    assert _hidden_or_tmp(tmp_path) == []


def test_write_run_failure_leaves_no_half_run(tmp_path, monkeypatch):
    class Exploding:
        def __getattr__(self, name):
            return getattr(pq, name)

        @staticmethod
        def write_table(table, where, **kwargs):
            Path(where).write_bytes(b"PAR1 half a file")
            raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(S, "pq", Exploding())
    with pytest.raises(KeyboardInterrupt):
        _write_fake(tmp_path, seed=0)
    assert not S.run_dir(tmp_path, RunKey("d", "a", 0)).exists()
    assert _hidden_or_tmp(tmp_path) == []
    assert list(S.iter_run_keys(tmp_path)) == []


def test_write_run_when_another_writer_finished_first(tmp_path):
    first = _write_fake(tmp_path, accuracy=0.25)
    before = (first / S.RUN_FILE).read_bytes()
    second = _write_fake(tmp_path, accuracy=0.75)
    assert second == first
    assert (first / S.RUN_FILE).read_bytes() == before
    assert S.read_provenance(tmp_path, RunKey("d", "a", 0))["test_accuracy"] == 0.25
    assert _hidden_or_tmp(tmp_path) == []


def test_stale_temporary_directory_is_invisible(tmp_path):
    _write_fake(tmp_path, seed=0)
    stale = S.run_dir(tmp_path, RunKey("d", "a", 0)).parent / ".seed=1.0123abcd.tmp"
    stale.mkdir()
    (stale / S.RUN_FILE).write_bytes(b"PAR1 truncated")
    (tmp_path / "dataset=d" / "arch=a" / "seed=2").mkdir()  # a run directory without its table
    assert list(S.iter_run_keys(tmp_path)) == [RunKey("d", "a", 0)]
    assert not S.run_exists(tmp_path, RunKey("d", "a", 1))
    frame = pd.read_parquet(tmp_path)
    assert frame["seed"].astype(int).unique().tolist() == [0]


def test_partition_values_round_trip(tmp_path):
    odd = "my pkg.models/v2:make net"
    _write_fake(tmp_path, dataset="data set", arch=odd, seed=12)
    assert list(S.iter_run_keys(tmp_path)) == [RunKey("data set", odd, 12)]
    frame = pd.read_parquet(tmp_path)
    assert frame["arch"].astype(str).unique().tolist() == [odd]
    assert frame["dataset"].astype(str).unique().tolist() == ["data set"]
    table = pads.dataset(tmp_path, partitioning="hive").to_table()
    assert table.column("arch").to_pylist() == [odd] * 4


def test_dataset_info(tmp_path):
    info = {"name": "d", "n_examples": 4, "class_names": ["a", "b"], "input_shape": [1, 2, 2], "source": {}}
    S.write_dataset_info(tmp_path, "d", info)
    S.write_dataset_info(tmp_path, "d", info)  # same dataset again: fine
    assert S.read_dataset_info(tmp_path, "d") == info
    with pytest.raises(StoreError, match="5 examples|4 examples"):
        S.write_dataset_info(tmp_path, "d", {**info, "n_examples": 5})
    with pytest.raises(StoreError):
        S.write_dataset_info(tmp_path, "d", {**info, "class_names": ["a", "c"]})
    with pytest.raises(StoreError, match="datasets there: d"):
        S.read_dataset_info(tmp_path, "other")


# --------------------------------------------------------------------------------------------
# Store location
# --------------------------------------------------------------------------------------------


def test_resolve_store(tmp_path, monkeypatch):
    monkeypatch.delenv(S.STORE_ENV, raising=False)
    assert S.resolve_store(None) == Path("./gwasm-store")
    monkeypatch.setenv(S.STORE_ENV, str(tmp_path / "from-env"))
    assert S.resolve_store(None) == tmp_path / "from-env"
    assert S.resolve_store(tmp_path / "given") == tmp_path / "given"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        S.resolve_store(tmp_path / "afile")


def test_check_writable(tmp_path):
    S.check_writable(tmp_path / "new" / "store")
    assert (tmp_path / "new" / "store").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="in the way"):
        S.check_writable(tmp_path / "afile" / "store")


@pytest.mark.parametrize("where", ["/proc/gwasm-test-store", "/proc/sys", "/sys/gwasm-test-store"])
def test_check_writable_unwritable_locations(where):
    """Running as root, chmod does not block writes; these locations refuse even root."""
    with pytest.raises(StoreError):
        S.check_writable(Path(where))
    assert not os.path.exists("/proc/gwasm-test-store")


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seeds,text",
    [([], ""), ([3], "3"), ([0, 1, 2], "0-2"), ([5, 0, 1, 2, 7, 8, 8], "0-2,5,7-8"), ([1, 3, 5], "1,3,5")],
)
def test_format_seeds(seeds, text):
    assert S.format_seeds(seeds) == text


def test_list_and_summarize_runs(tmp_path):
    for seed, accuracy in [(0, 0.5), (1, 0.7), (2, 0.9), (4, 0.1)]:
        _write_fake(tmp_path, arch="a", seed=seed, accuracy=accuracy, wall_time_s=1.0, device="cpu")
    _write_fake(tmp_path, arch="b", seed=0, accuracy=0.25)
    runs = S.list_runs(tmp_path)
    assert list(runs.columns) == ["dataset", "arch", "seed", "test_accuracy", "n_parameters", "wall_time_s", "device"]
    assert len(runs) == 5
    summary = S.summarize_runs(tmp_path).set_index("arch")
    assert summary.loc["a", "n_runs"] == 4 and summary.loc["a", "seeds"] == "0-2,4"
    assert summary.loc["a", "mean_test_accuracy"] == pytest.approx(0.55)
    assert summary.loc["b", "seeds"] == "0" and summary.loc["b", "mean_test_accuracy"] == pytest.approx(0.25)
    empty = S.summarize_runs(tmp_path / "nothing")
    assert empty.empty and list(empty.columns) == ["dataset", "arch", "n_runs", "seeds", "mean_test_accuracy", "n_parameters"]


# --------------------------------------------------------------------------------------------
# Imported scores
# --------------------------------------------------------------------------------------------


def test_imported_scores_round_trip_and_stay_out_of_the_runs(tmp_path):
    _write_fake(tmp_path, dataset="d", n=4)
    path = S.write_imported_score(tmp_path, "d", "memorization", np.arange(4), np.array([0.1, np.nan, 0.3, 0.4]), False, "/x.csv")
    assert path == tmp_path / "_imported" / "dataset=d" / "memorization.parquet"
    values, higher_is_harder = S.read_imported_score(tmp_path, "d", "memorization")
    assert higher_is_harder is False
    assert values.index.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(values.to_numpy(), [0.1, np.nan, 0.3, 0.4])
    assert S.list_imported_scores(tmp_path, "d") == ["memorization"]
    assert len(pd.read_parquet(tmp_path)) == 4  # the imported file is not a run
    assert _hidden_or_tmp(tmp_path) == []
    for bad in ["loss", "vog:agarwal", "", "a/b", "a=b", "_x", ".x"]:
        with pytest.raises(InputError):
            S.write_imported_score(tmp_path, "d", bad, np.arange(4), np.zeros(4), True, "")
    with pytest.raises(StoreError, match="no imported score"):
        S.read_imported_score(tmp_path, "d", "absent")


# --------------------------------------------------------------------------------------------
# Stores written before named variants (score definitions version 1)
# --------------------------------------------------------------------------------------------

OLD_COLUMNS = ("loss", "accuracy", "aum", "forgetting", "consistently_learned", "el2n", "grand", "vog", "confidence", "variability", "entropy")


def _write_old_run(root: Path, arch: str, seed: int, n: int = 6, early_epoch: int = 1, recorded=OLD_COLUMNS) -> dict[str, np.ndarray]:
    """A run exactly as gwas-models wrote it before variants: bare columns, no definitions record."""
    rng = np.random.default_rng(seed)
    values = {name: (rng.random(n) if name in recorded else np.full(n, np.nan)) for name in OLD_COLUMNS}
    table = pa.table({"example_id": np.arange(n), "label": np.arange(n) % 2, **values})
    provenance = {
        "arch": arch,
        "seed": seed,
        "scores": list(recorded),
        "early_epoch": early_epoch,
        "vog_epochs": [1, 2, 3, 4],
        "config": {"epochs": 4, "vog_checkpoints": 8},
        "test_accuracy": 0.5,
        "n_parameters": 10,
    }
    directory = S.run_dir(root, RunKey("d", arch, seed))
    directory.mkdir(parents=True)
    pq.write_table(table, directory / S.RUN_FILE)
    (directory / S.PROVENANCE_FILE).write_text(json.dumps(provenance))
    return values


@pytest.fixture
def old_store(tmp_path):
    S.write_dataset_info(tmp_path, "d", {"name": "d", "n_examples": 6, "class_names": ["a", "b"], "source": {}})
    runs = {seed: _write_old_run(tmp_path, "old", seed) for seed in (0, 1)}
    return tmp_path, runs


def test_an_old_run_is_read_with_the_definitions_it_was_computed_with(old_store):
    root, runs = old_store
    table = S.read_run_scores(root, RunKey("d", "old", 0))
    assert table.column_names == ["example_id", "label", *(LEGACY_COLUMNS[c] for c in OLD_COLUMNS)]
    assert "vog:logit" in table.column_names and "loss:presentations" in table.column_names
    assert "vog" not in table.column_names and "loss" not in table.column_names
    np.testing.assert_array_equal(table.column("vog:logit").to_numpy(), runs[0]["vog"])
    np.testing.assert_array_equal(table.column("el2n").to_numpy(), runs[0]["el2n"])  # same formula, same name


def test_recorded_scores_of_an_old_store_are_the_variant_names(old_store):
    root, _ = old_store
    assert S.recorded_scores(root, "d") == [
        "el2n",
        "grand",
        "confidence",
        "variability",
        "loss:presentations",
        "accuracy:presentations",
        "aum:presentations",
        "forgetting:toneva",
        "consistently_learned:epoch",
        "vog:logit",
        "entropy:presentations",
    ]


def test_load_score_matrices_of_an_old_store(old_store):
    root, runs = old_store
    matrices = S.load_score_matrices(root, "d", ["loss:presentations", "vog:logit", "aum:presentations", "loss", "vog"])
    np.testing.assert_array_equal(matrices["loss:presentations"].values, np.stack([runs[0]["loss"], runs[1]["loss"]]))
    np.testing.assert_array_equal(matrices["vog:logit"].values[1], runs[1]["vog"])
    assert matrices["aum:presentations"].higher_is_harder is False
    # the paper's definitions were never recorded by the old runs: missing, never the old values
    assert np.isnan(matrices["loss"].values).all() and np.isnan(matrices["vog"].values).all()


def test_old_and_new_runs_of_one_architecture_are_never_pooled(old_store):
    root, runs = old_store
    new = {"loss": np.full(6, 9.0), "loss:presentations": np.full(6, 7.0)}
    S.write_run(root, RunKey("d", "old", 2), S.run_table(np.arange(6), np.arange(6) % 2, new), {"test_accuracy": 0.5})
    matrices = S.load_score_matrices(root, "d", ["loss", "loss:presentations"])
    loss = matrices["loss"].values
    assert np.isnan(loss[:2]).all() and (loss[2] == 9.0).all()  # the old runs' bare loss is not this loss
    np.testing.assert_array_equal(matrices["loss:presentations"].values[:2], np.stack([runs[0]["loss"], runs[1]["loss"]]))
    assert (matrices["loss:presentations"].values[2] == 7.0).all()
    # raw readers see each file as written (the old file's bare columns, the new file's every definition)
    assert "loss:presentations" in pq.read_table(S.run_dir(root, RunKey("d", "old", 2)) / S.RUN_FILE).column_names


def test_a_new_run_is_known_by_its_provenance_or_its_table(tmp_path):
    table = S.run_table(np.arange(3), np.zeros(3), {"loss": np.ones(3)})
    assert S.definitions_version({}, table.schema) == DEFINITIONS_VERSION
    plain = pa.table({"example_id": np.arange(3), "label": np.zeros(3, dtype=np.int64), "loss": np.ones(3)})
    assert S.definitions_version({}, plain.schema) == 1
    assert S.definitions_version({"score_definitions": {"version": 2}}, plain.schema) == 2
    with pytest.raises(StoreError, match="version 3"):
        S.definitions_version({"score_definitions": {"version": 3}}, plain.schema)


def test_an_old_store_works_in_the_analyses(old_store):
    """The difficulty analyses read an old store with the variant names (none of the paper's)."""
    from gwas_models.workflows.analyses import load_arch_scores

    root, _ = old_store
    _, screened = load_arch_scores("old", store=root)
    assert "vog:logit" in screened.matrices and "loss:presentations" in screened.matrices
    assert not set(screened.matrices) & {"loss", "vog", "aum", "forgetting"}


def test_el2n_of_runs_at_other_early_epochs_is_not_pooled(old_store):
    root, _ = old_store
    _write_old_run(root, "old", 5, early_epoch=2)
    with pytest.raises(StoreError, match="early_epoch"):
        S.load_score_matrices(root, "d", ["el2n"])
    S.load_score_matrices(root, "d", ["loss:presentations"])  # other scores still load
