"""`gwasm collect`, `gwasm runs`, `gwasm import-scores` end to end, and every bad input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from gwas_models.formats import store as S
from gwas_models.formats.store import RunKey, read_dataset_info
from gwas_models.scores import SCORE_NAMES
from gwas_models.training import collect as C
from gwas_models.training.models import BUILTIN_ARCHS

torch.set_num_threads(1)

FAST = ["--device", "cpu", "--threads", "1", "-q"]


def assert_one_error_line(code: int, err: str, exit_code: int = 2) -> str:
    assert code == exit_code, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("gwasm: error: ") and lines[0][len("gwasm: error: ") :].strip()
    return lines[0]


def assert_nothing_half_written(store: Path) -> None:
    store = Path(store)
    if not store.exists():
        return
    runs = [p for p in store.rglob("seed=*")]
    hidden = [p for p in store.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert runs == [] and hidden == [], (runs, hidden)


def read_run(store: Path, dataset: str, arch: str, seed: int) -> pd.DataFrame:
    return pq.read_table(S.run_dir(store, RunKey(dataset, arch, seed)) / S.RUN_FILE).to_pandas()


# --------------------------------------------------------------------------------------------
# Collecting
# --------------------------------------------------------------------------------------------


def test_same_seed_identical_other_seed_differs(tmp_path, tiny_digits_npz, run_gwasm):
    args = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "2", *FAST]
    code, out, _ = run_gwasm(*args, "--runs", "1", "--store", tmp_path / "a")
    assert code == 0 and "tiny_digits\tmlp\tseed 0\ttest accuracy" in out
    assert "collected 1 run(s), 0 already present" in out
    code, _, _ = run_gwasm(*args, "--runs", "1", "--store", tmp_path / "b")
    assert code == 0
    code, _, _ = run_gwasm(*args, "--seeds", "1", "--store", tmp_path / "a")
    assert code == 0
    a0 = read_run(tmp_path / "a", "tiny_digits", "mlp", 0)
    b0 = read_run(tmp_path / "b", "tiny_digits", "mlp", 0)
    a1 = read_run(tmp_path / "a", "tiny_digits", "mlp", 1)
    for name in SCORE_NAMES:
        assert np.isfinite(a0[name]).all(), name
        np.testing.assert_array_equal(a0[name].to_numpy(), b0[name].to_numpy(), err_msg=name)
    for name in ("loss", "aum", "el2n", "grand", "vog", "confidence", "entropy"):
        assert not np.array_equal(a0[name].to_numpy(), a1[name].to_numpy()), name
    prov_a = S.read_provenance(tmp_path / "a", RunKey("tiny_digits", "mlp", 0))
    prov_b = S.read_provenance(tmp_path / "b", RunKey("tiny_digits", "mlp", 0))
    assert prov_a["test_accuracy"] == prov_b["test_accuracy"] and prov_a["n_threads"] == 1


def test_cifar10_and_cifar100_end_to_end(tmp_path, tiny_cifar_root, run_gwasm):
    store = tmp_path / "store"
    for dataset, n, n_classes in (("cifar10", 20, 10), ("cifar100", 12, 100)):
        code, out, err = run_gwasm(
            "collect", "--arch", "mlp", "--dataset", dataset, "--data-root", tiny_cifar_root, "--epochs", "1", "--store", store, *FAST
        )
        assert code == 0, err
        assert f"{dataset}\tmlp\tseed 0" in out
        frame = read_run(store, dataset, "mlp", 0)
        assert len(frame) == n and frame["example_id"].tolist() == list(range(n))
        assert np.isfinite(frame["loss"]).all() and np.isfinite(frame["grand"]).all()
        info = S.read_dataset_info(store, dataset)
        assert len(info["class_names"]) == n_classes and info["input_shape"] == [3, 32, 32]
        assert info["source"] == {"kind": dataset, "root": str(Path(tiny_cifar_root).resolve())}
        prov = S.read_provenance(store, RunKey(dataset, "mlp", 0))
        assert prov["n_parameters"] == 3072 * 256 + 256 + 256 * 256 + 256 + 256 * n_classes + n_classes
    frame = read_run(store, "cifar10", "mlp", 0)
    np.testing.assert_array_equal(frame["label"], [i % 10 for i in range(20)])
    assert sorted(S.list_datasets(store)) == ["cifar10", "cifar100"]


def test_user_factory_end_to_end(tmp_path, user_factory, tiny_digits_npz, run_gwasm):
    arch = user_factory("gwasm_test_zoo_c")
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", arch, "--dataset", tiny_digits_npz, "--epochs", "2", "--store", store, *FAST)
    assert code == 0, err
    frame = pd.read_parquet(store)
    assert frame["arch"].astype(str).unique().tolist() == [arch]
    assert np.isfinite(frame["grand"]).all() and np.isfinite(frame["vog"]).all()
    assert list(S.iter_run_keys(store)) == [RunKey("tiny_digits", arch, 0)]
    assert S.read_provenance(store, RunKey("tiny_digits", arch, 0))["n_parameters"] == 3 * 9 + 3 + 3 * 64 * 10 + 10


def test_resnet20_parameter_count_recorded(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, _, err = run_gwasm("collect", "--arch", "resnet20", "--dataset", tiny_digits_npz, "--epochs", "1", "--scores", "loss", "--store", store, *FAST)
    assert code == 0, err
    assert S.read_provenance(store, RunKey("tiny_digits", "resnet20", 0))["n_parameters"] == 272186  # see test_training
    code, out, _ = run_gwasm("runs", "--store", store)
    assert code == 0 and out.strip().splitlines()[1].split()[-1] == "272186"


def test_keep_trajectories_and_subset_of_scores(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, _, err = run_gwasm(
        "collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "3", "--scores", "loss,consistently_learned", "--keep-trajectories", "--store", store, *FAST
    )
    assert code == 0, err
    traj = S.read_trajectories(store, RunKey("tiny_digits", "mlp", 0))
    assert {k: (v.dtype, v.shape) for k, v in traj.items()} == {k: (np.float16, (3, 300)) for k in ("loss", "correct", "margin")}
    frame = read_run(store, "tiny_digits", "mlp", 0)
    assert np.isfinite(frame["loss"]).all() and np.isfinite(frame["consistently_learned"]).all()
    assert frame[[n for n in SCORE_NAMES if n not in ("loss", "consistently_learned")]].isna().all().all()


# --------------------------------------------------------------------------------------------
# Resuming
# --------------------------------------------------------------------------------------------


def _count_runs(monkeypatch):
    trained = []
    original = C.run_one

    def counting(plan, seed, *args, **kwargs):
        trained.append(seed)
        return original(plan, seed, *args, **kwargs)

    monkeypatch.setattr(C, "run_one", counting)
    return trained


def test_interrupted_collection_resumes(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    """Ctrl-C while the second of three runs is being written; rerun the same command."""
    from gwas_models.training.collect import collect, plan_collection
    from gwas_models.training.train import preset

    store = tmp_path / "store"
    argv = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--runs", "3", "--epochs", "1", "--store", store, *FAST]
    writes = []

    class InterruptSecondWrite:
        def __getattr__(self, name):
            return getattr(pq, name)

        @staticmethod
        def write_table(table, where, **kwargs):
            writes.append(where)
            if len(writes) == 2:
                Path(where).write_bytes(b"PAR1 half")
                raise KeyboardInterrupt
            return pq.write_table(table, where, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(S, "pq", InterruptSecondWrite())
        plan, data = plan_collection("mlp", [0, 1, 2], preset("digits", epochs=1), dataset=str(tiny_digits_npz), store=store, device="cpu", threads=1)
        with pytest.raises(KeyboardInterrupt):
            collect(plan, data)
    assert len(writes) == 2
    # only the complete run is visible, and nothing half-written is left
    assert list(S.iter_run_keys(store)) == [RunKey("tiny_digits", "mlp", 0)]
    assert not S.run_dir(store, RunKey("tiny_digits", "mlp", 1)).exists()
    assert [p for p in store.rglob("*") if p.name.startswith(".")] == []
    assert pd.read_parquet(store)["seed"].astype(int).unique().tolist() == [0]
    done = S.run_dir(store, RunKey("tiny_digits", "mlp", 0))
    stamps = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}

    trained = _count_runs(monkeypatch)
    code, out, err = run_gwasm(*argv)
    assert code == 0, err
    assert trained == [1, 2]
    assert "seed 0" not in out and "seed 1\t" in out and "seed 2\t" in out
    assert "collected 2 run(s), 1 already present" in out
    assert "1 run(s) of mlp on tiny_digits already in" in err
    assert {p.name: p.stat().st_mtime_ns for p in done.iterdir()} == stamps
    assert [k.seed for k in S.iter_run_keys(store)] == [0, 1, 2]

    # a third time: nothing to do
    code, out, _ = run_gwasm(*argv)
    assert code == 0 and trained == [1, 2]
    assert "collected 0 run(s), 3 already present" in out
    assert {p.name: p.stat().st_mtime_ns for p in done.iterdir()} == stamps


def test_stale_temporary_run_is_ignored_and_retrained(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    """A process killed mid-write leaves a hidden temporary directory: invisible, and retrained."""
    store = tmp_path / "store"
    base = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", store, *FAST]
    assert run_gwasm(*base, "--runs", "1")[0] == 0
    done = S.run_dir(store, RunKey("tiny_digits", "mlp", 0))
    stale = done.parent / ".seed=1.5f0c2d7e9a.tmp"
    stale.mkdir()
    (stale / S.RUN_FILE).write_bytes((done / S.RUN_FILE).read_bytes()[:100])
    (stale / S.PROVENANCE_FILE).write_text("{")
    assert pd.read_parquet(store)["seed"].astype(int).unique().tolist() == [0]
    code, out, _ = run_gwasm("runs", "--store", store)
    assert code == 0 and "tiny_digits" in out and " 1 " in out
    mtime = (done / S.RUN_FILE).stat().st_mtime_ns
    trained = _count_runs(monkeypatch)
    code, out, err = run_gwasm(*base, "--runs", "2")
    assert code == 0, err
    assert trained == [1]
    assert "collected 1 run(s), 1 already present" in out
    assert (done / S.RUN_FILE).stat().st_mtime_ns == mtime
    assert sorted(pd.read_parquet(store)["seed"].astype(int).unique().tolist()) == [0, 1]


def _interrupt_second_run(monkeypatch):
    original = C.run_one
    calls = []

    def interrupted(plan, seed, *args, **kwargs):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(plan, seed, *args, **kwargs)

    monkeypatch.setattr(C, "run_one", interrupted)


def test_ctrl_c_during_collect_exits_130_and_keeps_complete_runs(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    _interrupt_second_run(monkeypatch)
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--runs", "3", "--epochs", "1", "--store", store, *FAST)
    assert code == 130
    assert "collected" not in out
    assert [k.seed for k in S.iter_run_keys(store)] == [0]
    assert [p for p in store.rglob("*") if p.name.startswith(".")] == []


def test_ctrl_c_during_collect_is_one_line(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    _interrupt_second_run(monkeypatch)
    store = tmp_path / "store"
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--runs", "3", "--epochs", "1", "--store", store, *FAST)
    line = assert_one_error_line(code, err, exit_code=130)
    assert "interrupted" in line


def test_internal_error_is_one_line(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    monkeypatch.delenv("GWASM_DEBUG", raising=False)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(C, "run_one", broken)
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", tmp_path / "s", *FAST)
    line = assert_one_error_line(code, err, exit_code=1)
    assert "internal error" in line and "boom" in line and "GWASM_DEBUG" in line


@pytest.mark.parametrize(
    "refusal",
    [OSError(28, "No space left on device"), OSError("No space left on device (os error 28)"), FileNotFoundError(2, "No such file or directory", "/gone/x")],
)
def test_an_error_of_the_system_is_one_line_and_not_called_a_bug(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm, refusal):
    monkeypatch.delenv("GWASM_DEBUG", raising=False)

    def refused(*args, **kwargs):
        raise refusal

    monkeypatch.setattr(C, "run_one", refused)
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", tmp_path / "s", *FAST)
    line = assert_one_error_line(code, err)  # exit 2, as for any error that is not a bug
    assert "internal error" not in line and ("No space left on device" in line or line.endswith("No such file or directory: /gone/x"))


def test_multiline_internal_error_is_still_one_line(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    monkeypatch.delenv("GWASM_DEBUG", raising=False)

    def broken(*args, **kwargs):
        raise RuntimeError("first line\n        second line\n")

    monkeypatch.setattr(C, "run_one", broken)
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", tmp_path / "s", *FAST)
    line = assert_one_error_line(code, err, exit_code=1)
    assert "first line" in line and "second line" in line


def test_os_error_while_writing_is_one_line(tmp_path, monkeypatch, tiny_digits_npz, run_gwasm):
    def no_permission(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "s"))

    monkeypatch.setattr(C.run_store, "write_run", no_permission)
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", tmp_path / "s", *FAST)
    line = assert_one_error_line(code, err)
    assert "Permission denied" in line
    assert_nothing_half_written(tmp_path / "s")


def test_conflicting_dataset_is_refused_before_training(tmp_path, tiny_digits_npz, run_gwasm):
    from gwas_models.errors import StoreError
    from gwas_models.training.train import preset

    store = tmp_path / "store"
    assert run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", store, *FAST)[0] == 0
    other = tmp_path / "other" / "tiny_digits.npz"
    other.parent.mkdir()
    np.savez(other, x=np.random.default_rng(0).random((50, 8, 8)), y=np.arange(50) % 10)
    with pytest.raises(StoreError):
        C.plan_collection("mlp", [5], preset("digits", epochs=1), dataset=str(other), store=store, device="cpu")


def test_conflicting_dataset_writes_no_run(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    assert run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", store, *FAST)[0] == 0
    other = tmp_path / "other" / "tiny_digits.npz"
    other.parent.mkdir()
    np.savez(other, x=np.random.default_rng(0).random((50, 8, 8)), y=np.arange(50) % 10)
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", other, "--seeds", "5", "--epochs", "1", "--store", store, *FAST)
    assert_one_error_line(code, err)
    assert [k.seed for k in S.iter_run_keys(store)] == [0]
    assert not S.run_dir(store, RunKey("tiny_digits", "mlp", 5)).exists()
    assert [p for p in store.rglob("*") if p.name.startswith(".")] == []


# --------------------------------------------------------------------------------------------
# gwasm runs, gwasm import-scores
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, tiny_digits_npz):
    from gwasm_cli.main import main

    store = tmp_path_factory.mktemp("cli") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(store.parent)
        mp.setenv("GWASM_RESULTS", str(store.parent / "gwasm-results"))
        code = main(["collect", "--arch", "mlp", "--dataset", str(tiny_digits_npz), "--runs", "3", "--epochs", "1", "--store", str(store), *FAST])
    assert code == 0
    return store


def test_runs_lists_dataset_arch_count_seeds_accuracy(three_runs, run_gwasm):
    code, out, err = run_gwasm("runs", "--store", three_runs)
    assert code == 0 and err == ""
    header, *rows = out.strip().splitlines()
    assert header.split() == ["dataset", "arch", "n_runs", "seeds", "mean_test_accuracy", "n_parameters"]
    assert len(rows) == 1
    accuracies = [S.read_provenance(three_runs, RunKey("tiny_digits", "mlp", s))["test_accuracy"] for s in range(3)]
    assert rows[0].split() == ["tiny_digits", "mlp", "3", "0-2", f"{np.mean(accuracies):.4f}", "85002"]
    code, out, _ = run_gwasm("runs", "--store", three_runs, "--detail")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[0].split()[:4] == ["dataset", "arch", "seed", "test_accuracy"]
    assert [line.split()[2] for line in lines[1:]] == ["0", "1", "2"]
    assert [line.split()[3] for line in lines[1:]] == [f"{a:.4f}" for a in accuracies]


def test_runs_on_an_empty_store(tmp_path, run_gwasm):
    code, out, _ = run_gwasm("runs", "--store", tmp_path / "empty")
    assert code == 0 and "no runs" in out
    assert not (tmp_path / "empty").exists()  # listing creates nothing


def test_runs_uses_the_environment_store(three_runs, run_gwasm, monkeypatch):
    monkeypatch.setenv("GWASM_STORE", str(three_runs))
    code, out, _ = run_gwasm("runs")
    assert code == 0 and "0-2" in out


def test_import_scores_csv_and_npy(three_runs, tmp_path, run_gwasm):
    csv = tmp_path / "memo.csv"
    pd.DataFrame({"example_id": [4, 0, 299], "memorization": [0.5, 0.25, 1.0]}).to_csv(csv, index=False)
    code, out, err = run_gwasm("import-scores", csv, "--name", "memorization", "--dataset", "tiny_digits", "--store", three_runs)
    assert code == 0, err
    assert "imported memorization" in out
    values, higher_is_harder = S.read_imported_score(three_runs, "tiny_digits", "memorization")
    assert higher_is_harder is True and len(values) == 300
    assert values[0] == 0.25 and values[4] == 0.5 and values[299] == 1.0
    assert values.drop([0, 4, 299]).isna().all()

    npy = tmp_path / "agreement.npy"
    np.save(npy, np.linspace(0, 1, 300))
    code, _, err = run_gwasm("import-scores", npy, "--name", "agreement", "--dataset", "tiny_digits", "--direction", "easier", "--store", three_runs)
    assert code == 0, err
    values, higher_is_harder = S.read_imported_score(three_runs, "tiny_digits", "agreement")
    assert higher_is_harder is False
    np.testing.assert_allclose(values.sort_index().to_numpy(), np.linspace(0, 1, 300))
    assert set(S.list_imported_scores(three_runs, "tiny_digits")) >= {"memorization", "agreement"}
    # the imported scores are not runs
    assert len(pd.read_parquet(three_runs)) == 3 * 300


def _imported_files(store: Path, name: str) -> list[Path]:
    directory = Path(store) / "_imported"
    if not directory.exists():
        return []
    return [p for p in directory.rglob("*") if p.name.startswith(name) or p.name.startswith(".") or p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "content,suffix,extra,match",
    [
        ("id,value\n0,1.0\n1,2.0\n", ".csv", [], "example_id"),
        ("example_id,value\n0,1.0\n300,2.0\n", ".csv", [], r"0\.\.299"),
        ("example_id,value\n-1,1.0\n", ".csv", [], r"0\.\.299"),
        ("example_id,value\n0,1.0\n0,2.0\n", ".csv", [], "duplicates"),
        ("example_id,value\n0.5,1.0\n", ".csv", [], "integers"),
        ("example_id,a,b\n0,1.0,2.0\n", ".csv", [], "one value column"),
        ("example_id,value\n0,x\n", ".csv", [], "finite"),
        ("example_id,value\n0,1.0\n", ".csv", ["--dataset", "cifar10"], "cifar10"),
        ("example_id,value\n0,1.0\n", ".csv", ["--name", "loss"], "built-in"),
        ("example_id,value\n0,1.0\n", ".csv", ["--direction", "sideways"], "--direction"),
        (np.zeros((2, 300)), ".npy", [], "1-D"),
        (np.zeros(301), ".npy", [], r"0\.\.299"),
        (b"not numpy", ".npy", [], "cannot read"),
    ],
)
def test_import_scores_errors(three_runs, tmp_path, run_gwasm, content, suffix, extra, match):
    path = tmp_path / f"score{suffix}"
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    options = {"--name": "badscore", "--dataset": "tiny_digits"}
    for key, value in zip(extra[::2], extra[1::2]):
        options[key] = value
    args = ["import-scores", path, "--store", three_runs]
    for key, value in options.items():
        args += [key, value]
    code, out, err = run_gwasm(*args)
    line = assert_one_error_line(code, err)
    assert re.search(match, line), line
    assert _imported_files(three_runs, options["--name"]) == []


def test_import_scores_missing_file(three_runs, tmp_path, run_gwasm):
    code, _, err = run_gwasm("import-scores", tmp_path / "absent.csv", "--name", "x1", "--dataset", "tiny_digits", "--store", three_runs)
    assert "absent.csv" in assert_one_error_line(code, err)


# --------------------------------------------------------------------------------------------
# Every bad input of collect: one line, exit 2, nothing half-written
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    np.savez(root / "no_x.npz", y=np.zeros(4, int))
    np.savez(root / "no_y.npz", x=np.zeros((4, 8, 8)))
    np.savez(root / "out_of_range.npz", x=np.zeros((4, 8, 8)), y=np.array([0, 1, 2, 3]), classes=np.array(["a", "b", "c"]))
    (root / "a_file").write_text("not a directory")
    return root


BAD_COLLECT = {
    "unknown arch": (["--arch", "transformer"], "unknown architecture 'transformer'"),
    "unknown dataset": (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    "cifar10 without root": (["--dataset", "cifar10"], "--data-root"),
    "missing data root": (["--dataset", "cifar10", "--data-root", "{bad}/nowhere"], "nowhere/cifar-10-batches-py not found"),
    "npz without x": (["--dataset", "{bad}/no_x.npz"], "no array 'x'"),
    "npz without y": (["--dataset", "{bad}/no_y.npz"], "no array 'y'"),
    "labels out of range": (["--dataset", "{bad}/out_of_range.npz"], r"labels must lie in 0\.\.2"),
    "missing npz": (["--dataset", "{bad}/absent.npz"], "not found"),
    "epochs 0": (["--epochs", "0"], "--epochs must be at least 1"),
    "epochs not a number": (["--epochs", "many"], "--epochs"),
    "store is a file": (["--store", "{bad}/a_file"], "is a file"),
    "store under a file": (["--store", "{bad}/a_file/store"], "a_file"),
    "runs 0": (["--runs", "0"], "--runs must be at least 1"),
    "seeds letters": (["--seeds", "a-b"], "cannot read seeds 'a-b'"),
    "seeds reversed": (["--seeds", "3-1"], "cannot read seeds '3-1'"),
    "seeds negative": (["--seeds", "-1"], "cannot read seeds '-1'"),
    "seeds empty": (["--seeds", ","], "cannot read seeds"),
    "runs and seeds": (["--runs", "2", "--seeds", "0-1"], "either --runs or --seeds"),
    "unknown score": (["--scores", "loss,bogus"], "unknown score 'bogus'"),
    "unknown preset": (["--preset", "imagenet"], "unknown preset 'imagenet'"),
    "bad schedule": (["--schedule", "linear"], "unknown schedule"),
    "bad augmentation": (["--augment", "mixup"], "unknown augmentation"),
    "early epoch too late": (["--early-epoch", "5"], "--early-epoch must lie in 1..1"),
    "one vog checkpoint": (["--vog-checkpoints", "1"], "--vog-checkpoints"),
    "zero learning rate": (["--lr", "0"], "--lr"),
    "zero threads": (["--threads", "0"], "--threads"),
    "unknown device": (["--device", "tpu"], "unknown device 'tpu'"),
    "unknown option": (["--epoch", "3"], "--epoch"),
}


@pytest.mark.parametrize("case", list(BAD_COLLECT), ids=list(BAD_COLLECT))
def test_collect_bad_input(case, tmp_path, bad_files, tiny_digits_npz, run_gwasm):
    extra, expected = BAD_COLLECT[case]
    extra = [e.replace("{bad}", str(bad_files)) for e in extra]
    options = {"--arch": "mlp", "--dataset": str(tiny_digits_npz), "--epochs": "1", "--store": str(tmp_path / "store")}
    flags = []
    for key, value in zip(extra[::2], extra[1::2]):
        if key in options:
            options[key] = value
        else:
            flags += [key, value]
    args = ["collect", "-q", *[x for kv in options.items() for x in kv], *flags]
    if "--device" not in flags:
        args += ["--device", "cpu"]
    code, out, err = run_gwasm(*args)
    line = assert_one_error_line(code, err)
    assert expected in line or re.search(expected, line), line
    if case == "unknown arch":
        for name in BUILTIN_ARCHS:
            assert name in line
        assert "package.module:factory" in line
    assert out == ""
    assert_nothing_half_written(tmp_path / "store")
    assert_nothing_half_written(Path(options["--store"]))


def test_collect_missing_arch(tmp_path, run_gwasm):
    code, _, err = run_gwasm("collect", "--store", tmp_path / "store")
    assert "--arch" in assert_one_error_line(code, err)
    assert not (tmp_path / "store").exists()


def test_collect_zero_workers(tmp_path, tiny_digits_npz, run_gwasm):
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--workers", "0", "--store", tmp_path / "store", *FAST)
    assert "--workers" in assert_one_error_line(code, err)
    assert_nothing_half_written(tmp_path / "store")


@pytest.mark.parametrize("where", ["/proc/gwasm-test-store", "/sys/gwasm-test-store", "/proc/sys"])
def test_collect_unwritable_store(where, tiny_digits_npz, run_gwasm):
    """We run as root, so chmod does not stop writes; /proc and /sys refuse new entries even to root."""
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", where, *FAST)
    line = assert_one_error_line(code, err)
    assert where in line and ("not writable" in line or "cannot be created" in line)
    assert not os.path.exists("/proc/gwasm-test-store") and not os.path.exists("/sys/gwasm-test-store")


def test_runs_store_is_a_file(bad_files, run_gwasm):
    code, _, err = run_gwasm("runs", "--store", bad_files / "a_file")
    assert "is a file" in assert_one_error_line(code, err)


def test_a_dataset_without_test_split_says_so_instead_of_nan(tmp_path, run_gwasm):
    path = tmp_path / "no_test.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((40, 8, 8)), y=np.arange(40) % 2 + 1)  # labels 1 and 2: classes "1", "2"
    code, out, err = run_gwasm("collect", "--arch", "mlp-16", "--dataset", path, "--epochs", "1", "--store", tmp_path / "store", *FAST)
    assert code == 0, err
    assert "no test split" in out and "nan" not in out.lower()
    assert read_dataset_info(tmp_path / "store", "no_test")["class_names"] == ["1", "2"]
