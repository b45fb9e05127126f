"""QQ plots: expected v observed −log10 p, the beta-quantile band, λGC in the legend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy import stats
from test_plots_manhattan import simulate_sumstats

from gwas_models.errors import InputError, ResultsError
from gwas_models.plots._style import INFLATION_STRONG_COLOUR, INFLATION_WARNING_COLOUR, NEUTRAL_TEXT_COLOUR
from gwas_models.plots.qq import confidence_band, expected_neg_log10_p, lambda_gc, qq, qq_figsize


def new_axes():
    return Figure(figsize=(5, 5), layout="constrained").add_subplot()


def table_with_lambda(target: float, n: int = 1001, score: str = "loss") -> pd.DataFrame:
    """p-values whose 1-df chi-squared statistics are the null quantiles times ``target``.

    With odd ``n`` and quantiles at (k − 0.5) / n, the median statistic is exactly
    ``target * chi2.ppf(0.5, 1)``, so λGC is exactly ``target``.
    """
    uniform = (np.arange(1, n + 1) - 0.5) / n
    statistic = target * stats.chi2.isf(uniform, 1)
    neg_log10_p = -stats.chi2.logsf(statistic, 1) / np.log(10.0)
    return pd.DataFrame({"SCORE": score, "NEG_LOG10_P": neg_log10_p, "P": 10.0**-neg_log10_p, "ERRCODE": "."})


def curve(ax, score: str) -> np.ndarray:
    return np.asarray(next(c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == f"qq:{score}").get_offsets())


def legend_text(ax, score: str):
    return next(t for t in ax.get_legend().get_texts() if t.get_gid() == f"legend:{score}")


def test_lambda_gc_matches_its_definition():
    table = table_with_lambda(1.37)
    assert lambda_gc(table["NEG_LOG10_P"].to_numpy()) == pytest.approx(1.37, rel=1e-9)
    p = np.random.default_rng(0).uniform(size=2000)
    expected = np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)
    assert lambda_gc(-np.log10(p)) == pytest.approx(expected, rel=1e-9)
    assert np.isnan(lambda_gc(np.array([np.nan])))


def test_band_is_the_beta_order_statistic_quantiles():
    n = 500
    expected, lower, upper = confidence_band(n, 0.95)
    ranks = np.round((n + 1) / 10.0**expected).astype(int)
    np.testing.assert_allclose(expected, -np.log10(ranks / (n + 1)))
    np.testing.assert_allclose(upper, -np.log10(stats.beta.ppf(0.025, ranks, n - ranks + 1)), rtol=1e-10)
    np.testing.assert_allclose(lower, -np.log10(stats.beta.ppf(0.975, ranks, n - ranks + 1)), rtol=1e-10)
    assert {1, n} <= set(ranks.tolist())  # from the smallest p to the largest
    assert np.all(lower <= expected + 1e-12) and np.all(expected <= upper + 1e-12)


def test_plot_draws_the_band_and_the_sorted_points_at_their_expected_values():
    table = simulate_sumstats(scores=("loss",), n_failed=5)
    ax = qq(table, "loss", thin=False, ax=new_axes())
    observed = table[(table["SCORE"] == "loss") & (table["ERRCODE"] == ".")]["NEG_LOG10_P"].to_numpy()
    points = curve(ax, "loss")
    n = len(observed)
    np.testing.assert_allclose(points[:, 0], expected_neg_log10_p(n))
    np.testing.assert_allclose(points[:, 1], np.sort(observed)[::-1])
    band = next(c for c in ax.collections if c.get_gid() == "band")
    vertices = band.get_paths()[0].vertices
    expected, lower, upper = confidence_band(n)
    for x, y in zip(expected, upper):
        assert np.any(np.isclose(vertices[:, 0], x) & np.isclose(vertices[:, 1], y))
    for x, y in zip(expected, lower):
        assert np.any(np.isclose(vertices[:, 0], x) & np.isclose(vertices[:, 1], y))


@pytest.mark.parametrize(
    ("target", "colour"),
    [(1.0, NEUTRAL_TEXT_COLOUR), (1.17, INFLATION_WARNING_COLOUR), (1.5, INFLATION_STRONG_COLOUR)],
)
def test_lambda_is_printed_and_coloured_by_inflation(target, colour):
    ax = qq(table_with_lambda(target), ax=new_axes())
    text = legend_text(ax, "loss")
    assert f"λGC = {target:.3f}" in text.get_text()
    assert to_hex(text.get_color()) == to_hex(colour)
    notes = [t for t in ax.texts if t.get_gid() == "inflation-note"]
    assert bool(notes) == (target > 1.1)


def test_one_curve_per_score_without_the_combined_evidence_unless_asked():
    table = simulate_sumstats(scores=("loss", "aum", "el2n"))
    ax = qq(table, ax=new_axes())
    drawn = {c.get_gid() for c in ax.collections if isinstance(c, PathCollection)}
    assert drawn == {"qq:loss", "qq:aum", "qq:el2n"}
    ax = qq(table, "combined", ax=new_axes())  # the Cauchy combination p: a p-value
    assert {c.get_gid() for c in ax.collections if isinstance(c, PathCollection)} == {"qq:combined"}
    points = curve(ax, "combined")
    combined = table[(table["SCORE"] == "combined") & (table["ERRCODE"] == ".")]["NEG_LOG10_P"].to_numpy()
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(combined))


def test_combined_rows_that_hold_the_mean_of_an_older_table_are_refused():
    """Before MEAN_NEG_LOG10_P, the combined rows' NEG_LOG10_P held the mean -log10 p: a ranking,
    which a QQ plot against uniform p-values would misread."""
    legacy = simulate_sumstats(legacy=True)
    with pytest.raises(InputError, match="a ranking, not p-values"):
        qq(legacy, "combined", ax=new_axes())
    assert {c.get_gid() for c in qq(legacy, ax=new_axes()).collections if isinstance(c, PathCollection)} == {"qq:loss", "qq:aum"}


def test_the_inflation_note_points_to_the_relabelling_null_not_to_a_global_shift():
    ax = qq(table_with_lambda(1.5), ax=new_axes())
    note = next(t for t in ax.texts if t.get_gid() == "inflation-note").get_text()
    assert "relabelling null" in note and "shifts every example" not in note


def test_thinning_a_large_study_keeps_the_tail_and_drops_hidden_points():
    rng = np.random.default_rng(0)
    neg_log10_p = -np.log10(rng.uniform(size=200_000))
    table = pd.DataFrame({"SCORE": "loss", "NEG_LOG10_P": neg_log10_p, "ERRCODE": "."})
    points = curve(qq(table, ax=new_axes()), "loss")
    assert len(points) < 0.2 * len(table)
    top = np.sort(neg_log10_p)[::-1][:1000]
    np.testing.assert_allclose(points[:1000, 1], top)


def test_bad_input_raises_the_library_errors():
    table = simulate_sumstats()
    with pytest.raises(ResultsError, match="NEG_LOG10_P"):
        qq(table.drop(columns="NEG_LOG10_P"), ax=new_axes())
    with pytest.raises(InputError, match="no score 'vog'"):
        qq(table, "vog", ax=new_axes())
    failed = table.assign(ERRCODE="CONST")
    with pytest.raises(InputError, match="no tested examples"):
        qq(failed, "loss", ax=new_axes())


def test_every_curve_has_its_own_colour_and_marker_even_past_ten_scores():
    """Ten colours made the 1st and 11th score (loss, entropy) share one."""
    names = tuple(f"score{i}" for i in range(23))
    table = pd.concat([table_with_lambda(1.0, n=101, score=name) for name in names], ignore_index=True)
    ax = qq(table, ax=Figure(figsize=qq_figsize(len(names)), layout="constrained").add_subplot())
    curves = [c for c in ax.collections if isinstance(c, PathCollection) and str(c.get_gid()).startswith("qq:")]
    styles = {(to_hex(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in curves}
    assert len(curves) == len(styles) == 23
    assert len({to_hex(c.get_facecolor()[0]) for c in curves[:20]}) == 20


def test_the_legend_sits_outside_the_axes_and_carries_the_relabelling_null():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    table = pd.concat([table_with_lambda(1.5, score="loss"), table_with_lambda(1.5, score="entropy")], ignore_index=True)
    figure = Figure(figsize=qq_figsize(2), layout="constrained")
    ax = qq(table, lambda_null={"loss": 1.8}, ax=figure.add_subplot())
    FigureCanvasAgg(figure).draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    loss, entropy = legend_text(ax, "loss"), legend_text(ax, "entropy")
    assert "null 95%: 1.80" in loss.get_text() and "null" not in entropy.get_text()
    # λ within its null is not flagged; without a null the display thresholds apply.
    assert to_hex(loss.get_color()) == to_hex(NEUTRAL_TEXT_COLOUR)
    assert to_hex(entropy.get_color()) == to_hex(INFLATION_STRONG_COLOUR)


def test_a_permutation_table_draws_its_p_and_keeps_lambda_of_welch_s_t():
    """P is EMP1 in a permutation table (what was adjusted is what is drawn); λGC in the legend is
    the association's, of Welch's t, and leaves SEPARATED rows (no t) out."""
    import numpy as np

    from gwas_models.analysis.simulate import simulate_score_matrix
    from gwas_models.analysis.study import associate
    from gwas_models.plots.qq import _curves, lambda_gc

    matrix = simulate_score_matrix(np.random.default_rng(4), 300, {"a": 5, "b": 5})
    matrix.values[:, 0] = np.where(matrix.groups == "a", 0.967, 1.0)  # separated
    comparison = associate(matrix, test="permutation", normalize="none", rng=np.random.default_rng(1)).pairs[0]
    table = comparison.sumstats
    curves, statistics = _curves(table, None)
    np.testing.assert_allclose(np.sort(curves["loss"]), np.sort(-np.log10(table["EMP1"].dropna().to_numpy())), rtol=1e-12)
    assert len(curves["loss"]) == 300 and len(statistics["loss"]) == 299
    assert lambda_gc(statistics["loss"]) == pytest.approx(comparison.scores[0].lambda_gc, rel=1e-9)
