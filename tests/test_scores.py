"""Reference score definitions (gwas_models/scores.py) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gwas_models import scores as S
from gwas_models.errors import InputError

# --------------------------------------------------------------------------------------------
# A small synthetic run, 3 examples x 3 classes, whose every score is worked out by hand.
# Logits are log-probabilities, so the softmax gives back exactly these probabilities.
# --------------------------------------------------------------------------------------------

TARGETS = np.array([0, 1, 2])

# presentation p (rows) x example (columns): probability vectors
PRESENTATION_PROBS = np.array(
    [
        [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.2, 0.5, 0.3], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.6, 0.2, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.3, 0.4, 0.3], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
    ]
)
# epoch e (rows) x example (columns)
EPOCH_PROBS = np.array(
    [
        [[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.4, 0.5, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
    ]
)
EARLY_EPOCH = 2


def _entropy(p) -> float:
    return -sum(q * math.log(q) for q in p)


ln = math.log
# Example 0: correct, wrong, correct, wrong -> learned, forgotten twice.
# Example 1: never correct -> forgetting = number of presentations (4).
# Example 2: always correct -> 0 forgetting events.
HAND = {
    "loss": [
        -(ln(0.5) + ln(0.2) + ln(0.6) + ln(0.3)) / 4,
        -ln(0.3),
        -ln(0.8),
    ],
    "accuracy": [0.5, 0.0, 1.0],
    # margins: ex0 .5-.3, .2-.5, .6-.2, .3-.4; ex1 .3-.5; ex2 .8-.1
    "aum": [(0.2 - 0.3 + 0.4 - 0.1) / 4, -0.2, 0.7],
    "forgetting": [2.0, 4.0, 0.0],
    # eval correctness: ex0 T F T (stays correct from epoch 3); ex1 never (3 + 1); ex2 always (1)
    "consistently_learned": [3.0, 4.0, 1.0],
    # epoch 2: ex0 p=[.4,.5,.1] target 0; ex1 [.5,.3,.2] target 1; ex2 [.1,.1,.8] target 2
    "el2n": [math.sqrt(0.36 + 0.25 + 0.01), math.sqrt(0.25 + 0.49 + 0.04), math.sqrt(0.01 + 0.01 + 0.04)],
    "confidence": [(0.6 + 0.4 + 0.7) / 3, 0.3, 0.8],
    "variability": [
        math.sqrt(sum((v - 1.7 / 3) ** 2 for v in (0.6, 0.4, 0.7)) / 3),
        0.0,
        0.0,
    ],
    "entropy": [
        (_entropy([0.5, 0.3, 0.2]) + _entropy([0.2, 0.5, 0.3]) + _entropy([0.6, 0.2, 0.2]) + _entropy([0.3, 0.4, 0.3])) / 4,
        _entropy([0.5, 0.3, 0.2]),
        _entropy([0.1, 0.1, 0.8]),
    ],
}


def reference_from_definitions(presentation_logits, epoch_logits, targets, early_epoch):
    """What scores_from_trajectories is documented to return, composed from the per-step definitions.

    Composed independently of scores.scores_from_trajectories, which the tests check against it.
    """
    presentation_logits = np.asarray(presentation_logits)
    epoch_logits = np.asarray(epoch_logits)
    seen = S.output_quantities(presentation_logits, np.broadcast_to(targets, presentation_logits.shape[:-1]))
    evaluated = S.output_quantities(epoch_logits, np.broadcast_to(targets, epoch_logits.shape[:-1]))
    return {
        "loss": seen["loss"].mean(axis=0),
        "accuracy": seen["correct"].mean(axis=0),
        "aum": seen["margin"].mean(axis=0),
        "forgetting": S.forgetting(seen["correct"]),
        "consistently_learned": S.consistently_learned(evaluated["correct"]),
        "el2n": S.el2n(epoch_logits[early_epoch - 1], targets),
        "confidence": evaluated["p_true"].mean(axis=0),
        "variability": evaluated["p_true"].std(axis=0),
        "entropy": seen["entropy"].mean(axis=0),
    }


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_names_and_directions():
    assert S.SCORE_NAMES == (
        "loss",
        "accuracy",
        "aum",
        "forgetting",
        "consistently_learned",
        "el2n",
        "grand",
        "vog",
        "confidence",
        "variability",
        "entropy",
    )
    easier = {name for name, info in S.SCORES.items() if not info.higher_is_harder}
    assert easier == {"accuracy", "aum", "confidence"}
    assert S.SCORES["loss"].sign == 1 and S.SCORES["aum"].sign == -1
    assert set(S.MINIBATCH_SCORES) == {"loss", "accuracy", "aum", "forgetting", "entropy"}
    assert {S.SCORES[n].kind for n in ("el2n", "grand")} == {"early"}
    assert S.SCORES["vog"].kind == "vog"
    assert {S.SCORES[n].kind for n in ("consistently_learned", "confidence", "variability")} == {"epoch"}


def test_score_info_unknown_lists_valid_names():
    with pytest.raises(InputError) as info:
        S.score_info("memorisation")
    message = str(info.value)
    assert "memorisation" in message
    for name in S.SCORE_NAMES:
        assert name in message


@pytest.mark.parametrize("text", [None, "", "  ", "all"])
def test_parse_score_list_all(text):
    assert S.parse_score_list(text) == S.SCORE_NAMES


def test_parse_score_list_dedups_and_strips():
    assert S.parse_score_list(" loss, aum ,loss,") == ("loss", "aum")
    with pytest.raises(InputError, match="bogus"):
        S.parse_score_list("loss,bogus")


def test_score_sign_makes_higher_harder():
    assert S.score_info("loss").sign == 1 and S.score_info("confidence").sign == -1


# --------------------------------------------------------------------------------------------
# Per-evaluation quantities
# --------------------------------------------------------------------------------------------


def test_output_quantities_hand_values():
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.4, 0.4, 0.2]]))
    q = S.output_quantities(logits, np.array([0, 2, 1]))
    np.testing.assert_allclose(q["loss"], [-ln(0.5), -ln(0.2), -ln(0.4)], atol=1e-12)
    np.testing.assert_array_equal(q["correct"], [True, False, False])  # tie goes to class 0
    np.testing.assert_allclose(q["p_true"], [0.5, 0.2, 0.4], atol=1e-12)
    np.testing.assert_allclose(q["margin"], [0.2, -0.3, 0.0], atol=1e-12)
    h = _entropy([0.5, 0.3, 0.2])
    np.testing.assert_allclose(q["entropy"], [h, h, _entropy([0.4, 0.4, 0.2])], atol=1e-12)


def test_output_quantities_stable_for_huge_logits():
    q = S.output_quantities(np.array([[1000.0, 0.0, -1000.0]]), np.array([0]))
    assert np.isfinite(q["loss"]).all() and q["loss"][0] == pytest.approx(0.0, abs=1e-12)
    assert q["margin"][0] == pytest.approx(1.0)


def test_output_quantities_with_leading_step_axis():
    """Documented shapes: logits (..., n_classes) with targets (...)."""
    logits = np.log(PRESENTATION_PROBS)
    targets = np.broadcast_to(TARGETS, logits.shape[:-1])
    q = S.output_quantities(logits, targets)
    assert q["loss"].shape == (4, 3)
    np.testing.assert_allclose(q["p_true"][:, 0], [0.5, 0.2, 0.6, 0.3], atol=1e-12)


# --------------------------------------------------------------------------------------------
# Trajectory scores
# --------------------------------------------------------------------------------------------


def test_forgetting_hand_values():
    correct = np.array(
        [
            # never, 1010, 1111, 0110, 0101, 1000
            [0, 1, 1, 0, 0, 1],
            [0, 0, 1, 1, 1, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 0, 1, 0, 1, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(S.forgetting(correct), [4.0, 2.0, 0.0, 1.0, 1.0, 1.0])
    assert S.forgetting(correct).dtype == np.float64


def test_forgetting_single_presentation():
    np.testing.assert_array_equal(S.forgetting(np.array([[True, False]])), [0.0, 1.0])


def test_consistently_learned_hand_values():
    correct = np.array(
        [
            # never, always, 0111, 1011, 1110, 0001
            [0, 1, 0, 1, 1, 0],
            [0, 1, 1, 0, 1, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 0, 1],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(S.consistently_learned(correct), [5.0, 1.0, 2.0, 3.0, 5.0, 4.0])


def test_el2n_hand_values():
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    np.testing.assert_allclose(S.el2n(logits, np.array([0, 1])), [math.sqrt(0.38), math.sqrt(0.78)], atol=1e-12)


def test_vog_hand_values():
    grads = np.zeros((3, 2, 1, 1, 2))
    grads[:, 0, 0, 0, 0] = [1, 2, 3]  # variance 2/3
    grads[:, 0, 0, 0, 1] = [0, 0, 0]  # variance 0
    grads[:, 1, 0, 0, 0] = [1, 1, 1]  # variance 0
    grads[:, 1, 0, 0, 1] = [2, -2, 2]  # variance 32/9
    np.testing.assert_allclose(S.vog(grads), [1 / 3, 16 / 9], atol=1e-12)


def test_definitions_compose_to_hand_values():
    """The per-step definitions, put together as documented, give every hand-computed score."""
    got = reference_from_definitions(np.log(PRESENTATION_PROBS), np.log(EPOCH_PROBS), TARGETS, EARLY_EPOCH)
    for name, expected in HAND.items():
        np.testing.assert_allclose(got[name], expected, atol=1e-12, err_msg=name)


def test_scores_from_trajectories_hand_values():
    got = S.scores_from_trajectories(np.log(PRESENTATION_PROBS), np.log(EPOCH_PROBS), TARGETS, EARLY_EPOCH)
    assert set(got) == set(HAND)
    for name, expected in HAND.items():
        np.testing.assert_allclose(got[name], expected, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, database=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 6))))
def test_forgetting_never_learned_ranks_above_any_learned(correct):
    values = S.forgetting(correct)
    n = correct.shape[0]
    learned = correct.any(axis=0)
    assert np.all(values[~learned] == n)
    assert np.all(values[learned] <= n // 2)
    # brute-force count of correct -> incorrect transitions
    for j in np.flatnonzero(learned):
        col = correct[:, j]
        assert values[j] == sum(1 for a, b in zip(col[:-1], col[1:]) if a and not b)


@settings(max_examples=60, deadline=None, database=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 6))))
def test_consistently_learned_bruteforce(correct):
    values = S.consistently_learned(correct)
    n_epochs = correct.shape[0]
    for j in range(correct.shape[1]):
        expected = next(e for e in range(1, n_epochs + 2) if correct[e - 1 :, j].all())
        assert values[j] == expected
    assert np.all((values >= 1) & (values <= n_epochs + 1))


@settings(max_examples=60, deadline=None, database=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(2, 6)), elements=st.floats(-20, 20)),
    st.data(),
)
def test_output_quantities_ranges(logits, data):
    n, c = logits.shape
    targets = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    q = S.output_quantities(logits, targets)
    assert np.all((q["p_true"] >= 0) & (q["p_true"] <= 1))
    assert np.all((q["margin"] >= -1) & (q["margin"] <= 1))
    assert np.all(q["loss"] >= -1e-12)
    assert np.all((q["entropy"] >= -1e-12) & (q["entropy"] <= math.log(c) + 1e-9))
    # correct (argmax) implies a non-negative margin; a positive margin implies correct
    assert np.all(q["margin"][q["correct"]] >= 0)
    assert np.all(q["correct"][q["margin"] > 0])
    e = S.el2n(logits, targets)
    assert np.all((e >= 0) & (e <= math.sqrt(2) + 1e-12))
