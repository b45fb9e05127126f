"""`gwasm variance | stability | correlate | pca` end to end on a tiny store."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from gwas_models.analysis.difficulty import CORRELATION_COLUMNS, STABILITY_COLUMNS, VARIANCE_COLUMNS
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_imported_score, write_run

DATASET = "toy"
N_EXAMPLES = 90
N_RUNS = 6


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Six runs of ``mlp`` and one of ``solo``; ``grand`` is constant, ``vog`` is not recorded."""
    path = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    example_id = np.arange(N_EXAMPLES)
    labels = example_id % 3
    write_dataset_info(path, DATASET, {"n_examples": N_EXAMPLES, "class_names": ["cat", "dog", "frog"], "source": {}})
    latent = rng.normal(size=N_EXAMPLES)
    for arch, runs in (("mlp", N_RUNS), ("solo", 1)):
        for seed in range(runs):
            noisy = latent + 0.5 * rng.normal(size=N_EXAMPLES)
            scores = {
                "loss": np.exp(noisy),
                "accuracy": 1.0 / (1.0 + np.exp(noisy)),
                "aum": -np.tanh(noisy + 0.3 * rng.normal(size=N_EXAMPLES)),
                "forgetting": np.round(np.clip(noisy + 1.0, 0.0, None) * 2),
                "grand": np.full(N_EXAMPLES, 1.5),
            }
            table = run_table(example_id, labels, scores)
            write_run(path, RunKey(DATASET, arch, seed), table, {"test_accuracy": 0.9, "n_parameters": 100})
    write_imported_score(path, DATASET, "agreement", example_id, latent + rng.normal(size=N_EXAMPLES), True, "test")
    return path


def assert_non_blank_png(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05  # more than a white page


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def test_variance_writes_table_and_figure(run_gwasm, store, tmp_path):
    prefix = tmp_path / "out" / "var"
    code, out, err = run_gwasm("variance", "mlp", "--store", store, "--bins", 9, "--out", prefix)
    assert code == 0, err
    table = read_tsv(prefix.with_suffix(".tsv"))
    assert list(table.columns) == list(VARIANCE_COLUMNS)
    assert list(dict.fromkeys(table["score"])) == ["loss", "accuracy", "aum", "forgetting"]
    assert (table.groupby("score")["n_examples"].sum() == N_EXAMPLES).all()
    assert_non_blank_png(prefix.with_suffix(".png"))
    assert "'grand' left out: constant" in err and "vog" not in err
    assert f"wrote {prefix}.tsv" in out


def test_stability_writes_table_figure_and_runs_needed(run_gwasm, store, tmp_path):
    prefix = tmp_path / "stab"
    code, out, err = run_gwasm(
        "stability", "mlp", "--store", store, "--scores", "loss,aum", "--repeats", 3,
        "--target-rank-error", 0.001, "--out", prefix,
    )
    assert code == 0, err
    table = read_tsv(prefix.with_suffix(".tsv"))
    assert list(table.columns) == list(STABILITY_COLUMNS)
    assert sorted(set(table["n_runs"])) == [1, 2, 3]
    assert set(table["score"]) == {"loss", "aum"}
    assert_non_blank_png(prefix.with_suffix(".png"))
    lines = [line for line in out.splitlines() if "runs per average" in line]
    assert len(lines) == 2 and all("extrapolated with the 1/sqrt(n) law" in line for line in lines)


def test_correlate_includes_imported_scores_in_mean_to_mean(run_gwasm, store, tmp_path):
    prefix = tmp_path / "corr"
    code, _, err = run_gwasm("correlate", "mlp", "--store", store, "--out", prefix)
    assert code == 0, err
    table = read_tsv(prefix.with_suffix(".tsv"))
    assert list(table.columns) == list(CORRELATION_COLUMNS)
    names = ["loss", "accuracy", "aum", "forgetting", "agreement"]
    assert list(dict.fromkeys(table["score_a"])) == names
    assert len(table) == len(names) ** 2
    loss_accuracy = table[(table["score_a"] == "loss") & (table["score_b"] == "accuracy")].iloc[0]
    # Both are monotonic in the same noisy value of each run, once oriented: identical within a run.
    assert loss_accuracy["run_to_run"] == pytest.approx(1.0)
    assert loss_accuracy["mean_to_mean"] > 0.95
    assert table.loc[table["score_a"] == "agreement", "run_to_run"].isna().all()
    assert_non_blank_png(prefix.with_suffix(".png"))


def test_pca_writes_components_pc1_and_its_stability(run_gwasm, store, tmp_path):
    prefix = tmp_path / "pca"
    code, out, err = run_gwasm("pca", "mlp", "--store", store, "--repeats", 2, "--out", prefix)
    assert code == 0, err
    components = read_tsv(prefix.with_suffix(".tsv"))
    header = ["component", "explained_variance_ratio", "cumulative_ratio", "loss", "accuracy", "aum", "forgetting"]
    assert list(components.columns) == header
    assert components["explained_variance_ratio"].iloc[0] > 0.8
    pc1 = read_tsv(Path(f"{prefix}.pc1.tsv"))
    assert list(pc1.columns) == ["example_id", "label", "pc1"] and len(pc1) == N_EXAMPLES
    stability = read_tsv(Path(f"{prefix}.stability.tsv"))
    assert list(stability.columns) == list(STABILITY_COLUMNS)
    assert_non_blank_png(prefix.with_suffix(".png"))
    assert "PC1 explains" in out


def test_default_prefix_and_other_formats(run_gwasm, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gwasm("variance", "mlp", "--store", store, "--scores", "loss", "--format", "svg")
    assert code == 0, err
    results = tmp_path / "gwasm-results"
    written = {p.name for p in results.iterdir()}
    assert {"toy.mlp.variance.svg", "toy.mlp.variance.tsv"} <= written
    assert not any(name.endswith(".png") for name in written)
    assert (results / "toy.mlp.variance.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("variance", "vgg99"), "vgg99"),
        (("correlate", "mlp", "--scores", "loss,hardness"), "unknown score 'hardness'"),
        (("pca", "mlp", "--scores", "agreement,loss"), "single-run"),
        (("stability", "solo"), "2 runs of solo, which has 1"),
        (("stability", "mlp", "--target-rank-error", "2"), "between 0 and 1"),
        (("variance", "mlp", "--scores", "vog"), "no usable score"),
        (("pca", "mlp", "--format", "bmp"), "bmp"),
    ],
)
def test_bad_input_fails_with_one_line_and_writes_nothing(run_gwasm, store, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "results"
    code, _, err = run_gwasm(*args, "--store", store, "--out", out_dir / "x")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwasm: error:"), err
    assert message in lines[0]
    assert not out_dir.exists() and not (tmp_path / "gwasm-results").exists()


def test_every_command_says_the_same_of_an_architecture_without_runs(run_gwasm, tmp_path):
    """`associate`, `sizes` and the analyses: one message for one situation."""
    from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run

    store = tmp_path / "store"
    write_dataset_info(store, "toy", {"n_examples": 4, "class_names": ["a", "b"], "source": {}})
    for arch in ("resnet20", "vgg11"):
        for seed in range(2):
            values = np.random.default_rng(seed).random(4)
            write_run(store, RunKey("toy", arch, seed), run_table(np.arange(4), np.array([0, 1, 0, 1]), {"loss": values}), {})
    lines = []
    for args in (["associate", "resnet20", "mlp"], ["sizes", "resnet20", "mlp"], ["variance", "mlp"]):
        code, _, err = run_gwasm(*args, "--store", store, "--out", tmp_path / "out" / "x")
        assert code == 2, err
        lines.append(err.strip())
    expected = f"gwasm: error: no runs of 'mlp' for dataset 'toy' in {store}; architectures there: resnet20, vgg11"
    assert lines == [expected] * 3
