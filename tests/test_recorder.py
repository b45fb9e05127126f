"""The streaming ScoreRecorder against the NumPy reference definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gwas_models import scores as S
from gwas_models.errors import InputError
from gwas_models.training.recorder import ScoreRecorder, default_early_epoch, default_vog_epochs

from test_scores import (
    EARLY_EPOCH,
    EPOCH_PROBS,
    HAND,
    PRESENTATION_PROBS,
    TARGETS,
    reference_from_definitions,
)

torch.set_num_threads(1)

OUTPUT_SCORES = tuple(n for n in S.SCORE_NAMES if n not in ("grand", "vog"))


class LookupModel(nn.Module):
    """Returns a fixed table of logits per epoch: input element i (a float id) -> table[epoch, i]."""

    def __init__(self, epoch_logits: np.ndarray) -> None:
        super().__init__()
        self.table = torch.as_tensor(np.asarray(epoch_logits), dtype=torch.float32)
        self.epoch = 0
        self.modes_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes_seen.append(self.training)
        return self.table[self.epoch][x.reshape(len(x), -1)[:, 0].long()]


def ids_as_inputs(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)


def feed(recorder: ScoreRecorder, presentation_logits, epoch_logits, targets, batch_size=2, seed=0, epochs=None):
    """Present every example once per presentation row, in shuffled minibatches; close epochs.

    Presentation row p is fed during epoch p; the epoch-end evaluation of epoch e returns
    epoch_logits[e]. Returns the model used for the evaluations.
    """
    presentation_logits = np.asarray(presentation_logits)
    n_presentations, n = presentation_logits.shape[:2]
    epochs = n_presentations if epochs is None else epochs
    model = LookupModel(epoch_logits).train()
    rng = np.random.default_rng(seed)
    y = torch.as_tensor(targets, dtype=torch.int64)
    for epoch in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            ids = order[start : start + batch_size]
            recorder.observe(
                torch.as_tensor(ids, dtype=torch.int64),
                torch.as_tensor(presentation_logits[epoch, ids], dtype=torch.float32),
                y[ids],
            )
        model.epoch = epoch
        recorder.end_epoch(model)
    return model


def test_recorder_hand_values():
    """Same hand-computed run as test_scores: 4 presentations, but the eval table has 3 epochs.

    The recorder needs as many epochs as presentation rows here, so give the epoch-end table a
    4th epoch equal to the 3rd and compare the presentation scores plus el2n; the epoch scores
    are checked on the 3-epoch table below.
    """
    epochs4 = np.concatenate([EPOCH_PROBS, EPOCH_PROBS[-1:]])
    recorder = ScoreRecorder(ids_as_inputs(3), torch.as_tensor(TARGETS), 3, epochs=4, scores=OUTPUT_SCORES, early_epoch=EARLY_EPOCH)
    feed(recorder, np.log(PRESENTATION_PROBS), np.log(epochs4), TARGETS)
    got = recorder.scores()
    assert set(got) == set(OUTPUT_SCORES)
    for name in ("loss", "accuracy", "aum", "forgetting", "entropy", "el2n"):
        np.testing.assert_allclose(got[name], HAND[name], atol=1e-6, err_msg=name)
    # epoch scores over 4 evaluations: example 0 is T F T T -> consistently learned from epoch 3
    np.testing.assert_allclose(got["consistently_learned"], [3.0, 5.0, 1.0])
    np.testing.assert_allclose(got["confidence"], [(0.6 + 0.4 + 0.7 + 0.7) / 4, 0.3, 0.8], atol=1e-6)
    np.testing.assert_allclose(got["variability"][1:], [0.0, 0.0], atol=1e-6)


def test_recorder_hand_epoch_scores():
    # three epochs of presentations (the first three rows), eval table of three epochs
    recorder = ScoreRecorder(ids_as_inputs(3), torch.as_tensor(TARGETS), 3, epochs=3, scores=OUTPUT_SCORES, early_epoch=EARLY_EPOCH)
    feed(recorder, np.log(PRESENTATION_PROBS[:3]), np.log(EPOCH_PROBS), TARGETS)
    got = recorder.scores()
    for name in ("consistently_learned", "el2n", "confidence", "variability"):
        np.testing.assert_allclose(got[name], HAND[name], atol=1e-6, err_msg=name)
    # never learned over 3 presentations: forgetting = 3
    assert got["forgetting"][1] == 3.0


def _random_run(seed: int, epochs=5, n=40, n_classes=4, scale=3.0):
    rng = np.random.default_rng(seed)
    presentation = rng.normal(0, scale, (epochs, n, n_classes)).astype(np.float32)
    evaluation = rng.normal(0, scale, (epochs, n, n_classes)).astype(np.float32)
    # make some examples always right / never right, so every branch of forgetting is used
    targets = rng.integers(0, n_classes, n)
    k = min(5, n // 4)
    presentation[:, :k, :] = -5.0
    presentation[:, np.arange(k), targets[:k]] = 5.0
    presentation[:, k : 2 * k, :] = 5.0
    presentation[:, np.arange(k, 2 * k), targets[k : 2 * k]] = -5.0
    return presentation, evaluation, targets


@pytest.mark.parametrize("seed,batch_size,eval_batch_size", [(0, 8, 7), (1, 1, 1024), (2, 40, 3)])
def test_recorder_matches_reference_definitions(seed, batch_size, eval_batch_size):
    presentation, evaluation, targets = _random_run(seed)
    recorder = ScoreRecorder(
        ids_as_inputs(len(targets)), torch.as_tensor(targets), 4, epochs=5, scores=OUTPUT_SCORES, early_epoch=2, eval_batch_size=eval_batch_size
    )
    feed(recorder, presentation, evaluation, targets, batch_size=batch_size, seed=seed)
    got = recorder.scores()
    expected = reference_from_definitions(presentation, evaluation, targets, 2)
    for name in OUTPUT_SCORES:
        assert got[name].dtype == np.float64 and got[name].shape == (len(targets),)
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    assert np.all(got["forgetting"][5:10] == 5.0)  # never learned: number of presentations


def test_recorder_matches_scores_from_trajectories():
    presentation, evaluation, targets = _random_run(3)
    recorder = ScoreRecorder(ids_as_inputs(len(targets)), torch.as_tensor(targets), 4, epochs=5, scores=OUTPUT_SCORES, early_epoch=2)
    feed(recorder, presentation, evaluation, targets, batch_size=6)
    got = recorder.scores()
    expected = S.scores_from_trajectories(presentation, evaluation, targets, 2)
    for name in OUTPUT_SCORES:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_recorder_inside_real_training_loop(tiny_digits_npz):
    """Feed the recorder from gwas_models.training.train and check it against the logits it saw."""
    from gwas_models.data import load_npz
    from gwas_models.training.models import build_model
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, train

    data = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    x, y = data.x_train[:96], data.y_train[:96]
    data = DeviceData(x, y, data.x_test[:10], data.y_test[:10], data.n_classes)
    config = TrainConfig(epochs=3, batch_size=32, lr=0.1)
    streams = SeedStreams(0)
    model = build_model("mlp", 10, (1, 8, 8), streams.init)
    recorder = ScoreRecorder(x, y, 10, 3, scores=OUTPUT_SCORES, early_epoch=2, eval_batch_size=50)
    presentation = np.full((3, 96, 10), np.nan, dtype=np.float32)
    evaluation = []
    epoch = {"n": 0}

    class Spy:
        def observe(self, ids, logits, targets):
            presentation[epoch["n"], ids.numpy()] = logits.detach().numpy()
            recorder.observe(ids, logits, targets)

        def end_epoch(self, m):
            recorder.end_epoch(m)
            assert m.training  # mode restored
            m.eval()
            with torch.no_grad():
                evaluation.append(m(x).numpy())
            m.train()
            epoch["n"] += 1

    train(model, data, config, streams, recorder=Spy())
    assert not np.isnan(presentation).any()  # every example presented once per epoch
    got = recorder.scores()
    expected = reference_from_definitions(presentation, np.stack(evaluation), y.numpy(), 2)
    for name in OUTPUT_SCORES:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_end_epoch_evaluates_in_eval_mode_and_restores():
    presentation, evaluation, targets = _random_run(0, epochs=2, n=6)
    recorder = ScoreRecorder(ids_as_inputs(6), torch.as_tensor(targets), 4, epochs=2, scores=("confidence",))
    model = feed(recorder, presentation, evaluation, targets)
    assert model.modes_seen and not any(model.modes_seen)
    assert model.training


def test_presentation_only_needs_no_inputs_and_skips_evaluation():
    presentation, evaluation, targets = _random_run(0, epochs=2, n=6)
    recorder = ScoreRecorder(None, torch.as_tensor(targets), 4, epochs=2, scores=S.MINIBATCH_SCORES)
    model = feed(recorder, presentation, evaluation, targets)
    assert model.modes_seen == []  # no extra forward pass
    assert set(recorder.scores()) == set(S.MINIBATCH_SCORES)


def test_epoch_scores_without_inputs_is_an_error():
    with pytest.raises(InputError, match="inputs"):
        ScoreRecorder(None, torch.zeros(3, dtype=torch.int64), 2, epochs=2, scores=("confidence",))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 4, "early_epoch": 5}, "early epoch"),
        ({"epochs": 4, "early_epoch": 0}, "early epoch"),
        ({"epochs": 4, "vog_checkpoints": 1}, "checkpoints"),
        ({"epochs": 4, "scores": ("loss", "nope")}, "nope"),
    ],
)
def test_recorder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        ScoreRecorder(ids_as_inputs(3), torch.zeros(3, dtype=torch.int64), 2, **kwargs)


def test_never_presented_is_nan_and_unfinished_training_is_nan():
    presentation, evaluation, targets = _random_run(0, epochs=4, n=6)
    recorder = ScoreRecorder(ids_as_inputs(6), torch.as_tensor(targets), 4, epochs=4, scores=OUTPUT_SCORES, early_epoch=3)
    model = LookupModel(evaluation).train()
    # two epochs only, example 5 never presented
    for epoch in range(2):
        ids = torch.arange(5)
        recorder.observe(ids, torch.as_tensor(presentation[epoch, :5]), torch.as_tensor(targets[:5]))
        model.epoch = epoch
        recorder.end_epoch(model)
    got = recorder.scores()
    for name in S.MINIBATCH_SCORES:
        assert np.isnan(got[name][5]) and np.isfinite(got[name][:5]).all(), name
    assert np.isnan(got["consistently_learned"]).all()  # not all epochs reached
    assert np.isnan(got["el2n"]).all()  # early epoch 3 not reached


def test_trajectories_kept():
    presentation, evaluation, targets = _random_run(4, epochs=3, n=8)
    recorder = ScoreRecorder(ids_as_inputs(8), torch.as_tensor(targets), 4, epochs=3, scores=("loss",), keep_trajectories=True)
    feed(recorder, presentation, evaluation, targets)
    traj = recorder.trajectories()
    assert set(traj) == {"loss", "correct", "margin"}
    q = S.output_quantities(evaluation.astype(np.float64), np.broadcast_to(targets, (3, 8)))
    assert traj["loss"].shape == (3, 8)
    np.testing.assert_allclose(traj["loss"], q["loss"], atol=1e-5)
    np.testing.assert_array_equal(traj["correct"], q["correct"].astype(np.float32))
    np.testing.assert_allclose(traj["margin"], q["margin"], atol=1e-6)


def test_trajectories_not_kept_is_an_error():
    recorder = ScoreRecorder(ids_as_inputs(3), torch.zeros(3, dtype=torch.int64), 2, epochs=2, scores=("loss",))
    with pytest.raises(InputError, match="keep_trajectories"):
        recorder.trajectories()


def test_default_epochs():
    assert default_early_epoch(160) == 20
    assert default_early_epoch(1) == 1
    assert default_early_epoch(4) == 1
    assert default_vog_epochs(160, 8) == (20, 40, 60, 80, 100, 120, 140, 160)
    v = default_vog_epochs(30, 8)
    assert len(v) == 8 and v[-1] == 30 and list(v) == sorted(set(v))
    assert default_vog_epochs(3, 8) == (1, 2, 3)


def test_vog_with_a_single_epoch_is_not_a_fake_zero():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(5, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 0, 1])
    recorder = ScoreRecorder(x, y, 3, epochs=1, scores=("vog",))
    assert recorder.vog_epochs == (1,)
    recorder.end_epoch(model)
    # One checkpoint has no variance: the score is missing, not 0.
    assert np.isnan(recorder.scores()["vog"]).all()
