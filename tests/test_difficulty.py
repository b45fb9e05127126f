"""The difficulty analyses (paper §4.1–4.2) on simulated scores with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy.stats import rankdata, spearmanr

from gwas_models.analysis import difficulty
from gwas_models.analysis.difficulty import (
    CORRELATION_COLUMNS,
    RUNS_NEEDED_COLUMNS,
    STABILITY_COLUMNS,
    VARIANCE_COLUMNS,
    SingleRunScore,
    runs_for_rank_error,
    score_correlations,
    score_pca,
    score_stability,
    score_variance,
    screen_scores,
    single_run_score,
    split_rank_change,
    stability_curve,
)
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix
from gwas_models.plots import difficulty as plots


def make_matrix(name: str, values: np.ndarray, higher_is_harder: bool = True, arch: str = "resnet20") -> ScoreMatrix:
    values = np.asarray(values, dtype=np.float64)
    n_runs, n_examples = values.shape
    return ScoreMatrix(
        score=name,
        values=values,
        groups=np.full(n_runs, arch),
        seeds=np.arange(n_runs),
        example_id=np.arange(n_examples),
        labels=np.arange(n_examples) % 2,
        class_names=("a", "b"),
        dataset="toy",
        higher_is_harder=higher_is_harder,
    )


def noisy_difficulty(
    rng: np.random.Generator, n_runs: int, n_examples: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """A latent difficulty per example and runs that observe it with independent noise."""
    latent = rng.normal(size=n_examples)
    return latent, latent + noise * rng.normal(size=(n_runs, n_examples))


# ------------------------------------------------------------------------------------------
# Screening
# ------------------------------------------------------------------------------------------


def test_screen_drops_unrecorded_partial_and_constant_scores():
    rng = np.random.default_rng(0)
    matrices = {
        "loss": make_matrix("loss", rng.normal(size=(3, 10))),
        "vog": make_matrix("vog", np.full((3, 10), np.nan)),
        "grand": make_matrix("grand", np.where(np.eye(3, 10) > 0, np.nan, 1.0) + rng.normal(size=(3, 10))),
        "accuracy": make_matrix("accuracy", np.ones((3, 10)), higher_is_harder=False),
    }
    imported = [SingleRunScore("agr", np.full(10, 2.0)), SingleRunScore("ret", np.arange(10.0))]
    screened = screen_scores(matrices, imported)
    assert list(screened.matrices) == ["loss"]
    assert [score.name for score in screened.imported] == ["ret"]
    assert set(screened.dropped) == {"vog", "grand", "accuracy", "agr"}
    assert "not recorded" in screened.dropped["vog"]
    assert "3 of 30" in screened.dropped["grand"]
    assert "constant" in screened.dropped["accuracy"]
    assert all(note.startswith("score '") for note in screened.notes())


def test_single_run_score_aligns_by_example_id_and_leaves_gaps():
    series = pd.Series([30.0, 10.0, 20.0], index=[3, 1, 2])
    score = single_run_score("agr", series, higher_is_harder=False, example_id=np.array([0, 1, 2, 3]))
    np.testing.assert_array_equal(score.values, [np.nan, 10.0, 20.0, 30.0])
    assert score.sign == -1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 3), min_size=5, max_size=5), min_size=1, max_size=4))
def test_average_ranks_equal_scipy_rankdata_with_ties(rows):
    values = np.asarray(rows, dtype=np.float64) / 2.0
    np.testing.assert_array_equal(difficulty.average_ranks(values), rankdata(values, axis=-1))


# ------------------------------------------------------------------------------------------
# Variance (Figure 2)
# ------------------------------------------------------------------------------------------


def test_variance_band_matches_direct_numpy_computation():
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, size=(7, 103)) * rng.uniform(0.5, 3.0, size=103)
    table = score_variance({"loss": make_matrix("loss", values)}, n_bins=10, interval=0.9)

    assert list(table.columns) == list(VARIANCE_COLUMNS)
    order = np.argsort(values.mean(axis=0), kind="stable")
    for row, members in zip(table.itertuples(), np.array_split(order, 10)):
        pooled = values[:, members].ravel()
        assert row.n_examples == len(members)
        assert row.median == pytest.approx(np.median(pooled))
        assert row.lower == pytest.approx(np.quantile(pooled, 0.05))
        assert row.upper == pytest.approx(np.quantile(pooled, 0.95))
        assert row.mean == pytest.approx(values[:, members].mean())
        assert row.mean_sd == pytest.approx(values[:, members].std(axis=0, ddof=1).mean())
    assert table["first_rank"].iloc[0] == 1 and table["last_rank"].iloc[-1] == 103
    np.testing.assert_array_equal(table["first_rank"].iloc[1:].to_numpy(), table["last_rank"].iloc[:-1].to_numpy() + 1)


def test_variance_orders_a_higher_is_easier_score_from_easiest():
    rng = np.random.default_rng(2)
    _, runs = noisy_difficulty(rng, n_runs=5, n_examples=200, noise=0.1)
    accuracy = make_matrix("accuracy", -runs, higher_is_harder=False)
    table = score_variance({"accuracy": accuracy}, n_bins=4)
    # The easiest bin holds the highest accuracies; values stay in the score's own units.
    assert np.all(np.diff(table["median"].to_numpy()) < 0)
    assert table["median"].iloc[0] > 0 > table["median"].iloc[-1]


def test_variance_caps_bins_at_examples_and_rejects_bad_options():
    matrix = make_matrix("loss", np.arange(12.0).reshape(3, 4))
    assert len(score_variance({"loss": matrix}, n_bins=50)) == 4
    with pytest.raises(InputError, match="bins"):
        score_variance({"loss": matrix}, n_bins=0)
    with pytest.raises(InputError, match="interval"):
        score_variance({"loss": matrix}, interval=1.0)


def test_variance_with_one_run_has_no_sd():
    table = score_variance({"loss": make_matrix("loss", np.arange(6.0)[None, :])}, n_bins=2)
    assert table["mean_sd"].isna().all()
    assert table["lower"].notna().all()


# ------------------------------------------------------------------------------------------
# Stability (Figure 3)
# ------------------------------------------------------------------------------------------


def test_split_rank_change_by_hand():
    values = np.array(
        [
            [1.0, 2.0, 3.0, 4.0],  # ranks 1 2 3 4, harder half: examples 2, 3
            [1.0, 3.0, 2.0, 4.0],  # ranks 1 3 2 4, harder half: examples 1, 3
            [1.0, 3.0, 2.0, 4.0],
        ]
    )
    rng = np.random.default_rng(0)
    rank_change, side_changed = split_rank_change(values, np.array([0]), np.array([1]), rng)
    np.testing.assert_allclose(rank_change, [0.0, 0.25, 0.25, 0.0])
    np.testing.assert_array_equal(side_changed, [False, True, True, False])
    # Averages of sets: run 0 alone against the mean of runs 1 and 2 (the same ordering as run 1).
    rank_change, _ = split_rank_change(values, np.array([[0, 0]]), np.array([[1, 2]]), rng)
    np.testing.assert_allclose(rank_change, [[0.0, 0.25, 0.25, 0.0]])


def test_stability_curve_matches_hand_computation_with_two_runs():
    # With two runs the only split is {0} v {1}, whatever the seed.
    values = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]])
    curve = stability_curve(values, repeats=3, seed=5)
    assert list(curve["n_runs"]) == [1]
    row = curve.iloc[0]
    assert row["rank_change_median"] == pytest.approx(0.125)  # median of 0, 0, .25, .25
    assert row["rank_change_q95"] == pytest.approx(0.25)
    assert row["split_change"] == pytest.approx(0.5)


def test_random_tie_ranks_order_ties_uniformly_and_keep_the_order_of_values():
    rng = np.random.default_rng(0)
    values = np.tile([2.0, 0.0, 1.0, 0.0, 0.0], (4000, 1))
    ranks = difficulty.random_tie_ranks(values, rng)
    np.testing.assert_array_equal(ranks[:, [0, 2]], np.tile([5.0, 4.0], (4000, 1)))  # untied: exact
    tied = ranks[:, [1, 3, 4]]
    assert sorted(np.unique(tied)) == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(tied.mean(axis=0), 2.0, atol=0.05)  # each tied example anywhere in 1..3


def test_stability_of_pure_ties_matches_its_definition():
    """A score that ties every example in every run orders nothing: ranks are random permutations.

    Two independent uniform ranks differ by a median of 1 - 1/sqrt(2) of the dataset (the median of
    |U - V| for U, V uniform on [0, 1]), and an example changes side of a 50% split half the time.
    Average ranks would call the same data perfectly stable (0 and 0).
    """
    values = np.zeros((4, 2000))
    curve = stability_curve(values, repeats=10, seed=1)
    assert curve["rank_change_median"].to_numpy() == pytest.approx(1 - 1 / np.sqrt(2), abs=0.01)
    assert curve["split_change"].to_numpy() == pytest.approx(0.5, abs=0.01)
    assert (curve["tied_fraction"] == 1.0).all()


def test_a_tie_heavy_count_score_is_not_called_stable_from_one_run():
    """A forgetting-like count (most examples 0 in a run) of a real difficulty: fewer side changes and
    smaller rank changes as runs are averaged, and one run does not meet a 5% rank error."""
    rng = np.random.default_rng(7)
    difficulty_of_example = rng.gamma(0.3, 1.0, size=1500)
    counts = rng.poisson(np.tile(difficulty_of_example, (16, 1))).astype(float)
    curve = stability_curve(counts, repeats=8, seed=0)
    assert curve["tied_fraction"].iloc[0] > 0.9
    for column in ("rank_change_median", "split_change"):
        series = curve[column].to_numpy()
        assert np.all(np.diff(series) < 0.01) and series[-1] < series[0]
    matrix = make_matrix("forgetting", counts)
    needed = runs_for_rank_error(score_stability({"forgetting": matrix}, repeats=8, seed=0), 0.05)
    assert int(needed["runs_needed"].iloc[0]) > 1


def test_stability_errors_shrink_as_runs_grow():
    rng = np.random.default_rng(3)
    _, runs = noisy_difficulty(rng, n_runs=16, n_examples=400, noise=1.0)
    curve = stability_curve(runs, repeats=6, seed=0)
    assert list(curve["n_runs"]) == list(range(1, 9))
    for column in ("rank_change_median", "rank_change_q95", "split_change"):
        series = curve[column].to_numpy()
        assert series[-1] < 0.6 * series[0]
        assert np.all(np.diff(series) < 0.01)  # non-increasing up to the noise of the draws
    # Rank change of a noise-dominated score roughly follows 1/sqrt(n).
    ratio = curve["rank_change_median"].iloc[7] / curve["rank_change_median"].iloc[1]
    assert ratio == pytest.approx(0.5, abs=0.12)


def test_stability_is_seeded_and_splits_every_score_alike():
    rng = np.random.default_rng(4)
    _, runs = noisy_difficulty(rng, n_runs=6, n_examples=50, noise=1.0)
    matrices = {"loss": make_matrix("loss", runs), "accuracy": make_matrix("accuracy", -runs, higher_is_harder=False)}
    first = score_stability(matrices, repeats=4, seed=9)
    again = score_stability(matrices, repeats=4, seed=9)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(STABILITY_COLUMNS)
    # The same splits of the same oriented values give the same curve for both scores.
    loss = first[first["score"] == "loss"].drop(columns="score").reset_index(drop=True)
    accuracy = first[first["score"] == "accuracy"].drop(columns="score").reset_index(drop=True)
    pd.testing.assert_frame_equal(loss, accuracy)


def test_stability_needs_two_runs_and_names_the_architecture():
    matrix = make_matrix("loss", np.arange(5.0)[None, :], arch="vgg16")
    with pytest.raises(InputError, match=r"vgg16.*1\b"):
        score_stability({"loss": matrix})


def _curve(medians: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"score": "loss", "n_runs": np.arange(1, len(medians) + 1), "rank_change_median": medians})


def test_runs_for_rank_error_within_the_measured_runs():
    needed = runs_for_rank_error(_curve([0.2, 0.1, 0.05]), target=0.1)
    assert list(needed.columns) == list(RUNS_NEEDED_COLUMNS)
    row = needed.iloc[0]
    assert row["runs_needed"] == 2 and not row["extrapolated"]


def test_runs_for_rank_error_extrapolates_with_inverse_square_root():
    medians = [0.2 / np.sqrt(n) for n in range(1, 5)]
    row = runs_for_rank_error(_curve(medians), target=0.05).iloc[0]
    assert row["extrapolated"] and row["max_measured_runs"] == 4
    assert row["runs_needed"] == 16  # 0.2 / sqrt(16) = 0.05
    with pytest.raises(InputError, match="between 0 and 1"):
        runs_for_rank_error(_curve(medians), target=5.0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=12),
    st.integers(1, 4),
)
def test_identical_run_sets_move_examples_only_within_their_ties(example_values, n_runs):
    example_values = np.asarray(example_values)
    values = np.tile(example_values, (2 * n_runs, 1))
    first, second = np.arange(n_runs), np.arange(n_runs, 2 * n_runs)
    rank_change, _ = split_rank_change(values, first, second, np.random.default_rng(0))
    block_size = (example_values[:, None] == example_values[None, :]).sum(axis=1)
    assert not rank_change[block_size == 1].any()  # an untied example keeps its rank
    assert np.all(rank_change * len(example_values) <= block_size - 1 + 1e-9)  # a tied one stays in its block


# ------------------------------------------------------------------------------------------
# Correlation (Figure 4)
# ------------------------------------------------------------------------------------------


def test_correlate_identical_scores_gives_ones():
    rng = np.random.default_rng(5)
    _, runs = noisy_difficulty(rng, n_runs=5, n_examples=300, noise=0.5)
    result = score_correlations({"loss": make_matrix("loss", runs), "entropy": make_matrix("entropy", runs)})
    np.testing.assert_allclose(result.mean_to_mean.to_numpy(), 1.0)
    np.testing.assert_allclose(result.run_to_run.to_numpy(), 1.0)
    # Mean-to-run is the same number everywhere: corr of a mean with runs of the same score.
    assert np.ptp(result.mean_to_run.to_numpy()) < 1e-12
    np.testing.assert_allclose(np.diag(result.run_to_run_change), 1.0 - np.diag(result.mean_to_run))
    np.testing.assert_allclose(np.diag(result.mean_to_run_change), np.diag(result.mean_to_run) - 1.0)


def test_correlate_independent_scores_gives_near_zero():
    rng = np.random.default_rng(6)
    matrices = {name: make_matrix(name, rng.normal(size=(4, 3000))) for name in ("loss", "vog")}
    result = score_correlations(matrices)
    for frame in (result.mean_to_mean, result.mean_to_run, result.run_to_run):
        assert abs(frame.loc["loss", "vog"]) < 0.06


def test_correlate_orients_a_higher_is_easier_score():
    rng = np.random.default_rng(7)
    _, runs = noisy_difficulty(rng, n_runs=3, n_examples=200, noise=0.3)
    matrices = {"loss": make_matrix("loss", runs), "accuracy": make_matrix("accuracy", -runs, higher_is_harder=False)}
    result = score_correlations(matrices)
    assert result.mean_to_mean.loc["loss", "accuracy"] == pytest.approx(1.0)
    assert result.run_to_run.loc["loss", "accuracy"] == pytest.approx(1.0)


def test_correlate_matches_a_direct_loop_over_runs():
    rng = np.random.default_rng(8)
    latent, first = noisy_difficulty(rng, n_runs=4, n_examples=60, noise=1.0)
    second = np.round(latent + rng.normal(size=(4, 60)))  # ties, as integer scores have
    result = score_correlations({"loss": make_matrix("loss", first), "forgetting": make_matrix("forgetting", second)})

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        return spearmanr(a, b).statistic

    mean_to_mean = rho(first.mean(axis=0), second.mean(axis=0))
    mean_to_run = np.mean([rho(first.mean(axis=0), run) for run in second])
    run_to_run = np.mean([rho(a, b) for a, b in zip(first, second)])
    assert result.mean_to_mean.loc["loss", "forgetting"] == pytest.approx(mean_to_mean)
    assert result.mean_to_run.loc["loss", "forgetting"] == pytest.approx(mean_to_run)
    assert result.run_to_run.loc["loss", "forgetting"] == pytest.approx(run_to_run)
    assert result.mean_to_run_change.loc["loss", "forgetting"] == pytest.approx(mean_to_run - mean_to_mean)
    assert result.run_to_run_change.loc["loss", "forgetting"] == pytest.approx(run_to_run - mean_to_run)


def test_imported_scores_join_mean_to_mean_only_and_use_the_examples_they_cover():
    rng = np.random.default_rng(9)
    latent, runs = noisy_difficulty(rng, n_runs=3, n_examples=100, noise=0.2)
    partial = np.where(np.arange(100) < 70, -latent, np.nan)
    imported = [SingleRunScore("agreement", partial, higher_is_harder=False)]
    result = score_correlations({"loss": make_matrix("loss", runs)}, imported)

    assert list(result.mean_to_mean.index) == ["loss", "agreement"]
    assert list(result.mean_to_run.index) == ["loss"]
    expected = spearmanr(runs.mean(axis=0)[:70], latent[:70]).statistic
    assert result.mean_to_mean.loc["loss", "agreement"] == pytest.approx(expected)
    assert result.mean_to_mean.loc["agreement", "agreement"] == pytest.approx(1.0)

    table = result.table()
    assert list(table.columns) == list(CORRELATION_COLUMNS)
    assert len(table) == 4
    imported_rows = table[(table["score_a"] == "agreement") | (table["score_b"] == "agreement")]
    assert imported_rows["mean_to_mean"].notna().all()
    assert imported_rows[["mean_to_run", "run_to_run", "run_to_run_change"]].isna().all().all()


def test_correlate_refuses_scores_of_different_runs():
    two_runs, three_runs = np.ones((2, 3)) * [1, 2, 3], np.ones((3, 3)) * [1, 2, 3]
    matrices = {"loss": make_matrix("loss", two_runs), "aum": make_matrix("aum", three_runs)}
    with pytest.raises(InputError, match="same runs"):
        score_correlations(matrices)


# ------------------------------------------------------------------------------------------
# Principal components (Figure 5)
# ------------------------------------------------------------------------------------------


def one_factor_scores(rng: np.random.Generator, n_runs: int = 6, n_examples: int = 500) -> tuple[np.ndarray, dict]:
    """Five scores that are monotonic functions of one latent difficulty plus small noise."""
    latent = rng.normal(size=n_examples)
    transforms = {
        "loss": (np.exp, True),
        "accuracy": (lambda z: -np.tanh(z), False),
        "forgetting": (lambda z: np.round(3 * (z + 3)), True),
        "aum": (lambda z: -z, False),
        "el2n": (lambda z: z**3, True),
    }
    matrices = {}
    for name, (transform, higher_is_harder) in transforms.items():
        runs = transform(latent + 0.05 * rng.normal(size=(n_runs, n_examples)))
        matrices[name] = make_matrix(name, runs, higher_is_harder=higher_is_harder)
    return latent, matrices


def test_pca_of_one_latent_factor_puts_over_90_percent_on_pc1():
    rng = np.random.default_rng(10)
    latent, matrices = one_factor_scores(rng)
    result = score_pca(matrices, repeats=3, seed=0)

    assert result.explained_variance_ratio[0] > 0.9
    assert result.explained_variance_ratio.sum() == pytest.approx(1.0)
    # Oriented scores all point towards difficulty, so PC1 weighs them all positively.
    assert (result.loadings["PC1"] > 0).all()
    assert spearmanr(result.pc1, latent).statistic > 0.95
    assert result.pc1_runs.shape == (6, 500)
    assert spearmanr(result.pc1_runs[0], latent).statistic > 0.9

    table = result.components_table()
    assert list(table.columns[:3]) == ["component", "explained_variance_ratio", "cumulative_ratio"]
    assert list(table.columns[3:]) == list(matrices)
    assert table["component"].iloc[0] == "PC1"


def test_pca_orients_pc1_towards_difficulty_whatever_the_score_directions():
    rng = np.random.default_rng(11)
    latent, matrices = one_factor_scores(rng)
    easier = {
        name: make_matrix(name, -matrix.values, higher_is_harder=not matrix.higher_is_harder)
        for name, matrix in matrices.items()
    }
    assert spearmanr(score_pca(easier, repeats=2).pc1, latent).statistic > 0.95


def test_pca_stability_of_pc1_and_its_absence_with_one_run():
    rng = np.random.default_rng(12)
    _, matrices = one_factor_scores(rng, n_runs=6, n_examples=200)
    result = score_pca(matrices, repeats=3, seed=0)
    assert list(result.stability.columns) == list(STABILITY_COLUMNS)
    assert (result.stability["score"] == difficulty.PC1_NAME).all()
    assert list(result.stability["n_runs"]) == [1, 2, 3]

    _, single = one_factor_scores(rng, n_runs=1, n_examples=200)
    alone = score_pca(single)
    assert alone.stability.empty and "2 runs" in alone.notes[0]


def test_pca_needs_two_scores():
    with pytest.raises(InputError, match="at least 2"):
        score_pca({"loss": make_matrix("loss", np.arange(10.0).reshape(2, 5))})


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------


def test_figures_draw_every_panel():
    rng = np.random.default_rng(13)
    _, matrices = one_factor_scores(rng, n_runs=4, n_examples=120)
    variance = plots.plot_variance(score_variance(matrices, n_bins=10))
    assert isinstance(variance, Figure)
    assert sum(ax.get_visible() for ax in variance.axes) == len(matrices)
    stability = plots.plot_stability(score_stability(matrices, repeats=2))
    assert len(stability.axes) == 3 and len(stability.axes[0].lines) == len(matrices)
    correlations = plots.plot_correlations(score_correlations(matrices))
    assert len(correlations.axes) == 6  # three heatmaps and their colour bars
    pca = plots.plot_pca(score_pca(matrices, repeats=2))
    assert len(pca.axes) == 4
    existing = Figure()
    assert plots.plot_stability(score_stability(matrices, repeats=2), fig=existing) is existing


def test_the_stability_figure_says_what_ties_mean_for_a_tie_heavy_score():
    from gwas_models.plots.difficulty import plot_stability, tie_note

    rng = np.random.default_rng(2)
    counts = rng.poisson(np.tile(rng.gamma(0.3, 1.0, size=300), (6, 1))).astype(float)
    smooth = counts + rng.normal(size=counts.shape)
    table = score_stability({"forgetting": make_matrix("forgetting", counts), "loss": make_matrix("loss", smooth)}, repeats=3)
    note = tie_note(table)
    assert note.startswith("Tied examples in one run: forgetting ") and "loss" not in note
    figure = plot_stability(table)
    assert figure.get_supxlabel().replace("\n", " ") == note
    assert tie_note(table[table["score"] == "loss"]) == ""
