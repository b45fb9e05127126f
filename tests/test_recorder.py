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
    HAND,
    OUTPUT_DEFINITIONS,
    TARGETS,
    hand_logits,
    reference_from_definitions,
)

torch.set_num_threads(1)

OUTPUT_SCORES = OUTPUT_DEFINITIONS  # every definition but grand and the VoGs


class LookupModel(nn.Module):
    """Returns fixed tables of logits: input element i (a float id) -> table[epoch, i].

    ``phase`` says which table: ``"prestep"`` (the evaluations before each step of epoch ``epoch``)
    or ``"epoch"`` (the evaluation at the end of epoch ``epoch``).
    """

    def __init__(self, epoch_logits: np.ndarray, prestep_logits: np.ndarray | None = None) -> None:
        super().__init__()
        self.tables = {"epoch": torch.as_tensor(np.asarray(epoch_logits), dtype=torch.float32)}
        if prestep_logits is not None:
            self.tables["prestep"] = torch.as_tensor(np.asarray(prestep_logits), dtype=torch.float32)
        self.epoch = 0
        self.phase = "epoch"
        self.modes_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes_seen.append(self.training)
        return self.tables[self.phase][self.epoch][x.reshape(len(x), -1)[:, 0].long()]


def ids_as_inputs(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)


def feed(recorder, presentation_logits, prestep_logits, epoch_logits, targets, batch_size=2, seed=0, epochs=None):
    """Present every example once per epoch, in shuffled minibatches; close epochs.

    In epoch e, each minibatch is first evaluated before its step (``prestep_logits[e]``), then
    observed with ``presentation_logits[e]``; the epoch-end evaluation returns ``epoch_logits[e]``.
    Returns the model used for the evaluations.
    """
    presentation_logits = np.asarray(presentation_logits)
    n_presentations, n = presentation_logits.shape[:2]
    epochs = n_presentations if epochs is None else epochs
    model = LookupModel(epoch_logits, prestep_logits).train()
    rng = np.random.default_rng(seed)
    y = torch.as_tensor(targets, dtype=torch.int64)
    for epoch in range(epochs):
        model.epoch = epoch
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            ids = torch.as_tensor(order[start : start + batch_size], dtype=torch.int64)
            model.phase = "prestep"
            recorder.before_step(model, ids)
            recorder.observe(ids, torch.as_tensor(presentation_logits[epoch, ids.numpy()], dtype=torch.float32), y[ids])
        model.phase = "epoch"
        recorder.end_epoch(model)
    return model


def test_recorder_hand_values():
    """The hand-computed run of test_scores: 4 epochs, every output-based definition."""
    recorder = ScoreRecorder(ids_as_inputs(3), torch.as_tensor(TARGETS), 3, epochs=4, scores=OUTPUT_SCORES, early_epoch=EARLY_EPOCH)
    feed(recorder, *hand_logits(), TARGETS)
    got = recorder.scores()
    assert set(got) == set(OUTPUT_SCORES) == set(HAND)
    for name in OUTPUT_SCORES:
        np.testing.assert_allclose(got[name], HAND[name], atol=1e-6, err_msg=name)


def test_recorder_hand_values_in_one_minibatch_per_epoch():
    recorder = ScoreRecorder(ids_as_inputs(3), torch.as_tensor(TARGETS), 3, epochs=4, scores=OUTPUT_SCORES, early_epoch=EARLY_EPOCH)
    feed(recorder, *hand_logits(), TARGETS, batch_size=3)
    got = recorder.scores()
    for name in OUTPUT_SCORES:
        np.testing.assert_allclose(got[name], HAND[name], atol=1e-6, err_msg=name)


def _random_run(seed: int, epochs=5, n=40, n_classes=4, scale=3.0):
    rng = np.random.default_rng(seed)
    presentation = rng.normal(0, scale, (epochs, n, n_classes)).astype(np.float32)
    prestep = rng.normal(0, scale, (epochs, n, n_classes)).astype(np.float32)
    evaluation = rng.normal(0, scale, (epochs, n, n_classes)).astype(np.float32)
    # make some examples always right / never right, so every branch of forgetting is used
    targets = rng.integers(0, n_classes, n)
    k = min(5, n // 4)
    for logits in (presentation, prestep):
        logits[:, :k, :] = -5.0
        logits[:, np.arange(k), targets[:k]] = 5.0
        logits[:, k : 2 * k, :] = 5.0
        logits[:, np.arange(k, 2 * k), targets[k : 2 * k]] = -5.0
    return presentation, prestep, evaluation, targets


@pytest.mark.parametrize("seed,batch_size,eval_batch_size", [(0, 8, 7), (1, 1, 1024), (2, 40, 3)])
def test_recorder_matches_reference_definitions(seed, batch_size, eval_batch_size):
    presentation, prestep, evaluation, targets = _random_run(seed)
    recorder = ScoreRecorder(
        ids_as_inputs(len(targets)), torch.as_tensor(targets), 4, epochs=5, scores=OUTPUT_SCORES, early_epoch=2, eval_batch_size=eval_batch_size
    )
    feed(recorder, presentation, prestep, evaluation, targets, batch_size=batch_size, seed=seed)
    got = recorder.scores()
    expected = reference_from_definitions(presentation, prestep, evaluation, targets, 2)
    for name in OUTPUT_SCORES:
        assert got[name].dtype == np.float64 and got[name].shape == (len(targets),)
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    assert np.all(got["forgetting:toneva"][5:10] == 5.0)  # never learned: number of presentations
    assert np.all(got["forgetting"][5:10] == 0.0)  # the paper's code: never learned = 0
    assert np.all(got["consistently_learned"][5:10] == 6.0) and np.all(got["consistently_learned"][:5] == 1.0)


def test_recorder_matches_scores_from_trajectories():
    presentation, prestep, evaluation, targets = _random_run(3)
    recorder = ScoreRecorder(ids_as_inputs(len(targets)), torch.as_tensor(targets), 4, epochs=5, scores=OUTPUT_SCORES, early_epoch=2)
    feed(recorder, presentation, prestep, evaluation, targets, batch_size=6)
    got = recorder.scores()
    expected = S.scores_from_trajectories(presentation, prestep, evaluation, targets, 2)
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
    model = build_model("resnet20", 10, (1, 8, 8), streams.init)  # batch norm: eval and train modes differ
    recorder = ScoreRecorder(x, y, 10, 3, scores=OUTPUT_SCORES, early_epoch=2, eval_batch_size=50)
    presentation = np.full((3, 96, 10), np.nan, dtype=np.float32)
    prestep = np.full((3, 96, 10), np.nan, dtype=np.float32)
    evaluation = []
    epoch = {"n": 0}

    class Spy:
        needs_pre_step = True

        def before_step(self, m, ids):
            assert m.training
            m.eval()
            with torch.no_grad():  # the spy's own eval-mode, unaugmented pass before the step
                prestep[epoch["n"], ids.numpy()] = m(x[ids]).numpy()
            m.train()
            recorder.before_step(m, ids)
            assert m.training  # mode restored

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
    assert not np.isnan(presentation).any() and not np.isnan(prestep).any()  # every example once per epoch
    assert not np.allclose(prestep, presentation)  # eval mode, unaugmented: another prediction
    got = recorder.scores()
    expected = reference_from_definitions(presentation, prestep, np.stack(evaluation), y.numpy(), 2)
    for name in OUTPUT_SCORES:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_training_without_a_pre_step_recorder_calls_no_hook_and_recording_changes_nothing(tiny_digits_npz):
    """The pre-step pass only evaluates: the run trains exactly as without it."""
    from gwas_models.data import load_npz
    from gwas_models.training.models import build_model
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, train

    data = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    data = DeviceData(data.x_train[:64], data.y_train[:64], data.x_test[:8], data.y_test[:8], data.n_classes)
    config = TrainConfig(epochs=2, batch_size=16)
    params = []
    for scores in (S.MINIBATCH_SCORES, ("forgetting",)):
        streams = SeedStreams(5)
        model = build_model("resnet20", 10, (1, 8, 8), streams.init)
        recorder = ScoreRecorder(data.x_train, data.y_train, 10, 2, scores=scores)
        calls = []
        recorder.before_step = lambda m, ids, real=recorder.before_step: calls.append(len(ids)) or real(m, ids)
        train(model, data, config, streams, recorder=recorder)
        assert calls == ([] if scores == S.MINIBATCH_SCORES else [16] * 8)
        params.append(torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()]))
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


@pytest.mark.parametrize("scores", [("confidence",), ("forgetting",), ("loss", "consistently_learned")])
def test_evaluations_run_in_eval_mode_and_restore(scores):
    presentation, prestep, evaluation, targets = _random_run(0, epochs=2, n=6)
    recorder = ScoreRecorder(ids_as_inputs(6), torch.as_tensor(targets), 4, epochs=2, scores=scores)
    model = feed(recorder, presentation, prestep, evaluation, targets)
    assert model.modes_seen and not any(model.modes_seen)
    assert model.training


def test_presentation_only_needs_no_inputs_and_skips_evaluation():
    presentation, prestep, evaluation, targets = _random_run(0, epochs=2, n=6)
    recorder = ScoreRecorder(None, torch.as_tensor(targets), 4, epochs=2, scores=S.MINIBATCH_SCORES)
    assert not recorder.needs_pre_step
    model = feed(recorder, presentation, prestep, evaluation, targets)
    assert model.modes_seen == []  # no extra forward pass, before the steps or at the epoch ends
    assert set(recorder.scores()) == set(S.MINIBATCH_SCORES)


def test_only_the_pre_step_definitions_need_the_pre_step_pass():
    needing = {name for name in S.ALL_SCORE_NAMES if ScoreRecorder(ids_as_inputs(2), torch.zeros(2, dtype=torch.int64), 2, 2, scores=(name,)).needs_pre_step}
    assert needing == {"forgetting", "consistently_learned"}


def test_pre_step_scores_are_nan_when_the_loop_never_calls_before_step():
    presentation, prestep, evaluation, targets = _random_run(0, epochs=2, n=6)
    recorder = ScoreRecorder(ids_as_inputs(6), torch.as_tensor(targets), 4, epochs=2, scores=("forgetting", "consistently_learned", "loss"))
    model = LookupModel(evaluation).train()
    for epoch in range(2):
        recorder.observe(torch.arange(6), torch.as_tensor(presentation[epoch]), torch.as_tensor(targets))
        model.epoch = epoch
        recorder.end_epoch(model)
    got = recorder.scores()
    assert np.isnan(got["forgetting"]).all() and np.isnan(got["consistently_learned"]).all()
    assert np.isfinite(got["loss"]).all()


@pytest.mark.parametrize("scores", [("confidence",), ("forgetting",), ("loss",)])
def test_epoch_and_pre_step_scores_without_inputs_is_an_error(scores):
    with pytest.raises(InputError, match="inputs"):
        ScoreRecorder(None, torch.zeros(3, dtype=torch.int64), 2, epochs=2, scores=scores)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 4, "early_epoch": 5}, "early epoch"),
        ({"epochs": 4, "early_epoch": 0}, "early epoch"),
        ({"epochs": 4, "vog_checkpoints": 1}, "checkpoints"),
        ({"epochs": 4, "scores": ("vog:nope",)}, "vog:nope"),
        ({"epochs": 4, "scores": ("loss", "nope")}, "nope"),
    ],
)
def test_recorder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        ScoreRecorder(ids_as_inputs(3), torch.zeros(3, dtype=torch.int64), 2, **kwargs)


def test_never_presented_is_nan_and_unfinished_training_is_nan():
    presentation, prestep, evaluation, targets = _random_run(0, epochs=4, n=6)
    recorder = ScoreRecorder(ids_as_inputs(6), torch.as_tensor(targets), 4, epochs=4, scores=OUTPUT_SCORES, early_epoch=3)
    model = LookupModel(evaluation, prestep).train()
    # two epochs only, example 5 never presented
    for epoch in range(2):
        ids = torch.arange(5)
        model.epoch, model.phase = epoch, "prestep"
        recorder.before_step(model, ids)
        recorder.observe(ids, torch.as_tensor(presentation[epoch, :5]), torch.as_tensor(targets[:5]))
        model.phase = "epoch"
        recorder.end_epoch(model)
    got = recorder.scores()
    for name in (*S.MINIBATCH_SCORES, "forgetting", "consistently_learned"):
        assert np.isnan(got[name][5]) and np.isfinite(got[name][:5]).all(), name
    for name in ("loss", "accuracy", "aum", "entropy", "confidence", "variability", "consistently_learned:epoch"):
        assert np.isnan(got[name]).all(), name  # not all epochs reached
    assert np.isnan(got["el2n"]).all()  # early epoch 3 not reached


def test_trajectories_kept():
    presentation, prestep, evaluation, targets = _random_run(4, epochs=3, n=8)
    recorder = ScoreRecorder(ids_as_inputs(8), torch.as_tensor(targets), 4, epochs=3, scores=("loss:presentations",), keep_trajectories=True)
    feed(recorder, presentation, prestep, evaluation, targets)
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
    assert default_early_epoch(4) == 2  # at least epoch 2 (was 1)
    assert default_early_epoch(10) == 2
    assert default_vog_epochs(160, 8) == (20, 40, 60, 80, 100, 120, 140, 160)
    assert default_vog_epochs(6) == (1, 2, 3, 4, 5, 6)
    recorder = ScoreRecorder(ids_as_inputs(3), torch.zeros(3, dtype=torch.int64), 2, epochs=6, scores=("vog",))
    assert recorder.vog_epochs == (1, 2, 3, 4, 5, 6) and recorder.early_epoch == 2
    assert ScoreRecorder(ids_as_inputs(3), torch.zeros(3, dtype=torch.int64), 2, epochs=6, vog_checkpoints=3).vog_epochs == (2, 4, 6)


def test_vog_with_a_single_epoch_is_not_a_fake_zero():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(5, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 0, 1])
    recorder = ScoreRecorder(x, y, 3, epochs=1, scores=("vog", "vog:logit", "vog:agarwal"))
    assert recorder.vog_epochs == (1,)
    recorder.end_epoch(model)
    # One checkpoint has no variance: the score is missing, not 0.
    for values in recorder.scores().values():
        assert np.isnan(values).all()
