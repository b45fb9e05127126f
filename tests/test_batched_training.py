"""K replicate runs trained as one batched model equal the same seeds trained one by one."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from gwas_models.errors import InputError
from gwas_models.training import batched as B
from gwas_models.training.batched import (
    BatchedModel,
    CannotBatch,
    batch_replicates,
    build_batched,
    can_batch,
    choose_n_replicates,
    train_replicates,
    unbatch,
)
from gwas_models.training.models import build_model
from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, augment_batch, augment_replicates, train

torch.set_num_threads(1)

SEEDS = (3, 4, 5)
DIGITS = (1, 8, 8)


@pytest.fixture(scope="module")
def digits32(tiny_digits_npz):
    from gwas_models.data import load_npz

    return DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))


@pytest.fixture
def float64():
    """Default dtype float64 for the test (models built inside it are float64), restored after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _as_float64(data: DeviceData) -> DeviceData:
    return DeviceData(data.x_train.double(), data.y_train, data.x_test.double(), data.y_test, data.n_classes)


class _Capture:
    """A recorder that keeps every step's logits and, at each epoch end, the eval-mode logits of the
    training set; for one run (logits (B, C)) or K replicates (logits (K, B, C))."""

    needs_pre_step = False

    def __init__(self, inputs: torch.Tensor, n_replicates: int | None = None) -> None:
        self.inputs = inputs
        self.n_replicates = n_replicates
        self.ids: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []
        self.epoch_logits: list[torch.Tensor] = []

    def observe(self, example_ids, logits, targets):
        self.ids.append(example_ids.clone())
        self.logits.append(logits.detach().clone())

    def end_epoch(self, model):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            x = self.inputs if self.n_replicates is None else self.inputs.expand(self.n_replicates, *self.inputs.shape)
            self.epoch_logits.append(model(x))
        model.train(was_training)


def train_both(arch: str, data: DeviceData, config: TrainConfig, seeds=SEEDS, recorders=None):
    """Train ``seeds`` one by one with ``train`` and together with ``train_replicates``.

    ``recorders(n_replicates)`` makes a recorder: ``None`` for one run, K for the batched model
    (default: :class:`_Capture`). Returns ``(sequential, batched)``, each a list over replicates of
    ``(model, result, recorder)``; the batched recorder is the same object for every replicate.
    """
    make = recorders or (lambda n_replicates: _Capture(data.x_train, n_replicates))
    streams = [SeedStreams(s) for s in seeds]
    sequential = []
    for s in streams:
        model = build_model(arch, data.n_classes, tuple(data.x_train.shape[1:]), s.init)
        recorder = make(None)
        sequential.append((model, train(model, data, config, s, recorder=recorder), recorder))
    model = build_batched(arch, data.n_classes, tuple(data.x_train.shape[1:]), streams)
    recorder = make(len(streams))
    results = train_replicates(model, data, config, streams, recorder=recorder)
    batched = [(model.replicate(k), results[k], recorder) for k in range(len(streams))]
    return sequential, batched


def _max_difference(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


# --------------------------------------------------------------------------------------------
# Equivalence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["resnet20", "vgg11-16"])
def test_batched_training_equals_one_by_one_in_float64(arch, digits32, float64):
    data = _as_float64(digits32)
    config = TrainConfig(epochs=2, batch_size=64, augment="crop_flip", crop_padding=1, warmup_epochs=0.5)
    sequential, batched = train_both(arch, data, config)
    for k, ((model, result, capture), (replica, batched_result, batched_capture)) in enumerate(zip(sequential, batched)):
        assert next(replica.parameters()).dtype == torch.float64
        assert _max_difference(model, replica) < 1e-10
        # the same minibatches (order stream) ...
        assert all(torch.equal(a, b[k]) for a, b in zip(capture.ids, batched_capture.ids, strict=True))
        # ... and the same logits at every step (augmentation stream) and every epoch end
        for a, b in zip(capture.logits, batched_capture.logits, strict=True):
            torch.testing.assert_close(a, b[k], rtol=0, atol=1e-10)
        assert len(capture.epoch_logits) == 2
        for a, b in zip(capture.epoch_logits, batched_capture.epoch_logits, strict=True):
            torch.testing.assert_close(a, b[k], rtol=0, atol=1e-10)
        assert batched_result["test_accuracy"] == result["test_accuracy"]
        assert batched_result["train_accuracy"] == result["train_accuracy"]
    # training moved the replicates apart: they are not one model K times
    assert _max_difference(batched[0][0], batched[1][0]) > 1e-3


def test_batched_mlp_with_adamw_equals_one_by_one_in_float64(digits32, float64):
    data = _as_float64(digits32)
    config = TrainConfig(epochs=2, batch_size=50, optimizer="adamw", lr=3e-3, weight_decay=0.05, augment="crop", schedule="step")
    sequential, batched = train_both("mlp", data, config, seeds=(0, 1))
    for (model, _, _), (replica, _, _) in zip(sequential, batched):
        assert _max_difference(model, replica) < 1e-10


def test_float32_batched_and_sequential_losses_are_indistinguishable(digits32):
    """In float32 rounding differences grow chaotically (1e-6 to 1 in the logits within a few
    dozen steps), so a batched replicate and its run alone end apart, but alike in distribution."""
    from scipy.stats import ks_2samp

    config = TrainConfig(epochs=8, batch_size=32, augment="crop")
    sequential, batched = train_both("resnet20", digits32, config, recorders=lambda n: None)

    def losses(models) -> np.ndarray:
        """Per-example eval-mode log-loss on the training set, standardised within each run, then
        averaged over the replicates. Runs differ by a shift and a scale of their losses, which a
        test over examples would take for a difference: on the raw per-example means, even two sets
        of 3 runs alone reject at 0.01 about half of the time; on these, 1 time in 30."""
        out = []
        for model in models:
            model.eval()
            with torch.no_grad():
                log_loss = nn.functional.cross_entropy(model(digits32.x_train), digits32.y_train, reduction="none").double().log()
            out.append(((log_loss - log_loss.mean()) / log_loss.std()).numpy())
        return np.mean(out, axis=0)

    alone, together = losses([m for m, _, _ in sequential]), losses([m for m, _, _ in batched])
    assert not np.array_equal(alone, together)  # they did drift apart
    assert ks_2samp(alone, together).pvalue > 0.01
    # it sees a gross difference (the same replicates trained 1 epoch); subtler ones (no augmentation,
    # one seed for all replicates) it does not: the float64 test above is the equivalence check
    streams = [SeedStreams(s) for s in SEEDS]
    short = build_batched("resnet20", 10, DIGITS, streams)
    train_replicates(short, digits32, TrainConfig(epochs=1, batch_size=32, augment="crop"), streams)
    assert ks_2samp(alone, losses(unbatch(short))).pvalue < 0.01


def test_augment_replicates_draws_as_each_run_alone():
    x = torch.rand(3, 10, 2, 6, 6)
    for augment, pad in [("crop", 2), ("crop_flip", 1), ("crop_flip", 0), ("none", 1)]:
        config = TrainConfig(augment=augment, crop_padding=pad)
        together = augment_replicates(x, config, [torch.Generator().manual_seed(s) for s in range(3)])
        alone = torch.stack([augment_batch(x[k], config, torch.Generator().manual_seed(k)) for k in range(3)])
        assert torch.equal(together, alone)


# --------------------------------------------------------------------------------------------
# The batched model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["resnet20", "resnet18-4", "vgg11-16", "vgg16-8", "mlp"])
@pytest.mark.parametrize("shape", [DIGITS, (3, 7, 9)])
def test_forward_equals_each_model_and_replicate_round_trips(arch, shape, float64):
    models = [build_model(arch, 6, shape, seed) for seed in range(3)]
    model = batch_replicates(models)
    assert isinstance(model, BatchedModel) and model.n_replicates == 3
    # before any step, unbatching gives back the very parameters and buffers
    for original, copy in zip(models, unbatch(model), strict=True):
        assert type(copy) is type(original) and _max_difference(original, copy) == 0
    x = torch.randn(3, 5, *shape)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        with torch.no_grad():
            out = model(x)
            expected = torch.stack([m.train(mode == "train")(x[k]) for k, m in enumerate(models)])
        assert out.shape == (3, 5, 6)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    # replicate(k) is a copy in the batched model's mode, holding its current state
    model.train()
    with torch.no_grad():
        model(x)  # updates every replicate's batch-norm statistics
    replica = model.replicate(1)
    assert replica.training
    model.eval()
    replica = model.replicate(1)
    assert not replica.training
    before = model.replicate(1).state_dict()
    with torch.no_grad():
        torch.testing.assert_close(replica(x[1]), model(x)[1], rtol=0, atol=1e-10)
        for parameter in replica.parameters():
            parameter.add_(1.0)
    after = model.replicate(1).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_batched_model_has_k_times_the_parameters():
    from gwas_models.training.models import count_parameters

    models = [build_model("resnet20", 10, DIGITS, seed) for seed in range(4)]
    assert count_parameters(batch_replicates(models)) == 4 * count_parameters(models[0])


def test_forward_rejects_a_wrong_replicate_axis():
    model = build_batched("mlp", 10, DIGITS, [SeedStreams(0), SeedStreams(1)])
    with pytest.raises(InputError, match="^x: expected"):
        model(torch.randn(3, 4, *DIGITS))
    convolutional = build_batched("resnet20", 10, DIGITS, [SeedStreams(0), SeedStreams(1)])
    with pytest.raises(InputError, match=r"^x: expected a tensor \(n_replicates=2, batch, channels, height, width\)"):
        convolutional(torch.randn(2, 4, 64))


def test_can_batch_names():
    assert all(can_batch(a) for a in ("resnet20", "resnet56-32", "resnet18", "resnet34-8", "vgg11", "vgg19-16", "mlp", "mlp-512"))
    assert not can_batch("timm:resnet10t")
    assert not can_batch("package.module:factory")


def _factory_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def test_what_cannot_be_batched_raises_the_library_error():
    with pytest.raises(CannotBatch, match="Sequential"):
        batch_replicates([_factory_model(), _factory_model()])
    with pytest.raises(CannotBatch, match="^arch"):
        build_batched("package.module:factory", 10, DIGITS, [SeedStreams(0)])
    with pytest.raises(CannotBatch, match="^models: model 1 differs"):
        batch_replicates([build_model("resnet20", 10, DIGITS, 0), build_model("resnet32", 10, DIGITS, 0)])
    with pytest.raises(CannotBatch, match="^models: model 1 differs"):
        batch_replicates([build_model("mlp", 10, DIGITS, 0), build_model("mlp", 10, DIGITS, 0).double()])
    hooked = build_model("mlp", 10, DIGITS, 0)
    hooked.net[1].register_forward_hook(lambda *args: None)
    with pytest.raises(CannotBatch, match="hooks"):
        batch_replicates([hooked])
    with pytest.raises(CannotBatch, match="^models: no models"):
        batch_replicates([])
    # a CannotBatch is an InputError, which the command line reports in one line
    assert issubclass(CannotBatch, InputError)


def test_a_timm_model_cannot_be_batched():
    pytest.importorskip("timm")
    models = [build_model("timm:resnet10t", 10, (3, 16, 16), seed) for seed in range(2)]
    with pytest.raises(CannotBatch):
        batch_replicates(models)


def test_streams_must_match_the_replicates(digits32):
    model = build_batched("mlp", 10, DIGITS, [SeedStreams(0), SeedStreams(1)])
    with pytest.raises(InputError, match="^streams: 1 seed streams for 2 replicates"):
        train_replicates(model, digits32, TrainConfig(epochs=1), [SeedStreams(0)])


def test_results_and_progress(digits32):
    seen = []
    model = build_batched("mlp", 10, DIGITS, [SeedStreams(0), SeedStreams(1)])
    results = train_replicates(model, digits32, TrainConfig(epochs=2, batch_size=100), [SeedStreams(0), SeedStreams(1)], on_epoch=lambda e, acc: seen.append((e, acc)))
    assert [e for e, _ in seen] == [1, 2] and all(len(acc) == 2 and all(0 <= a <= 1 for a in acc) for _, acc in seen)
    assert len(results) == 2 and all(set(r) == {"test_accuracy", "train_accuracy", "wall_time_s"} for r in results)
    assert results[0]["wall_time_s"] == results[1]["wall_time_s"] > 0
    empty = DeviceData(digits32.x_train, digits32.y_train, digits32.x_test[:0], digits32.y_test[:0], 10)
    assert all(math.isnan(a) for a in B.evaluate_replicates(model, empty.x_test, empty.y_test, 8))


# --------------------------------------------------------------------------------------------
# No host synchronisation in a step
# --------------------------------------------------------------------------------------------

#: Tensor methods that read a device value on the host (on a GPU, each waits for the device).
HOST_READ_METHODS = frozenset({"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"})
#: Operators that do it inside the library: a scalar read, a data-dependent shape.
HOST_READ_OPERATORS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::_unique2")


def _host_reads(run) -> tuple[int, int]:
    """Host reads in ``run()``: Python-level tensor methods (``tolist`` and ``cpu`` are invisible
    to the profiler on the CPU) and the operators the profiler sees (``item``, ``float(t)``,
    ``if t``, boolean-mask indexing)."""
    from torch.overrides import TorchFunctionMode
    from torch.profiler import ProfilerActivity, profile

    calls = []

    class CountReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in HOST_READ_METHODS:
                calls.append(func.__name__)
            return func(*args, **(kwargs or {}))

    with profile(activities=[ProfilerActivity.CPU]) as prof, CountReads():
        run()
    operators = sum(event.count for event in prof.key_averages() if event.key in HOST_READ_OPERATORS)
    return len(calls), operators


@pytest.mark.parametrize("loop", ["batched", "train"])
def test_no_host_read_per_step(loop, digits32):
    """The host reads do not grow with the number of steps: a step makes none."""
    data = DeviceData(digits32.x_train[:48], digits32.y_train[:48], digits32.x_test[:8], digits32.y_test[:8], 10)
    streams = [SeedStreams(0), SeedStreams(1)]

    def run(batch_size: int):
        config = TrainConfig(epochs=2, batch_size=batch_size, augment="crop_flip", eval_batch_size=1024)
        if loop == "batched":
            model = build_batched("resnet20", 10, DIGITS, streams)
            return lambda: train_replicates(model, data, config, streams, on_epoch=lambda e, a: None)
        model = build_model("resnet20", 10, DIGITS, streams[0].init)
        return lambda: train(model, data, config, streams[0], on_epoch=lambda e, a: None)

    few, many = _host_reads(run(24)), _host_reads(run(8))  # 2 and 6 steps per epoch
    assert few == many
    # the reads there are: the running accuracy once per epoch, then the test and training accuracies
    assert few[0] == 2 + 2


# --------------------------------------------------------------------------------------------
# How many replicates fit
# --------------------------------------------------------------------------------------------


def test_choose_n_replicates_on_cpu(digits32, monkeypatch):
    config = TrainConfig(batch_size=32, eval_batch_size=64)
    cpu = torch.device("cpu")
    assert choose_n_replicates("timm:resnet10t", digits32, config, cpu, 8) == 1
    assert choose_n_replicates("resnet20", digits32, config, cpu, 1) == 1
    assert choose_n_replicates("resnet20", digits32, config, "cpu", 8) == 8  # this machine has the RAM
    assert choose_n_replicates("resnet20", digits32, config, "cpu", 100) == B.CPU_MAX_REPLICATES
    one = B._trial_bytes("resnet20", digits32, config, cpu, 1)
    two = B._trial_bytes("resnet20", digits32, config, cpu, 2)
    assert 1.5 < two / one < 2.5  # the estimate grows with K, about in proportion
    # room for 3.5 replicates: K = 3
    monkeypatch.setattr(B, "available_memory", lambda device: int(3.5 * (two - one) / B.MEMORY_SAFETY["cpu"]) + 2 * one - two)
    assert choose_n_replicates("resnet20", digits32, config, cpu, 8) == 3
    monkeypatch.setattr(B, "available_memory", lambda device: 10)
    assert choose_n_replicates("resnet20", digits32, config, cpu, 8) == 1
    monkeypatch.setattr(B, "available_memory", lambda device: None)
    assert choose_n_replicates("resnet20", digits32, config, cpu, 5) == 5
    with pytest.raises(InputError, match="^n_runs must be at least 1"):
        choose_n_replicates("resnet20", digits32, config, cpu, 0)


def test_available_memory_on_cpu():
    available = B.available_memory(torch.device("cpu"))
    assert available is None or available > 0
    if sys.platform.startswith("linux"):
        assert available is not None


def test_gpu_check_fails_clearly_without_cuda():
    import subprocess
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: the check would run")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "gpu_check: no CUDA device (torch.cuda.is_available() is False); run it on a machine with an NVIDIA GPU"
    ]
