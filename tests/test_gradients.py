"""Per-example gradient norms (grand) and input gradients (vog) against plain autograd loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models import scores as S
from gwas_models.training import gradients
from gwas_models.training.gradients import per_example_grad_norms, true_class_logits_and_input_grads
from gwas_models.training.models import build_model
from gwas_models.training.recorder import ScoreRecorder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_tensors(tiny_digits_npz):
    from gwas_models.data import load_npz
    from gwas_models.training.train import DeviceData

    data = DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))
    return data


def _warm_batch_norm(model, x):
    """Give batch norm non-trivial running statistics (a few train-mode forwards)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)


def loop_grad_norms(model, x, y):
    """Reference: one backward pass per example, eval mode, all trainable parameters."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        norms.append(torch.sqrt(sum(g.double().pow(2).sum() for g in grads)))
    return torch.stack(norms).float()


def loop_input_grads(model, x, y):
    """Reference: gradient of the true-class logit w.r.t. each example's input, one at a time."""
    model.eval()
    out = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xi)[0, y[i]], xi)
        out.append(g[0])
    return torch.stack(out)


@pytest.mark.parametrize("arch", ["resnet20", "mlp"])
def test_grand_matches_per_example_loop(arch, digits_tensors):
    x, y = digits_tensors.x_train[:12], digits_tensors.y_train[:12]
    model = build_model(arch, 10, (1, 8, 8), init_seed=3)
    _warm_batch_norm(model, digits_tensors.x_train[:64])
    model.train()
    got = per_example_grad_norms(model, x, y)
    assert model.training  # mode restored
    assert got.shape == (12,) and got.dtype == torch.float32
    expected = loop_grad_norms(model, x, y)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())


class LayerNormNet(nn.Module):
    """A model with a parameter type the layer-wise path does not handle (falls back to vmap)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("arch", ["vgg11-8", "resnet20-8"])
def test_grand_matches_loop_on_other_architectures(arch, digits_tensors):
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    model = build_model(arch, 10, (1, 8, 8), init_seed=8)
    _warm_batch_norm(model, digits_tensors.x_train[:64])
    torch.testing.assert_close(per_example_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


def test_grand_fallback_model_matches_loop(digits_tensors):
    torch.manual_seed(0)
    model = LayerNormNet()
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    torch.testing.assert_close(per_example_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


def test_grand_leaves_eval_mode_alone_and_chunks_agree(digits_tensors, monkeypatch):
    x, y = digits_tensors.x_train[:10], digits_tensors.y_train[:10]
    model = build_model("resnet20", 10, (1, 8, 8), init_seed=4)
    _warm_batch_norm(model, digits_tensors.x_train[:64])
    model.eval()
    whole = per_example_grad_norms(model, x, y)
    assert not model.training
    # the torch.func path, whole and in chunks of 3 examples
    vmapped = gradients.vmap_grad_norms(model, x, y)
    torch.testing.assert_close(vmapped, whole, rtol=1e-4, atol=1e-7)
    n_params = sum(p.numel() for p in model.parameters())
    monkeypatch.setattr(gradients, "_GRADIENT_ELEMENTS_PER_CHUNK", 3 * n_params)
    torch.testing.assert_close(gradients.vmap_grad_norms(model, x, y), vmapped, rtol=1e-5, atol=1e-8)
    # the layer-wise path in chunks of 4 examples
    torch.testing.assert_close(gradients.layerwise_grad_norms(model, x, y, chunk=4), whole, rtol=1e-5, atol=1e-8)
    assert not model.training


def test_grand_ignores_frozen_later_layer(digits_tensors):
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    model = build_model("mlp", 10, (1, 8, 8), init_seed=5)
    for p in model.net[3].parameters():  # second hidden layer
        p.requires_grad_(False)
    got = per_example_grad_norms(model, x, y)
    torch.testing.assert_close(got, loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)
    for p in model.net[3].parameters():
        p.requires_grad_(True)
    assert (per_example_grad_norms(model, x, y) > got).all()


def test_grand_with_frozen_first_layer(digits_tensors):
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    model = build_model("mlp", 10, (1, 8, 8), init_seed=5)
    for p in model.net[1].parameters():  # first linear layer, fed by the input
        p.requires_grad_(False)
    got = per_example_grad_norms(model, x, y)
    torch.testing.assert_close(got, loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


class ConvVariants(nn.Module):
    """Biased, strided, dilated, non-square convolution; in-place ReLU; residual in-place add."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(6, affine=False)
        self.c3 = nn.Conv2d(6, 4, (3, 2), stride=2, dilation=(1, 2), padding=(1, 0), bias=True)
        self.head = nn.Linear(4 * 4 * 3, 10)

    def forward(self, x):
        out = self.relu(self.b1(self.c1(x)))
        residual = self.b2(self.c2(out))
        residual += out
        return self.head(torch.tanh(self.c3(self.relu(residual))).flatten(1))


def test_grand_layerwise_conv_variants_match_loop(digits_tensors):
    torch.manual_seed(1)
    model = ConvVariants()
    assert gradients._supports_layerwise(model)
    _warm_batch_norm(model, digits_tensors.x_train[:64])
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    torch.testing.assert_close(per_example_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


class SharedLinear(nn.Module):
    """One Linear layer applied twice in the forward pass (weight sharing)."""

    def __init__(self) -> None:
        super().__init__()
        self.flat = nn.Flatten()
        self.shared = nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        z = torch.relu(self.shared(self.flat(x)))
        z = torch.relu(self.shared(z))
        return self.head(z)


def test_grand_with_weight_sharing(digits_tensors):
    torch.manual_seed(2)
    model = SharedLinear()
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    torch.testing.assert_close(per_example_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


def test_vmap_path_handles_weight_sharing(digits_tensors):
    torch.manual_seed(2)
    model = SharedLinear()
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    torch.testing.assert_close(gradients.vmap_grad_norms(model, x, y), loop_grad_norms(model, x, y), rtol=1e-4, atol=1e-7)


def test_input_gradients_match_loop(digits_tensors):
    x, y = digits_tensors.x_train[:8], digits_tensors.y_train[:8]
    model = build_model("resnet20", 10, (1, 8, 8), init_seed=6)
    _warm_batch_norm(model, digits_tensors.x_train[:64])
    model.eval()
    logits, grads = true_class_logits_and_input_grads(model, x, y)
    assert grads.shape == x.shape and not logits.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads, loop_input_grads(model, x, y), rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())  # parameter .grad untouched


def test_recorder_vog_and_grand_against_direct_computation(digits_tensors):
    """Train with the recorder; at the VoG checkpoints and the early epoch compute directly."""
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, train

    x, y = digits_tensors.x_train[:64], digits_tensors.y_train[:64]
    data = DeviceData(x, y, digits_tensors.x_test[:8], digits_tensors.y_test[:8], 10)
    config = TrainConfig(epochs=4, batch_size=16, lr=0.1, vog_checkpoints=3)
    streams = SeedStreams(11)
    model = build_model("resnet20", 10, (1, 8, 8), streams.init)
    recorder = ScoreRecorder(x, y, 10, 4, scores=("grand", "vog:logit", "el2n"), early_epoch=2, vog_checkpoints=3, eval_batch_size=20)
    assert recorder.vog_epochs == (1, 3, 4)
    checkpoints, early = [], {}

    def on_epoch(epoch, _acc):
        if epoch in recorder.vog_epochs:
            checkpoints.append(loop_input_grads(model, x, y).numpy())
        if epoch == recorder.early_epoch:
            early["grand"] = loop_grad_norms(model, x, y).numpy()
            model.eval()
            with torch.no_grad():
                early["el2n"] = S.el2n(model(x).double().numpy(), y.numpy())
        model.train()

    train(model, data, config, streams, recorder=recorder, on_epoch=on_epoch)
    got = recorder.scores()
    assert len(checkpoints) == 3
    expected_vog = S.vog_logit(np.stack(checkpoints))  # loop_input_grads: of the true-class logit
    np.testing.assert_allclose(got["vog:logit"], expected_vog, rtol=1e-4, atol=1e-10)
    assert np.all(got["vog:logit"] > 0)
    np.testing.assert_allclose(got["grand"], early["grand"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got["el2n"], early["el2n"], rtol=0, atol=1e-5)


def test_vog_is_nan_until_every_checkpoint_is_reached(digits_tensors):
    x, y = digits_tensors.x_train[:8], digits_tensors.y_train[:8]
    model = build_model("mlp", 10, (1, 8, 8), init_seed=0)
    recorder = ScoreRecorder(x, y, 10, 4, scores=("vog",), vog_checkpoints=2)
    assert recorder.vog_epochs == (2, 4)
    for _ in range(3):
        recorder.end_epoch(model)
    assert np.isnan(recorder.scores()["vog"]).all()
    recorder.end_epoch(model)
    # unchanged model at both checkpoints: zero variance
    np.testing.assert_allclose(recorder.scores()["vog"], 0.0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Layer-wise path beyond conv/linear/batch norm: tokens, groups, other parameters, and models it
# must not decompose (it falls back to vmap for those; every case agrees with the loop)
# --------------------------------------------------------------------------------------------


class TokenNet(nn.Module):
    """Patch embedding, Linear on (batch, tokens, dim), LayerNorm, a depthwise convolution and a
    layer-scale parameter on a module with children: what transformers and ConvNeXts are made of."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 2, stride=2)  # 8x8 -> 16 tokens
        self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.grouped = nn.Conv2d(dim, dim, 1, groups=2)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, 10)
        self.gamma_owner = ScaledBlock(dim)

    def forward(self, x):
        z = self.grouped(self.dw(self.embed(x)))
        tokens = z.flatten(2).transpose(1, 2)  # (batch, 16, dim)
        tokens = tokens + self.fc2(torch.relu(self.fc1(self.norm(tokens))))
        tokens = self.gamma_owner(tokens)
        return self.head(tokens.mean(1))


class ScaledBlock(nn.Module):
    """A module with both children and a parameter of its own (like a ConvNeXt block's gamma)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, dim))

    def forward(self, x):
        return x + self.fc(x) * self.gamma


@pytest.mark.parametrize("dim,hidden", [(16, 32), (2, 3)], ids=["ghost-norm", "materialised"])
def test_layerwise_tokens_groups_and_other_parameters_match_loop(dim, hidden, digits_tensors):
    # 16 tokens: 16² < 16*32 uses the Gram identity for the Linear layers, 16² > 2*3 forms each
    # example's gradient
    torch.manual_seed(3)
    model = TokenNet(dim, hidden).double()
    x, y = digits_tensors.x_train[:9].double(), digits_tensors.y_train[:9]
    expected = loop_grad_norms(model, x, y).double()
    got = gradients.layerwise_grad_norms(model, x, y, chunk=4)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(per_example_grad_norms(model, x, y).double(), expected, rtol=1e-5, atol=0)


def test_layerwise_does_not_fall_back_on_decomposable_models(digits_tensors, monkeypatch):
    def no_fallback(*args):
        raise AssertionError("fell back to vmap")

    monkeypatch.setattr(gradients, "vmap_grad_norms", no_fallback)
    x, y = digits_tensors.x_train[:6], digits_tensors.y_train[:6]
    torch.manual_seed(0)
    gradients.layerwise_grad_norms(TokenNet(8, 16), x, y)
    gradients.layerwise_grad_norms(build_model("resnet20", 10, (1, 8, 8), 0), x, y)


class WeightUsedOutside(nn.Module):
    """The parent uses its child's weight directly: the child's forward hook sees only one use."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        z = torch.tanh(self.fc(x.flatten(1)))
        z = z + F.linear(z, self.fc.weight)
        return self.head(z)


class StandardisedConv(nn.Conv2d):
    """A convolution that standardises its weight (as timm's StdConv2d): not a plain Conv2d."""

    def forward(self, x):
        w = (self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)) / (self.weight.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class TiedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 64, bias=False)
        self.b = nn.Linear(64, 64, bias=False)
        self.b.weight = self.a.weight
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(torch.tanh(self.b(torch.tanh(self.a(x.flatten(1))))))


@pytest.mark.parametrize(
    "make",
    [
        WeightUsedOutside,
        TiedHead,
        lambda: nn.Sequential(StandardisedConv(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)),
    ],
    ids=["weight-used-outside-its-module", "tied-weights", "weight-standardised-conv"],
)
def test_grand_is_exact_where_layers_do_not_decompose(make, digits_tensors):
    torch.manual_seed(4)
    model = make()
    x, y = digits_tensors.x_train[:9], digits_tensors.y_train[:9]
    expected = loop_grad_norms(model, x, y)
    torch.testing.assert_close(per_example_grad_norms(model, x, y), expected, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(gradients.layerwise_grad_norms(model, x, y, chunk=4), expected, rtol=1e-4, atol=1e-7)


def test_weight_used_outside_its_module_falls_back(digits_tensors, monkeypatch):
    calls = []
    real = gradients.vmap_grad_norms
    monkeypatch.setattr(gradients, "vmap_grad_norms", lambda *args: calls.append(1) or real(*args))
    torch.manual_seed(4)
    x, y = digits_tensors.x_train[:9], digits_tensors.y_train[:9]
    gradients.layerwise_grad_norms(WeightUsedOutside(), x, y)
    assert calls == [1]
