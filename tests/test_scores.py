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
# A small synthetic run, 3 examples x 3 classes x 4 epochs, whose every score is worked out by hand.
# Logits are log-probabilities, so the softmax gives back exactly these probabilities. Each example
# is presented once per epoch, so presentation p happens in epoch p.
# --------------------------------------------------------------------------------------------

TARGETS = np.array([0, 1, 2])

# presentation p (rows) x example (columns): training-mode probability vectors
PRESENTATION_PROBS = np.array(
    [
        [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.2, 0.5, 0.3], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.6, 0.2, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.3, 0.4, 0.3], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
    ]
)
# presentation p x example: eval-mode, unaugmented probabilities just before the step
PRESTEP_PROBS = np.array(
    [
        [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.4, 0.3, 0.3]],
        [[0.3, 0.4, 0.3], [0.4, 0.35, 0.25], [0.2, 0.2, 0.6]],
        [[0.6, 0.2, 0.2], [0.5, 0.3, 0.2], [0.5, 0.2, 0.3]],
        [[0.7, 0.2, 0.1], [0.45, 0.35, 0.2], [0.1, 0.1, 0.8]],
    ]
)
# epoch e (rows) x example (columns): eval pass at the epoch end
EPOCH_PROBS = np.array(
    [
        [[0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.4, 0.5, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
        [[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]],
    ]
)
EARLY_EPOCH = 2


def _entropy(p) -> float:
    return -sum(q * math.log(q) for q in p)


ln = math.log
# Eval passes, example 0: p(true) .6 .4 .7 .7, correct T F T T, margins .3 -.1 .5 .5.
# Example 1 is never right (p(true) .3, margin -.2), example 2 always (p(true) .8, margin .7).
HAND_PAPER = {
    "loss": [-(ln(0.6) + ln(0.4) + 2 * ln(0.7)) / 4, -ln(0.3), -ln(0.8)],
    "accuracy": [0.75, 0.0, 1.0],
    "aum": [(0.3 - 0.1 + 0.5 + 0.5) / 4, -0.2, 0.7],
    # pre-step correctness: ex0 T F T T (one event), ex1 never (0: never learned = 0),
    # ex2 F T F T (one event)
    "forgetting": [1.0, 0.0, 1.0],
    # ... and the first presentation from which it stays correct: 3, never (4 + 1), 4
    "consistently_learned": [3.0, 5.0, 4.0],
    # epoch 2: ex0 p=[.4,.5,.1] target 0; ex1 [.5,.3,.2] target 1; ex2 [.1,.1,.8] target 2
    "el2n": [math.sqrt(0.36 + 0.25 + 0.01), math.sqrt(0.25 + 0.49 + 0.04), math.sqrt(0.01 + 0.01 + 0.04)],
    "confidence": [0.6, 0.3, 0.8],
    "variability": [math.sqrt((0.0 + 0.04 + 0.01 + 0.01) / 4), 0.0, 0.0],
    "entropy": [
        (_entropy([0.6, 0.3, 0.1]) + _entropy([0.4, 0.5, 0.1]) + 2 * _entropy([0.7, 0.2, 0.1])) / 4,
        _entropy([0.5, 0.3, 0.2]),
        _entropy([0.1, 0.1, 0.8]),
    ],
}
# Presentations, example 0: correct, wrong, correct, wrong -> learned, forgotten twice.
# Example 1: never correct -> Toneva's forgetting = number of presentations (4).
# Example 2: always correct -> 0 forgetting events.
HAND_VARIANTS = {
    "loss:presentations": [-(ln(0.5) + ln(0.2) + ln(0.6) + ln(0.3)) / 4, -ln(0.3), -ln(0.8)],
    "accuracy:presentations": [0.5, 0.0, 1.0],
    # margins: ex0 .5-.3, .2-.5, .6-.2, .3-.4; ex1 .3-.5; ex2 .8-.1
    "aum:presentations": [(0.2 - 0.3 + 0.4 - 0.1) / 4, -0.2, 0.7],
    # logit margins: log-probability differences
    "aum:pleiss": [(ln(0.5 / 0.3) + ln(0.2 / 0.5) + ln(0.6 / 0.2) + ln(0.3 / 0.4)) / 4, ln(0.3 / 0.5), ln(0.8 / 0.1)],
    "forgetting:toneva": [2.0, 4.0, 0.0],
    # eval correctness: ex0 T F T T (stays correct from epoch 3); ex1 never (4 + 1); ex2 always (1)
    "consistently_learned:epoch": [3.0, 5.0, 1.0],
    "confidence:swayamdipta": [(0.5 + 0.2 + 0.6 + 0.3) / 4, 0.3, 0.8],
    "variability:swayamdipta": [math.sqrt((0.01 + 0.04 + 0.04 + 0.01) / 4), 0.0, 0.0],
    "entropy:presentations": [
        (_entropy([0.5, 0.3, 0.2]) + _entropy([0.2, 0.5, 0.3]) + _entropy([0.6, 0.2, 0.2]) + _entropy([0.3, 0.4, 0.3])) / 4,
        _entropy([0.5, 0.3, 0.2]),
        _entropy([0.1, 0.1, 0.8]),
    ],
}
HAND = {**HAND_PAPER, **HAND_VARIANTS}
OUTPUT_DEFINITIONS = tuple(HAND)


def hand_logits():
    """The hand-computed run's logits: presentations, pre-step evaluations, epoch-end evaluations."""
    return np.log(PRESENTATION_PROBS), np.log(PRESTEP_PROBS), np.log(EPOCH_PROBS)


def reference_from_definitions(presentation_logits, prestep_logits, epoch_logits, targets, early_epoch):
    """What scores_from_trajectories is documented to return, composed from the per-step definitions.

    Composed independently of scores.scores_from_trajectories, which the tests check against it.
    """
    seen = S.output_quantities(np.asarray(presentation_logits), targets)
    before = S.output_quantities(np.asarray(prestep_logits), targets)
    evaluated = S.output_quantities(np.asarray(epoch_logits), targets)
    return {
        "loss": evaluated["loss"].mean(axis=0),
        "accuracy": evaluated["correct"].mean(axis=0),
        "aum": evaluated["margin"].mean(axis=0),
        "forgetting": S.forgetting(before["correct"]),
        "consistently_learned": S.consistently_learned(before["correct"]),
        "el2n": S.el2n(np.asarray(epoch_logits)[early_epoch - 1], targets),
        "confidence": evaluated["p_true"].mean(axis=0),
        "variability": evaluated["p_true"].std(axis=0),
        "entropy": evaluated["entropy"].mean(axis=0),
        "loss:presentations": seen["loss"].mean(axis=0),
        "accuracy:presentations": seen["correct"].mean(axis=0),
        "aum:presentations": seen["margin"].mean(axis=0),
        "aum:pleiss": seen["logit_margin"].mean(axis=0),
        "forgetting:toneva": S.forgetting_toneva(seen["correct"]),
        "consistently_learned:epoch": S.consistently_learned(evaluated["correct"]),
        "confidence:swayamdipta": seen["p_true"].mean(axis=0),
        "variability:swayamdipta": seen["p_true"].std(axis=0),
        "entropy:presentations": seen["entropy"].mean(axis=0),
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
    assert S.PAPER_SCORE_NAMES == S.SCORE_NAMES
    assert S.ALL_SCORE_NAMES[: len(S.SCORE_NAMES)] == S.SCORE_NAMES  # the paper's first
    assert set(S.ALL_SCORE_NAMES) == set(S.SCORE_NAMES) | set(S.VARIANT_NAMES)
    assert set(S.VARIANT_NAMES) == {
        "loss:presentations",
        "accuracy:presentations",
        "aum:presentations",
        "aum:pleiss",
        "forgetting:toneva",
        "consistently_learned:epoch",
        "vog:logit",
        "vog:agarwal",
        "confidence:swayamdipta",
        "variability:swayamdipta",
        "entropy:presentations",
    }
    easier = {name for name, info in S.SCORES.items() if not info.higher_is_harder}
    assert easier == {"accuracy", "aum", "confidence", "accuracy:presentations", "aum:presentations", "aum:pleiss", "confidence:swayamdipta"}
    assert S.SCORES["loss"].sign == 1 and S.SCORES["aum"].sign == -1 and S.SCORES["aum:pleiss"].sign == -1
    assert set(S.MINIBATCH_SCORES) == {n for n in S.VARIANT_NAMES if n.split(":")[1] in ("presentations", "pleiss", "toneva", "swayamdipta")}
    assert {S.SCORES[n].kind for n in ("el2n", "grand")} == {"early"}
    assert {S.SCORES[n].kind for n in ("vog", "vog:logit", "vog:agarwal")} == {"vog"}
    assert {S.SCORES[n].kind for n in ("forgetting", "consistently_learned")} == {"prestep"}
    paper_epoch = ("loss", "accuracy", "aum", "entropy", "confidence", "variability", "consistently_learned:epoch")
    assert {S.SCORES[n].kind for n in paper_epoch} == {"epoch"}


def test_every_variant_refines_a_paper_score_and_every_definition_cites_its_source():
    for name, info in S.SCORES.items():
        assert info.base in S.SCORE_NAMES, name
        assert info.is_default == (info.variant is None) == (name == info.base)
        assert info.description and info.source
        if info.is_default:
            assert "nn_example_difficulty" in info.source, name  # the paper's code
        else:
            assert "nn_example_difficulty" not in info.source, name
            # a variant has the direction of the score it defines
            assert info.higher_is_harder == S.SCORES[info.base].higher_is_harder, name
    assert "Agarwal" in S.SCORES["vog:agarwal"].source and "Pleiss" in S.SCORES["aum:pleiss"].source
    assert "Toneva" in S.SCORES["forgetting:toneva"].source
    assert S.definitions_of("vog") == ("vog", "vog:logit", "vog:agarwal")
    assert S.score_info("vog:agarwal").base == "vog" and S.score_info("vog:agarwal").variant == "agarwal"


def test_every_version_1_column_has_a_definition_name():
    """Stores written before variants: each of their columns is read as a definition of today."""
    old_columns = ("loss", "accuracy", "aum", "forgetting", "consistently_learned", "el2n", "grand", "vog", "confidence", "variability", "entropy")
    assert set(S.LEGACY_COLUMNS) == set(old_columns)
    assert all(S.LEGACY_COLUMNS[c] in S.SCORES and S.SCORES[S.LEGACY_COLUMNS[c]].base == c for c in old_columns)
    assert S.legacy_column_name("vog") == "vog:logit" and S.legacy_column_name("loss") == "loss:presentations"
    assert S.legacy_column_name("example_id") == "example_id"
    # the definitions that changed are renamed; those that did not keep their names
    unchanged = {c for c in old_columns if S.LEGACY_COLUMNS[c] == c}
    assert unchanged == {"el2n", "grand", "confidence", "variability"}


def test_definition_record():
    record = S.definition_record(["loss", "vog:agarwal"])
    assert record["version"] == S.DEFINITIONS_VERSION == 2
    assert record["recorded"] == ["loss", "vog:agarwal"]
    assert record["sources"]["vog:agarwal"] == S.SCORES["vog:agarwal"].source
    with pytest.raises(InputError, match="bogus"):
        S.definition_record(["bogus"])


def test_score_info_unknown_lists_valid_names():
    with pytest.raises(InputError) as info:
        S.score_info("memorisation")
    message = str(info.value)
    assert "memorisation" in message
    for name in S.ALL_SCORE_NAMES:
        assert name in message


@pytest.mark.parametrize("text", [None, "", "  ", "paper", " paper "])
def test_parse_score_list_paper_is_the_default(text):
    assert S.parse_score_list(text) == S.SCORE_NAMES


def test_parse_score_list_all_and_mixed():
    assert S.parse_score_list("all") == S.ALL_SCORE_NAMES
    assert S.parse_score_list("loss,vog:agarwal,forgetting:toneva") == ("loss", "vog:agarwal", "forgetting:toneva")
    assert S.parse_score_list("paper,vog:agarwal") == (*S.SCORE_NAMES, "vog:agarwal")
    assert S.parse_score_list("vog:agarwal,paper,loss") == ("vog:agarwal", *S.SCORE_NAMES)


def test_parse_score_list_dedups_and_strips():
    assert S.parse_score_list(" loss, aum ,loss,") == ("loss", "aum")
    with pytest.raises(InputError, match="bogus"):
        S.parse_score_list("loss,bogus")
    with pytest.raises(InputError, match="vog:nope"):
        S.parse_score_list("vog:nope")


def test_score_sign_makes_higher_harder():
    assert S.score_info("loss").sign == 1 and S.score_info("confidence").sign == -1


@pytest.mark.parametrize(
    "epochs,expected", [(1, 1), (2, 2), (3, 2), (4, 2), (10, 2), (12, 2), (16, 2), (24, 3), (30, 4), (160, 20)]
)
def test_default_early_epoch(epochs, expected):
    assert S.default_early_epoch(epochs) == expected


def test_default_early_epoch_rejects_no_training():
    with pytest.raises(InputError, match="epochs"):
        S.default_early_epoch(0)


def test_default_vog_epochs():
    assert S.default_vog_epochs(5) == (1, 2, 3, 4, 5)  # the paper's code: every epoch end
    assert S.default_vog_epochs(160, 8) == (20, 40, 60, 80, 100, 120, 140, 160)
    v = S.default_vog_epochs(30, 8)
    assert len(v) == 8 and v[-1] == 30 and list(v) == sorted(set(v))
    assert S.default_vog_epochs(3, 8) == (1, 2, 3)


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

FORGETTING_CORRECT = np.array(
    [
        # never, 1010, 1111, 0110, 0101, 1000
        [0, 1, 1, 0, 0, 1],
        [0, 0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 1, 0, 1, 0],
    ],
    dtype=bool,
)


def test_forgetting_hand_values():
    # the paper's code: the never learned have no event
    np.testing.assert_array_equal(S.forgetting(FORGETTING_CORRECT), [0.0, 2.0, 0.0, 1.0, 1.0, 1.0])
    assert S.forgetting(FORGETTING_CORRECT).dtype == np.float64


def test_forgetting_toneva_hand_values():
    np.testing.assert_array_equal(S.forgetting_toneva(FORGETTING_CORRECT), [4.0, 2.0, 0.0, 1.0, 1.0, 1.0])
    assert S.forgetting_toneva(FORGETTING_CORRECT).dtype == np.float64


def test_forgetting_single_presentation():
    np.testing.assert_array_equal(S.forgetting(np.array([[True, False]])), [0.0, 0.0])
    np.testing.assert_array_equal(S.forgetting_toneva(np.array([[True, False]])), [0.0, 1.0])


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


def test_vog_paper_hand_values():
    """Probability gradients of 2 channels: channels averaged, then a sample variance over checkpoints."""
    grads = np.zeros((3, 2, 2, 1, 2))  # 3 checkpoints, 2 examples, 2 channels, 1 x 2 pixels
    grads[:, 0, 0, 0, 0] = [1, 2, 3]
    grads[:, 0, 1, 0, 0] = [3, 2, 1]  # channel mean 2, 2, 2: variance 0
    grads[:, 0, 0, 0, 1] = [2, 4, 6]
    grads[:, 0, 1, 0, 1] = [0, 0, 0]  # channel mean 1, 2, 3: sample variance 1
    grads[:, 1, :, 0, 0] = [[1, 1], [1, 1], [1, 1]]  # variance 0
    grads[:, 1, 0, 0, 1] = [2, -2, 2]
    grads[:, 1, 1, 0, 1] = [2, -2, 2]  # channel mean 2, -2, 2: mean 2/3, sample variance 16/3
    np.testing.assert_allclose(S.vog(grads), [0.5, 8 / 3], atol=1e-12)
    assert np.isnan(S.vog(grads[:1])).all()  # no variance over one checkpoint


def test_vog_logit_hand_values():
    grads = np.zeros((3, 2, 1, 1, 2))
    grads[:, 0, 0, 0, 0] = [1, 2, 3]  # variance 2/3
    grads[:, 0, 0, 0, 1] = [0, 0, 0]  # variance 0
    grads[:, 1, 0, 0, 0] = [1, 1, 1]  # variance 0
    grads[:, 1, 0, 0, 1] = [2, -2, 2]  # variance 32/9
    np.testing.assert_allclose(S.vog_logit(grads), [1 / 3, 16 / 9], atol=1e-12)


def test_vog_logit_keeps_channels_apart():
    grads = np.zeros((2, 1, 2, 1, 1))
    grads[:, 0, 0, 0, 0] = [1, -1]
    grads[:, 0, 1, 0, 0] = [-1, 1]  # the channel mean would be constant
    np.testing.assert_allclose(S.vog_logit(grads), [1.0], atol=1e-12)
    np.testing.assert_allclose(S.vog(grads), [0.0], atol=1e-12)


def test_class_normalise_hand_values():
    values = np.array([1.0, 3.0, 5.0, 2.0, 2.0, 7.0, np.nan, 4.0])
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    got = S.class_normalise(values, labels)
    std = math.sqrt(8 / 3)  # class 0: mean 3, population std sqrt(8/3)
    np.testing.assert_allclose(got[:3], [-2 / std, 0.0, 2 / std], atol=1e-12)
    np.testing.assert_array_equal(got[3:6], [0.0, 0.0, 0.0])  # no spread (or one example): 0
    assert np.isnan(got[6]) and got[7] == 0.0  # NaN stays NaN and is left out of its class


def test_vog_agarwal_hand_values():
    """Channel-averaged logit gradients, population std per pixel, mean over pixels, class-normalised."""
    grads = np.zeros((2, 4, 1, 1, 2))  # 2 checkpoints, 4 examples, 1 channel, 2 pixels
    grads[:, 0, 0, 0, 0] = [0, 2]  # std 1
    grads[:, 0, 0, 0, 1] = [0, 0]  # std 0 -> vog 0.5
    grads[:, 1, 0, 0, :] = [[0, 0], [4, 4]]  # std 2, 2 -> vog 2
    grads[:, 2, 0, 0, :] = [[1, 1], [1, 1]]  # vog 0
    grads[:, 3, 0, 0, :] = [[0, 0], [6, 2]]  # std 3, 1 -> vog 2
    labels = np.array([0, 0, 1, 1])
    # class 0: 0.5 and 2 -> mean 1.25, std 0.75; class 1: 0 and 2 -> mean 1, std 1
    np.testing.assert_allclose(S.vog_agarwal(grads, labels), [-1.0, 1.0, -1.0, 1.0], atol=1e-12)


def test_vog_rejects_a_gradient_without_examples_axis():
    with pytest.raises(InputError, match="input_gradients"):
        S.vog(np.zeros((3, 4)))


def test_definitions_compose_to_hand_values():
    """The per-step definitions, put together as documented, give every hand-computed score."""
    got = reference_from_definitions(*hand_logits(), TARGETS, EARLY_EPOCH)
    for name, expected in HAND.items():
        np.testing.assert_allclose(got[name], expected, atol=1e-12, err_msg=name)


def test_scores_from_trajectories_hand_values():
    got = S.scores_from_trajectories(*hand_logits(), TARGETS, EARLY_EPOCH)
    assert set(got) == set(HAND) == set(S.ALL_SCORE_NAMES) - {"grand", "vog", "vog:logit", "vog:agarwal"}
    for name, expected in HAND.items():
        np.testing.assert_allclose(got[name], expected, atol=1e-12, err_msg=name)


def test_output_quantities_logit_margin():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    q = S.output_quantities(logits, np.array([0, 2]))
    np.testing.assert_allclose(q["logit_margin"], [1.5, -2.0], atol=1e-12)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, database=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 6))))
def test_forgetting_never_learned_ranks_above_any_learned(correct):
    values = S.forgetting_toneva(correct)
    n = correct.shape[0]
    learned = correct.any(axis=0)
    assert np.all(values[~learned] == n)
    assert np.all(values[learned] <= n // 2)
    # brute-force count of correct -> incorrect transitions
    for j in np.flatnonzero(learned):
        col = correct[:, j]
        assert values[j] == sum(1 for a, b in zip(col[:-1], col[1:]) if a and not b)
    # the paper's code counts the same events and gives the never learned none
    np.testing.assert_array_equal(S.forgetting(correct), np.where(learned, values, 0.0))


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
