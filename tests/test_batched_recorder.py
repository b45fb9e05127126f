"""K replicate runs recorded at once by one ScoreRecorder equal K runs recorded one by one.

The batched model here is a test-only reference (K ordinary models, model k run on x[k]), so that
the recorder is checked independently of the library's batched model.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from gwas_models import scores as S
from gwas_models.errors import InputError
from gwas_models.training.recorder import ScoreRecorder

torch.set_num_threads(1)

N_EXAMPLES, N_CLASSES, BATCH, EPOCHS, K = 30, 3, 8, 3, 3
# Events of a value read back to the host (a device synchronisation on a GPU), and of a
# data-dependent shape (boolean-mask indexing: nonzero, which synchronises too).
HOST_READS = ("aten::item", "aten::_local_scalar_dense", "aten::nonzero")


class TinyNet(nn.Module):
    """A convolution with batch norm (train and eval modes differ) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 5 * 5, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))).flatten(1))


class StackedModel(nn.Module):
    """Reference batched model: (K, B, ...) -> (K, B, C), replicate k is model k on x[k]."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.n_replicates = len(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model(x[k]) for k, model in enumerate(self.models)])

    def replicate(self, k: int) -> nn.Module:
        return copy.deepcopy(self.models[k])


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(N_EXAMPLES, 2, 5, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, N_CLASSES, (N_EXAMPLES,), generator=generator)
    return x, y


def _models(n: int) -> list[nn.Module]:
    torch.manual_seed(1)
    return [TinyNet().double() for _ in range(n)]


def _recorder(x, y, n_replicates=1, scores=S.ALL_SCORE_NAMES, **kwargs) -> ScoreRecorder:
    return ScoreRecorder(x, y, N_CLASSES, EPOCHS, scores=scores, keep_trajectories=True, eval_batch_size=7, n_replicates=n_replicates, **kwargs)


def _train_and_record(n_replicates: int, vog_checkpoints: int | None = None):
    """Train K models a little (each its own data order and augmentation noise) and record them
    both with one K-replicate recorder and with K single-run recorders fed the same calls."""
    x, y = _data()
    models = _models(n_replicates)
    batched_model = StackedModel(models).train()  # holds the very same modules
    batched = _recorder(x, y, n_replicates, vog_checkpoints=vog_checkpoints)
    singles = [_recorder(x, y, vog_checkpoints=vog_checkpoints) for _ in range(n_replicates)]
    order_streams = [torch.Generator().manual_seed(10 + k) for k in range(n_replicates)]
    noise = torch.Generator().manual_seed(99)
    optimizer = torch.optim.SGD(batched_model.parameters(), lr=0.3)
    for _ in range(EPOCHS):
        orders = torch.stack([torch.randperm(N_EXAMPLES, generator=g) for g in order_streams])
        for start in range(0, N_EXAMPLES, BATCH):  # the last minibatch is smaller
            ids = orders[:, start : start + BATCH]
            batched.before_step(batched_model, ids)
            for k, recorder in enumerate(singles):
                recorder.before_step(models[k], ids[k])
            inputs = x[ids] + 0.3 * torch.randn(x[ids].shape, generator=noise, dtype=x.dtype)  # "augmentation"
            logits = batched_model(inputs)
            loss = F.cross_entropy(logits.reshape(-1, N_CLASSES), y[ids].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batched.observe(ids, logits, y[ids])
            for k, recorder in enumerate(singles):
                recorder.observe(ids[k], logits[k], y[ids[k]])
        batched.end_epoch(batched_model)
        for k, recorder in enumerate(singles):
            recorder.end_epoch(models[k])
    return batched, singles


def test_batched_recorder_equals_independent_recorders_in_float64():
    batched, singles = _train_and_record(K)
    got = batched.replicate_scores()
    assert len(got) == K
    for k, single in enumerate(singles):
        expected = single.scores()
        assert set(got[k]) == set(expected) == set(S.ALL_SCORE_NAMES)
        for name in S.ALL_SCORE_NAMES:
            assert got[k][name].shape == (N_EXAMPLES,) and got[k][name].dtype == np.float64
            assert np.isfinite(expected[name]).all(), name  # every definition was computed
            np.testing.assert_allclose(got[k][name], expected[name], rtol=0, atol=1e-12, err_msg=f"replicate {k}: {name}")
        trajectories, expected_trajectories = batched.replicate_trajectories()[k], single.trajectories()
        assert set(trajectories) == set(expected_trajectories) == {"loss", "correct", "margin"}
        for name, values in expected_trajectories.items():
            assert trajectories[name].shape == (EPOCHS, N_EXAMPLES)
            np.testing.assert_allclose(trajectories[name], values, rtol=0, atol=1e-12, err_msg=f"replicate {k}: {name}")
    # The replicates are different runs, and training moved their predictions between checkpoints.
    assert not np.allclose(got[0]["loss"], got[1]["loss"])
    assert np.all(got[0]["vog:logit"] > 0)


def test_batched_recorder_with_vog_checkpoints_equals_independent_recorders():
    batched, singles = _train_and_record(2, vog_checkpoints=2)
    assert batched.vog_epochs == (2, 3)
    for got, single in zip(batched.replicate_scores(), singles):
        expected = single.scores()
        for name in ("vog", "vog:logit", "vog:agarwal"):
            assert np.isfinite(expected[name]).all()
            np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-12, err_msg=name)


def test_single_run_as_a_batched_model_of_one_equals_the_ordinary_model():
    """n_replicates=1 takes a batched model of one replicate and (1, batch) ids as well."""
    x, y = _data(1)
    (model,) = _models(1)
    scores = ("loss", "forgetting", "grand", "vog", "loss:presentations")
    plain, wrapped = _recorder(x, y, scores=scores), _recorder(x, y, scores=scores)
    stacked = StackedModel([model])
    for _ in range(EPOCHS):
        ids = torch.randperm(N_EXAMPLES)[:BATCH]
        plain.before_step(model, ids)
        wrapped.before_step(stacked, ids[None])
        with torch.no_grad():
            logits = model(x[ids])
        plain.observe(ids, logits, y[ids])
        wrapped.observe(ids[None], logits[None], y[ids][None])
        plain.end_epoch(model)
        wrapped.end_epoch(stacked)
    assert len(wrapped.replicate_scores()) == 1
    for name, values in plain.scores().items():
        np.testing.assert_allclose(wrapped.scores()[name], values, rtol=0, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------------
# Bad input: one-line InputErrors naming the parameter
# --------------------------------------------------------------------------------------------


def _expect_error(parameter: str, call) -> None:
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(parameter) and "\n" not in str(caught.value)


def test_bad_shapes_and_replicate_counts_are_input_errors():
    x, y = _data()
    recorder = _recorder(x, y, K)
    ids = torch.stack([torch.arange(BATCH)] * K)
    logits = torch.zeros(K, BATCH, N_CLASSES, dtype=torch.float64)
    _expect_error("example_ids", lambda: recorder.observe(ids[:2], logits[:2], y[ids[:2]]))  # K mismatch
    _expect_error("example_ids", lambda: recorder.observe(ids[0], logits[0], y[ids[0]]))  # no replicate dimension
    _expect_error("logits", lambda: recorder.observe(ids, logits[..., :2], y[ids]))
    _expect_error("logits", lambda: recorder.observe(ids, logits[:2], y[ids]))
    _expect_error("targets", lambda: recorder.observe(ids, logits, y[ids][:, :3]))
    _expect_error("example_ids", lambda: recorder.before_step(StackedModel(_models(K)), ids[:, :, None]))
    _expect_error("model", lambda: recorder.before_step(TinyNet().double(), ids))  # not batched
    _expect_error("model", lambda: recorder.end_epoch(StackedModel(_models(2))))  # 2 replicates, not 3
    assert recorder.epoch == 0  # the refused epoch end did not count
    _expect_error("n_replicates", recorder.scores)
    _expect_error("n_replicates", recorder.trajectories)
    _expect_error("n_replicates", lambda: _recorder(x, y, 0))
    single = _recorder(x, y)
    _expect_error("logits", lambda: single.observe(ids[0], logits[0, :, :2], y[ids[0]]))
    _expect_error("example_ids", lambda: single.observe(ids[:2], logits[:2], y[ids[:2]]))


def test_model_giving_logits_of_the_wrong_shape_is_an_input_error():
    x, y = _data()
    recorder = _recorder(x, y, 2, scores=("forgetting",))

    class Flattening(StackedModel):  # (K * B, C) instead of (K, B, C)
        def forward(self, x):
            return super().forward(x).flatten(0, 1)

    _expect_error("model", lambda: recorder.before_step(Flattening(_models(2)), torch.zeros(2, 4, dtype=torch.int64)))


# --------------------------------------------------------------------------------------------
# No host synchronisation during the epoch
# --------------------------------------------------------------------------------------------


def _host_reads(call) -> dict[str, int]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    names = [event.name for event in prof.events()]
    return {name: names.count(name) for name in HOST_READS if name in names}


def test_the_profiler_sees_a_host_read():
    """The check below can fail: a .item() shows up as the events it looks for."""
    assert _host_reads(lambda: torch.ones(3).sum().item())


@pytest.mark.parametrize("n_replicates", [1, K])
def test_no_host_reads_in_observe_before_step_and_end_epoch(n_replicates):
    x, y = _data()
    models = _models(n_replicates)
    model = StackedModel(models) if n_replicates > 1 else models[0]
    # every definition but grand, whose per-example gradients check themselves once per run
    recorder = _recorder(x, y, n_replicates, scores=[s for s in S.ALL_SCORE_NAMES if s != "grand"])
    ids = torch.stack([torch.randperm(N_EXAMPLES)[:BATCH] for _ in range(n_replicates)])
    if n_replicates == 1:
        ids = ids[0]  # the single run's own signature
    with torch.no_grad():
        logits = model(x[ids])
    for _ in range(2):  # the second presentation goes through every transition
        assert _host_reads(lambda: recorder.before_step(model, ids)) == {}
        assert _host_reads(lambda: recorder.observe(ids, logits, y[ids])) == {}
        assert _host_reads(lambda: recorder.end_epoch(model)) == {}  # a VoG checkpoint and an eval pass


# --------------------------------------------------------------------------------------------
# End to end: the library's batched training against the same seeds trained one by one
# --------------------------------------------------------------------------------------------

# Scores that count or compare predictions: equal exactly when no prediction flips.
DISCRETE_SCORES = ("accuracy", "accuracy:presentations", "forgetting", "forgetting:toneva", "consistently_learned", "consistently_learned:epoch")


@pytest.fixture(scope="module")
def digits_float64(tiny_digits_npz):
    from gwas_models.data import load_npz
    from gwas_models.training.train import DeviceData

    data = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    return DeviceData(data.x_train[:64].double(), data.y_train[:64], data.x_test[:16].double(), data.y_test[:16], data.n_classes)


@pytest.mark.parametrize("arch", ["resnet20", "vgg11-16"])
def test_batched_training_records_the_scores_of_runs_trained_one_by_one(arch, digits_float64):
    """K = 3 replicates trained as one batched model (2 epochs, crops and flips), recorded with
    every definition, equal in float64 the same seeds trained by ``train()`` one after another."""
    from gwas_models.training.batched import batch_replicates, train_replicates
    from gwas_models.training.models import build_model
    from gwas_models.training.train import SeedStreams, TrainConfig, train

    data = digits_float64
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, augment="crop_flip", eval_batch_size=24)
    streams = [SeedStreams(seed) for seed in (3, 4, 5)]

    def recorder(n_replicates: int) -> ScoreRecorder:
        return ScoreRecorder(
            data.x_train, data.y_train, data.n_classes, config.epochs, scores=S.ALL_SCORE_NAMES,
            eval_batch_size=config.eval_batch_size, keep_trajectories=True, n_replicates=n_replicates,
        )  # fmt: skip

    def model(stream: SeedStreams) -> nn.Module:
        return build_model(arch, data.n_classes, (1, 8, 8), stream.init).double()

    batched = recorder(len(streams))
    train_replicates(batch_replicates([model(s) for s in streams]), data, config, streams, recorder=batched)
    for k, stream in enumerate(streams):
        alone = recorder(1)
        train(model(stream), data, config, stream, recorder=alone)
        got, expected = batched.replicate_scores()[k], alone.scores()
        for name in S.ALL_SCORE_NAMES:
            assert np.isfinite(expected[name]).all(), name
            tolerance = 0 if name in DISCRETE_SCORES else 1e-10
            np.testing.assert_allclose(got[name], expected[name], rtol=tolerance, atol=tolerance, err_msg=f"{arch} replicate {k}: {name}")
        for name, values in alone.trajectories().items():
            np.testing.assert_allclose(batched.replicate_trajectories()[k][name], values, rtol=1e-6, atol=1e-7, err_msg=name)
