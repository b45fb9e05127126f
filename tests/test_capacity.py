"""`gwasm sizes`: association evidence per pair of architectures against their size ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_models.analysis.capacity import capacity_row, capacity_table, pair_mean_evidence, size_effect_correlation
from gwas_models.analysis.study import associate
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.matrix import ScoreMatrix

# Architectures whose shift of the first 50 examples grows with their size.
ARCHS = {"small": (1_000, 0.0), "mid": (4_000, 0.4), "big": (64_000, 1.2), "huge": (256_000, 2.0)}


def _store(root: Path, n_examples: int = 300, n_runs: int = 6) -> Path:
    rng = np.random.default_rng(1)
    store = root / "store"
    write_dataset_info(store, "toy", {"n_examples": n_examples, "class_names": ["a", "b", "c"], "source": {}})
    base = rng.normal(size=n_examples)
    for arch, (n_params, shift) in ARCHS.items():
        for seed in range(n_runs):
            aum = base + shift * (np.arange(n_examples) < 50) + rng.normal(scale=0.5, size=n_examples)
            table = run_table(np.arange(n_examples), np.arange(n_examples) % 3, {"aum": aum, "loss": -aum + rng.normal(size=n_examples)})
            write_run(store, RunKey("toy", arch, seed), table, {"test_accuracy": 0.9, "n_parameters": n_params})
    return store


def test_pair_mean_evidence_ignores_combined_rows_and_untested_examples():
    sumstats = pd.DataFrame(
        {
            "SCORE": ["aum", "aum", "loss", "loss", "combined"],
            "NEG_LOG10_P": [1.0, 3.0, 2.0, np.nan, 100.0],
            "ERRCODE": [".", ".", ".", "CONST", "."],
        }
    )
    assert pair_mean_evidence(sumstats) == (2.0, 3)


def test_evidence_grows_with_planted_size_effect():
    rng = np.random.default_rng(0)
    n_examples, n_runs = 400, 8
    values, groups = [], []
    for arch, (_, shift) in ARCHS.items():
        values.append(rng.normal(size=(n_runs, n_examples)) + shift * (np.arange(n_examples) < 80))
        groups += [arch] * n_runs
    matrix = ScoreMatrix("aum", np.vstack(values), np.array(groups), np.tile(np.arange(n_runs), len(ARCHS)), np.arange(n_examples), np.zeros(n_examples, int), ("x",))
    rows = []
    associate({"aum": matrix}, list(ARCHS), on_comparison=lambda _, c: rows.append(capacity_row(c, {a: p for a, (p, _) in ARCHS.items()})) if c.kind == "pair" else None)
    table = capacity_table(rows)
    assert len(table) == 6
    assert (table["SIZE_RATIO"] >= 1).all()
    huge_small = table[(table["A"] == "small") & (table["B"] == "huge")].iloc[0]
    assert huge_small["SIZE_RATIO"] == 256
    assert huge_small["N_TESTS"] == n_examples
    rho, _ = size_effect_correlation(table)
    assert rho > 0.7


def test_correlation_needs_three_pairs():
    table = pd.DataFrame({"SIZE_RATIO": [2.0, 4.0], "MEAN_NEG_LOG10_P": [0.3, 0.5]})
    assert all(np.isnan(size_effect_correlation(table)))


def test_sizes_cli_writes_table_and_figure(run_gwasm, tmp_path):
    store = _store(tmp_path)
    code, out, err = run_gwasm("sizes", "--store", store, "--out", tmp_path / "res" / "toy.sizes")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "res" / "toy.sizes.tsv", sep="\t")
    assert len(table) == 6 and set(table["A"]) | set(table["B"]) == set(ARCHS)
    assert table.sort_values("SIZE_RATIO")["SIZE_RATIO"].iloc[-1] == 256
    assert (tmp_path / "res" / "toy.sizes.png").stat().st_size > 5_000
    assert "Spearman" in out


@pytest.mark.parametrize(
    "args",
    [("small",), ("small", "nosuch"), ("--scores", "nosuch"), ("--format", "bmp")],
)
def test_sizes_cli_bad_input(run_gwasm, tmp_path, args):
    store = _store(tmp_path, n_examples=60, n_runs=2)
    code, _, err = run_gwasm("sizes", *args, "--store", store, "--out", tmp_path / "res" / "x")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwasm: error:")
    assert not (tmp_path / "res").exists()


def test_size_effect_p_is_exact_for_few_pairs():
    """Every ordering of 3 pairs has |ρ| >= 0.5, so ρ = 0.5 has p = 1 (the t approximation says 0.67);
    4 pairs in perfect order: 2 of the 24 pairings reach |ρ| = 1, p = 1/12."""
    three = pd.DataFrame({"SIZE_RATIO": [1.5, 3.0, 10.0], "MEAN_NEG_LOG10_P": [1.0, 3.0, 2.0]})
    assert size_effect_correlation(three) == pytest.approx((0.5, 1.0))
    four = pd.DataFrame({"SIZE_RATIO": [1.5, 3.0, 10.0, 20.0], "MEAN_NEG_LOG10_P": [1.0, 2.0, 3.0, 4.0]})
    assert size_effect_correlation(four) == pytest.approx((1.0, 1 / 12))


def test_the_sizes_figure_gives_the_p_value_next_to_rho():
    from gwas_models.plots.capacity import capacity_scatter

    table = pd.DataFrame(
        {"A": ["a", "a", "b"], "B": ["b", "c", "c"], "SIZE_RATIO": [1.5, 3.0, 10.0], "MEAN_NEG_LOG10_P": [1.0, 3.0, 2.0]}
    )
    ax = capacity_scatter(table)
    assert "Spearman ρ = 0.50, p = 1 over 3 pairs" in ax.get_title()


def test_exact_size_effect_p_equals_scipys_permutation_test():
    from scipy import stats

    rng = np.random.default_rng(5)
    table = pd.DataFrame({"SIZE_RATIO": rng.uniform(1, 50, 5), "MEAN_NEG_LOG10_P": rng.uniform(0, 3, 5)})
    rho, p = size_effect_correlation(table)
    reference = stats.permutation_test(
        (np.log(table["SIZE_RATIO"]), table["MEAN_NEG_LOG10_P"]),
        lambda a, b: stats.spearmanr(a, b).statistic,
        permutation_type="pairings",
        n_resamples=np.inf,
    )
    assert rho == pytest.approx(reference.statistic) and p == pytest.approx(reference.pvalue)
