"""The marker selector as a scikit-learn transformer: the estimator contract, and choosing on training runs only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks

from gwas_models.analysis.association import two_sample_test, welch_anova
from gwas_models.analysis.fingerprint import fingerprint_pipeline, quiet_fitting
from gwas_models.analysis.fingerprint_evaluation import ScoreColumns, ScoreSelectingFingerprint, cross_validated_accuracy, run_splits
from gwas_models.analysis.markers import MarkerSelector, fitted_selector
from gwas_models.errors import InputError

# sklearn's pickle check sets 10 of the 60 values of a 30 x 2 matrix to NaN, so every column misses
# a score in some run: no example can be a marker, and refusing is the documented rule.
_NO_CANDIDATE = {"check_estimators_pickle": "NaN in every column leaves no example finite in every run"}


@parametrize_with_checks(
    [MarkerSelector(n_markers=1), MarkerSelector(n_markers=1, selection="random", random_state=0)],
    expected_failed_checks=lambda estimator: _NO_CANDIDATE,
)
def test_scikit_learn_estimator_contract(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [ScoreColumns("a", ("a",)), ScoreSelectingFingerprint(("a",), n_markers=1)],
    expected_failed_checks=lambda estimator: _NO_CANDIDATE if isinstance(estimator, ScoreSelectingFingerprint) else {},
)
def test_score_choice_estimators_keep_the_scikit_learn_contract(estimator, check):
    """The estimators that choose a fingerprint's score inside cross-validation (issue 20)."""
    check(estimator)


def planted(rng: np.random.Generator, n_runs: int = 12, n_examples: int = 300, effect: float = 3.0, k: int = 10):
    """Two groups of ``n_runs`` runs; examples 0, 30, 60, ... (``k`` of them) are ``effect`` sd higher in group 1."""
    values = rng.normal(size=(2 * n_runs, n_examples)) + rng.normal(size=n_examples)  # shared difficulty
    y = np.repeat([0, 1], n_runs)
    markers = np.arange(k) * (n_examples // k)
    values[n_runs:, markers] += effect
    return values, y, markers


# ------------------------------------------------------------------------------------------
# What it selects
# ------------------------------------------------------------------------------------------


def test_top_finds_the_planted_examples_strongest_first():
    values, y, markers = planted(np.random.default_rng(0))
    selector = MarkerSelector(n_markers=len(markers)).fit(values, y)
    assert sorted(selector.markers_.tolist()) == markers.tolist()
    assert np.all(np.diff(selector.neg_log10_p_[selector.markers_]) <= 0)
    np.testing.assert_array_equal(selector.transform(values), values[:, selector.markers_])
    assert selector.evidence_test_ == "welch"


def test_evidence_is_welch_t_for_two_groups_and_welch_anova_for_more():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(12, 50))
    two = MarkerSelector(3).fit(values[:8], np.repeat(["a", "b"], 4))
    np.testing.assert_array_equal(two.neg_log10_p_, two_sample_test(values[:4], values[4:8]).neg_log10_p)
    three = MarkerSelector(3).fit(values, np.repeat(["a", "b", "c"], 4))
    assert three.evidence_test_ == "welch_anova"
    np.testing.assert_array_equal(three.neg_log10_p_, welch_anova([values[:4], values[4:8], values[8:]]).neg_log10_p)


def test_bottom_is_the_weakest_evidence_weakest_first():
    values, y, markers = planted(np.random.default_rng(2))
    selector = MarkerSelector(n_markers=20, selection="bottom").fit(values, y)
    assert not set(selector.markers_.tolist()) & set(markers.tolist())
    strength = selector.neg_log10_p_[selector.markers_]
    assert np.all(np.diff(strength) >= 0) and strength[-1] <= np.sort(selector.neg_log10_p_)[19]


def test_random_draws_reproducibly_among_usable_examples_and_anew_for_other_runs():
    values, y, _ = planted(np.random.default_rng(3), n_examples=40)
    values[0, 5] = np.nan  # example 5 misses a score in one run: never a marker
    draws = [MarkerSelector(6, "random", random_state=seed).fit(values, y).markers_ for seed in range(100)]
    drawn = np.concatenate(draws)
    assert 5 not in drawn and len(np.unique(drawn)) == 39
    assert all(np.all(np.diff(d) > 0) for d in draws)  # increasing column order
    again = MarkerSelector(6, "random", random_state=0).fit(values, y).markers_
    np.testing.assert_array_equal(again, draws[0])
    shuffled = np.random.default_rng(0).permutation(len(y))  # the same runs in another order
    np.testing.assert_array_equal(MarkerSelector(6, "random", random_state=0).fit(values[shuffled], y[shuffled]).markers_, draws[0])
    other_runs = MarkerSelector(6, "random", random_state=0).fit(values[1:], y[1:]).markers_
    assert not np.array_equal(other_runs, draws[0])


def test_transform_and_names_follow_marker_order():
    values, y, _ = planted(np.random.default_rng(4), n_examples=30, k=3)
    selector = MarkerSelector(3).fit(values, y)
    names = np.array([f"ex{i}" for i in range(30)], dtype=object)
    np.testing.assert_array_equal(selector.get_feature_names_out(names), names[selector.markers_])
    assert selector.get_support().sum() == 3 and set(selector.get_support(indices=True)) == set(selector.markers_)
    back = selector.inverse_transform(selector.transform(values))
    np.testing.assert_array_equal(back[:, selector.markers_], values[:, selector.markers_])
    assert (np.delete(back, selector.markers_, axis=1) == 0).all()


@pytest.mark.parametrize(
    ("selector", "parameter", "message"),
    [
        (MarkerSelector(0), "n_markers", "n_markers must be at least 1, got 0"),
        (MarkerSelector(31), "n_markers", "n_markers 31 exceeds the 30 examples"),
        (MarkerSelector(3, "best"), "selection", "selection must be top, bottom or random, got 'best'"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter(selector, parameter, message):
    values, y, _ = planted(np.random.default_rng(5), n_examples=30, k=3)
    with pytest.raises(InputError, match=message) as error:
        selector.fit(values, y)
    assert error.value.parameter == parameter and "--" not in str(error.value)


def test_one_class_is_refused():
    with pytest.raises(InputError, match="1 class"):
        MarkerSelector(1).fit(np.zeros((4, 3)), ["a"] * 4)


# ------------------------------------------------------------------------------------------
# As a scikit-learn estimator inside pipelines and cross-validation
# ------------------------------------------------------------------------------------------


def test_clone_and_parameters_travel_through_the_pipeline():
    selector = MarkerSelector(n_markers=4, selection="bottom", random_state=7)
    assert clone(selector).get_params() == {"n_markers": 4, "selection": "bottom", "random_state": 7}
    pipeline = fingerprint_pipeline(4, "top")
    pipeline.set_params(select__n_markers=2, select__selection="random")
    assert pipeline.named_steps["select"].get_params()["n_markers"] == 2
    values, y, _ = planted(np.random.default_rng(6), n_examples=50, k=5)
    with quiet_fitting():
        fitted = clone(pipeline).fit(values, y)
    assert fitted.named_steps["scale"].n_features_in_ == 2


def test_markers_are_chosen_on_the_training_rows_of_each_split_only():
    """Example 7 differs between the groups only in the held-out runs: a leaky selector would pick it."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=(24, 40))
    y = np.tile([0, 1], 12)
    train, heldout = np.arange(12), np.arange(12, 24)
    values[train[y[train] == 1], 3] += 2.0  # a modest difference visible in the training runs
    values[heldout[y[heldout] == 1], 7] += 50.0  # a huge one only in the held-out runs
    assert MarkerSelector(1).fit(values, y).markers_.tolist() == [7]  # chosen on all runs: the leak
    with quiet_fitting():
        result = cross_validate(fingerprint_pipeline(1, "top"), values, y, cv=[(train, heldout)], return_estimator=True)
    selector = result["estimator"][0].named_steps["select"]
    assert selector.markers_.tolist() == [3]
    np.testing.assert_array_equal(selector.neg_log10_p_, two_sample_test(values[train][y[train] == 0], values[train][y[train] == 1]).neg_log10_p)


def test_every_split_gets_its_own_evidence_and_random_draw():
    values, y, _ = planted(np.random.default_rng(8), n_runs=10, n_examples=60, k=6)
    groups = np.where(y == 0, "A", "B")
    splits = run_splits(groups, ["A", "B"], 0.5, n_splits=4, random_state=0)
    for selection in ("top", "random"):
        result = cross_validate(fingerprint_pipeline(3, selection, 0), values, y, cv=splits, return_estimator=True)
        markers = [tuple(e.named_steps["select"].markers_) for e in result["estimator"]]
        if selection == "random":
            assert len(set(markers)) == len(splits)  # a fresh draw per training set
        for estimator, (train, _) in zip(result["estimator"], splits):
            expected = clone(estimator.named_steps["select"]).fit(values[train], y[train]).markers_
            np.testing.assert_array_equal(estimator.named_steps["select"].markers_, expected)


def test_planted_markers_identify_held_out_runs_and_pure_noise_is_chance():
    rng = np.random.default_rng(9)
    values, y, markers = planted(rng, n_runs=20, n_examples=500, effect=2.5)
    groups = np.where(y == 0, "A", "B")
    splits = run_splits(groups, ["A", "B"], 0.5, n_splits=10, random_state=1)
    with quiet_fitting():
        signal = cross_validated_accuracy(fingerprint_pipeline(8, "top"), values, y, splits)
        noise = cross_validated_accuracy(fingerprint_pipeline(8, "top"), rng.normal(size=values.shape), y, splits)
    assert signal.mean() >= 0.95
    assert abs(noise.mean() - 0.5) <= 0.12


def test_a_rebuilt_selector_selects_what_was_saved():
    selector = fitted_selector(10, np.array([7, 2]), np.array([5.0, 3.0]), "welch")
    values = np.arange(30.0).reshape(3, 10)
    np.testing.assert_array_equal(selector.transform(values), values[:, [7, 2]])
    assert np.isnan(selector.neg_log10_p_[0]) and selector.neg_log10_p_[7] == 5.0
    with pytest.raises(ValueError, match="10 features"):
        selector.transform(values[:, :9])
