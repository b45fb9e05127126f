"""Training configuration, seed streams, augmentation, schedule, loop and model registry."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from gwas_models.errors import InputError
from gwas_models.training import models as M
from gwas_models.training.models import build_model, count_parameters, parse_arch
from gwas_models.training.train import (
    PRESETS,
    DeviceData,
    SeedStreams,
    TrainConfig,
    augment_batch,
    evaluate_accuracy,
    learning_rate_factor,
    preset,
    resolve_device,
    train,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small_data(tiny_digits_npz):
    from gwas_models.data import load_npz

    full = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    return DeviceData(full.x_train[:80], full.y_train[:80], full.x_test[:20], full.y_test[:20], 10)


# --------------------------------------------------------------------------------------------
# Config and presets
# --------------------------------------------------------------------------------------------


def test_presets():
    assert PRESETS["digits"] == TrainConfig()
    paper = preset("paper")
    assert (paper.epochs, paper.batch_size, paper.lr, paper.schedule, paper.augment, paper.crop_padding, paper.early_epoch) == (
        160,
        128,
        0.1,
        "step",
        "crop_flip",
        4,
        20,
    )
    changed = preset("digits", epochs=3, lr=None, batch_size=16)
    assert changed.epochs == 3 and changed.batch_size == 16 and changed.lr == TrainConfig().lr
    assert changed.to_dict()["epochs"] == 3
    with pytest.raises(InputError, match="unknown preset"):
        preset("imagenet")


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("momentum", 1.0),
        ("weight_decay", -1e-4),
        ("schedule", "linear"),
        ("augment", "mixup"),
        ("crop_padding", -1),
        ("early_epoch", 31),
        ("vog_checkpoints", 1),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(InputError):
        TrainConfig(**{field: value})


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="cuda"):
            resolve_device("cuda")
        assert resolve_device("auto").type in ("cpu", "mps")


# --------------------------------------------------------------------------------------------
# Seed streams and determinism of the loop
# --------------------------------------------------------------------------------------------


def test_seed_streams():
    a, b = SeedStreams(0), SeedStreams(0)
    assert (a.init, a.order, a.augment) == (b.init, b.order, b.augment)
    assert len({a.init, a.order, a.augment}) == 3
    other = SeedStreams(1)
    assert other.init != a.init and other.order != a.order and other.augment != a.augment
    for value in (a.init, a.order, a.augment):
        assert 0 <= value < 2**63
    # derived from numpy's SeedSequence: spawn(3) children, in init/order/augment order
    children = np.random.SeedSequence(7).spawn(3)
    s = SeedStreams(7)
    assert [s.init, s.order, s.augment] == [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def test_init_stream_decides_weights_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    w0 = build_model("resnet20", 10, (1, 8, 8), SeedStreams(0).init).state_dict()
    w0_again = build_model("resnet20", 10, (1, 8, 8), SeedStreams(0).init).state_dict()
    w1 = build_model("resnet20", 10, (1, 8, 8), SeedStreams(1).init).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(w0[k], w0_again[k]) for k in w0)
    assert not torch.equal(w0["head.weight"], w1["head.weight"])
    assert not torch.equal(w0["stem.0.weight"], w1["stem.0.weight"])


class _Capture:
    """A recorder stand-in that keeps the example ids of every minibatch."""

    def __init__(self) -> None:
        self.ids: list[torch.Tensor] = []
        self.epochs = 0

    def observe(self, ids, logits, targets):
        self.ids.append(ids.clone())

    def end_epoch(self, model):
        self.epochs += 1


def _train_capturing(arch, data, config, seed):
    streams = SeedStreams(seed)
    model = build_model(arch, 10, (1, 8, 8), streams.init)
    inputs = []
    model.register_forward_pre_hook(lambda m, args: inputs.append(args[0].clone()) if m.training else None)
    capture = _Capture()
    result = train(model, data, config, streams, recorder=capture)
    return capture, inputs, result, model


def test_same_seed_same_data_order_and_augmentation_across_architectures(small_data):
    config = TrainConfig(epochs=2, batch_size=32, augment="crop_flip", crop_padding=1)
    mlp_ids, mlp_inputs, _, _ = _train_capturing("mlp", small_data, config, seed=5)
    res_ids, res_inputs, _, _ = _train_capturing("resnet20", small_data, config, seed=5)
    assert len(mlp_ids.ids) == 2 * math.ceil(80 / 32) and mlp_ids.epochs == 2
    for a, b in zip(mlp_ids.ids, res_ids.ids, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(mlp_inputs, res_inputs, strict=True):
        assert torch.equal(a, b)
    # the order is torch.randperm driven by a generator seeded with the order stream
    generator = torch.Generator().manual_seed(SeedStreams(5).order)
    expected = torch.cat([torch.randperm(80, generator=generator) for _ in range(2)])
    assert torch.equal(torch.cat(mlp_ids.ids), expected)
    # every example once per epoch
    assert torch.equal(torch.cat(mlp_ids.ids[:3]).sort().values, torch.arange(80))
    # another seed: another order
    other, _, _, _ = _train_capturing("mlp", small_data, config, seed=6)
    assert not torch.equal(torch.cat(other.ids), torch.cat(mlp_ids.ids))


def test_train_is_deterministic_and_reports(small_data):
    config = TrainConfig(epochs=2, batch_size=16)
    _, _, r1, m1 = _train_capturing("mlp", small_data, config, seed=1)
    _, _, r2, m2 = _train_capturing("mlp", small_data, config, seed=1)
    assert set(r1) == {"test_accuracy", "train_accuracy", "wall_time_s"}
    assert 0 <= r1["test_accuracy"] <= 1 and r1["wall_time_s"] > 0
    assert r1["test_accuracy"] == r2["test_accuracy"]
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    # training changed the weights
    fresh = build_model("mlp", 10, (1, 8, 8), SeedStreams(1).init).state_dict()
    assert not torch.equal(fresh["net.1.weight"], s1["net.1.weight"])


def test_evaluate_accuracy_empty_and_mode(small_data):
    model = build_model("mlp", 10, (1, 8, 8), 0).train()
    assert math.isnan(evaluate_accuracy(model, small_data.x_test[:0], small_data.y_test[:0], 8))
    acc = evaluate_accuracy(model, small_data.x_test, small_data.y_test, 7)
    with torch.no_grad():
        model.eval()
        expected = (model(small_data.x_test).argmax(1) == small_data.y_test).float().mean().item()
    assert acc == pytest.approx(expected)


def test_device_data_standardises_with_training_statistics(tiny_digits_npz):
    from gwas_models.data import load_npz

    data = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert abs(data.x_train.mean().item()) < 1e-4
    assert data.x_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
    assert data.n_classes == 10


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x translated so that output[i, j] = x[i + dy, j + dx], zero outside."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    src_rows = slice(max(dy, 0), h + min(dy, 0))
    dst_rows = slice(max(-dy, 0), h + min(-dy, 0))
    src_cols = slice(max(dx, 0), w + min(dx, 0))
    dst_cols = slice(max(-dx, 0), w + min(-dx, 0))
    out[..., dst_rows, dst_cols] = x[..., src_rows, src_cols]
    return out


def _find_transform(original, augmented, pad, flips):
    for flip in (False, True) if flips else (False,):
        base = original.flip(-1) if flip else original
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                if torch.equal(_shift(base, dy, dx), augmented):
                    return flip, dy, dx
    return None


@pytest.mark.parametrize("pad", [1, 2])
def test_crop_is_a_bounded_translation(pad):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, 6, 7, generator=g) + 1.0  # strictly positive: zero padding is visible
    config = TrainConfig(augment="crop", crop_padding=pad)
    out = augment_batch(x, config, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = set()
    for i in range(len(x)):
        found = _find_transform(x[i], out[i], pad, flips=False)
        assert found is not None, f"example {i} is not a translation by at most {pad} pixels"
        shifts.add(found[1:])
    assert shifts == {(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)}


def test_crop_flip_flips_some_and_crop_never_flips():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, 5, 5, generator=g) + 1.0
    flipped = augment_batch(x, TrainConfig(augment="crop_flip", crop_padding=0), torch.Generator().manual_seed(2))
    kinds = []
    for i in range(len(x)):
        if torch.equal(flipped[i], x[i]):
            kinds.append(False)
        else:
            assert torch.equal(flipped[i], x[i].flip(-1))
            kinds.append(True)
    assert 20 < sum(kinds) < 108
    cropped = augment_batch(x, TrainConfig(augment="crop", crop_padding=1), torch.Generator().manual_seed(2))
    for i in range(len(x)):
        assert _find_transform(x[i], cropped[i], 1, flips=False) is not None
    # and with crop_flip + padding, each output is a bounded translation of x or of its mirror image
    both = augment_batch(x, TrainConfig(augment="crop_flip", crop_padding=1), torch.Generator().manual_seed(3))
    found = [_find_transform(x[i], both[i], 1, flips=True) for i in range(len(x))]
    assert all(f is not None for f in found)
    assert {f[0] for f in found} == {False, True}


def test_no_augmentation_and_zero_padding_are_identity():
    x = torch.rand(4, 3, 8, 8)
    assert augment_batch(x, TrainConfig(augment="none"), torch.Generator()) is x
    assert torch.equal(augment_batch(x, TrainConfig(augment="crop", crop_padding=0), torch.Generator()), x)


def test_augmentation_is_reproducible():
    x = torch.rand(16, 1, 8, 8)
    config = TrainConfig(augment="crop_flip", crop_padding=2)
    a = augment_batch(x, config, torch.Generator().manual_seed(9))
    b = augment_batch(x, config, torch.Generator().manual_seed(9))
    c = augment_batch(x, config, torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------------------------


def test_cosine_with_warmup():
    config = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=1.0)
    f = lambda step: learning_rate_factor(config, step, steps_per_epoch=10)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 100)))
    assert f(50) == pytest.approx(0.5)
    assert f(99) == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert all(f(s) >= f(s + 1) for s in range(10, 99))


def test_step_and_constant_schedules():
    step = TrainConfig(epochs=8, schedule="step", warmup_epochs=0.0)
    f = lambda s: learning_rate_factor(step, s, steps_per_epoch=5)  # noqa: E731 (40 steps)
    assert [f(0), f(19), f(20), f(29), f(30), f(39)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    constant = TrainConfig(epochs=8, schedule="constant", warmup_epochs=0.5)
    g = lambda s: learning_rate_factor(constant, s, steps_per_epoch=4)  # noqa: E731 (warm-up of 2 steps)
    assert [g(0), g(1), g(2), g(31)] == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_warmup_never_exceeds_the_base_rate():
    config = TrainConfig(epochs=4, schedule="constant", warmup_epochs=0.5)
    factors = [learning_rate_factor(config, s, steps_per_epoch=5) for s in range(20)]
    assert max(factors) <= 1.0 + 1e-12


def test_loop_applies_the_schedule(small_data, monkeypatch):
    """The optimizer's learning rate at each step is lr x learning_rate_factor."""
    seen = []
    original_step = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    config = TrainConfig(epochs=2, batch_size=40, lr=0.2, schedule="step", warmup_epochs=0.0, augment="none")
    model = build_model("mlp", 10, (1, 8, 8), 0)
    train(model, small_data, config, SeedStreams(0))
    assert seen == pytest.approx([0.2, 0.2, 0.02, 0.002])


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

ALL_NAMES = M.BUILTIN_ARCHS + ("resnet20-64", "vgg16-16", "mlp-512")


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_every_architecture_builds_and_runs(name, shape):
    model = build_model(name, 7, shape, init_seed=0).eval()
    with torch.no_grad():
        out = model(torch.rand(2, *shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_resnet20_parameter_count():
    # Hand count, option-B projection shortcuts, base width 16, 10 classes:
    # stem conv 9*c*16 + bn 32; stage 1: 3 blocks x (2 * 9*16*16 + 2 * 32);
    # stage 2: (9*16*32 + 9*32*32 + 2*64 + 16*32 + 64) + 2 x (2 * 9*32*32 + 2*64);
    # stage 3: (9*32*64 + 9*64*64 + 2*128 + 32*64 + 128) + 2 x (2 * 9*64*64 + 2*128); head 64*10 + 10.
    def expected(c):
        stem = 9 * c * 16 + 32
        stage1 = 3 * (2 * 9 * 16 * 16 + 2 * 32)
        stage2 = (9 * 16 * 32 + 9 * 32 * 32 + 2 * 64 + 16 * 32 + 64) + 2 * (2 * 9 * 32 * 32 + 2 * 64)
        stage3 = (9 * 32 * 64 + 9 * 64 * 64 + 2 * 128 + 32 * 64 + 128) + 2 * (2 * 9 * 64 * 64 + 2 * 128)
        return stem + stage1 + stage2 + stage3 + 64 * 10 + 10

    assert count_parameters(build_model("resnet20", 10, (1, 8, 8), 0)) == expected(1) == 272186
    assert count_parameters(build_model("resnet20", 10, (3, 32, 32), 0)) == expected(3) == 272474
    assert count_parameters(build_model("mlp", 10, (1, 8, 8), 0)) == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def test_width_suffixes():
    wide = build_model("resnet20-64", 10, (3, 32, 32), 0)
    assert wide.stem[0].out_channels == 64 and wide.head.in_features == 256
    thin = build_model("vgg16-16", 10, (3, 32, 32), 0)
    convs = [m for m in thin.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and convs[0].out_channels == 16 and convs[-1].out_channels == 128
    assert build_model("vgg16", 10, (3, 32, 32), 0).head.in_features == 512
    assert build_model("mlp-512", 10, (1, 8, 8), 0).net[1].out_features == 512
    assert len([m for m in build_model("resnet56", 10, (1, 8, 8), 0).modules() if isinstance(m, M._BasicBlock)]) == 27


@pytest.mark.parametrize("name", ["resnet21", "resnet", "vgg12", "vgg16-", "mlp512", "ResNet20", "transformer", ""])
def test_unknown_architecture_lists_valid_names(name):
    with pytest.raises(InputError) as info:
        parse_arch(name)
    message = str(info.value)
    for valid in M.BUILTIN_ARCHS:
        assert valid in message
    assert "package.module:factory" in message


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("name", ["resnet20-0", "vgg16-0", "mlp-0"])
def test_zero_width_is_rejected(name):
    with pytest.raises(InputError):
        build_model(name, 10, (1, 8, 8), 0)


USER_MODULE = '''
import torch
from torch import nn

def tiny(num_classes, in_channels):
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))

def not_a_model(num_classes, in_channels):
    return "model"

CONSTANT = 3
'''


def test_user_factory(tmp_path, monkeypatch):
    package = tmp_path / "gwasm_test_zoo_a"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_arch("gwasm_test_zoo_a.nets:tiny")
    assert spec.name == "gwasm_test_zoo_a.nets:tiny"
    model = build_model("gwasm_test_zoo_a.nets:tiny", 5, (3, 8, 8), 0)
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 5)
    assert count_parameters(model) == 3 * 4 * 9 + 4 + 4 * 5 + 5
    with pytest.raises(InputError, match="cannot import"):
        parse_arch("gwasm_test_zoo_a.missing:tiny")
    with pytest.raises(InputError, match="no callable"):
        parse_arch("gwasm_test_zoo_a.nets:absent")
    with pytest.raises(InputError, match="no callable"):
        parse_arch("gwasm_test_zoo_a.nets:CONSTANT")
    with pytest.raises(InputError, match="not a torch.nn.Module"):
        build_model("gwasm_test_zoo_a.nets:not_a_model", 5, (3, 8, 8), 0)
    sys.modules.pop("gwasm_test_zoo_a.nets", None)
    sys.modules.pop("gwasm_test_zoo_a", None)


@pytest.mark.parametrize(
    "source",
    [
        "def make(num_classes, in_channels)\n    pass\n",  # syntax error
        "from torch import nn\ndef make(num_classes):\n    return nn.Linear(64, num_classes)\n",  # no in_channels
    ],
    ids=["syntax-error", "wrong-signature"],
)
def test_user_factory_mistakes_are_input_errors(source, tmp_path, monkeypatch, request):
    name = f"gwasm_test_zoo_bad_{request.node.callspec.id.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(InputError):
            build_model(f"{name}:make", 10, (1, 8, 8), 0)
    finally:
        sys.modules.pop(name, None)


def test_adamw_is_a_training_choice_with_decoupled_weight_decay():
    from gwas_models.training.train import make_optimizer

    model = nn.Linear(4, 3)
    sgd = make_optimizer(model, TrainConfig())
    adamw = make_optimizer(model, TrainConfig(optimizer="adamw", lr=3e-3, momentum=0.8, weight_decay=0.05))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["weight_decay"] == 5e-4
    assert type(adamw) is torch.optim.AdamW
    assert adamw.defaults["betas"] == (0.8, 0.999) and adamw.defaults["weight_decay"] == 0.05 and adamw.defaults["lr"] == 3e-3
    with pytest.raises(InputError, match="unknown optimizer 'adam'"):
        TrainConfig(optimizer="adam")
