"""timm architectures as ``timm:NAME``: building, options, provenance, and every score on them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from test_gradients import loop_grad_norms

from gwas_models import scores as S
from gwas_models.errors import InputError
from gwas_models.training import gradients, timm_models
from gwas_models.training.gradients import per_example_grad_norms
from gwas_models.training.models import build_model, count_parameters, model_description, parse_arch, parse_arch_options
from gwas_models.training.recorder import ScoreRecorder

torch.set_num_threads(1)

# Small enough to build and train in a fraction of a second on 8x8 digits.
TINY_VIT = ("timm:vit_tiny_patch16_224", {"depth": 2, "embed_dim": 32, "num_heads": 2})
# ConvNeXt downsamples 8x in its three later stages: a stride-1 stem keeps 8x8 inputs at 1x1.
TINY_CONVNEXT = ("timm:convnext_atto", {"depths": (1, 1, 1, 1), "dims": (8, 8, 16, 16), "patch_size": 1})
DIGITS = (1, 8, 8)

# torch.func has no batching rule for CPU flash attention yet: a performance note, not a problem.
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


@pytest.fixture(scope="module")
def digits(tiny_digits_npz):
    from gwas_models.data import load_npz
    from gwas_models.training.train import DeviceData

    return DeviceData.from_dataset(load_npz(tiny_digits_npz), torch.device("cpu"))


def _one_line_input_error(info) -> str:
    message = str(info.value)
    assert "\n" not in message and "--" not in message
    return message


# --------------------------------------------------------------------------------------------
# Names and options
# --------------------------------------------------------------------------------------------


def test_unknown_timm_name_lists_close_matches():
    with pytest.raises(InputError) as info:
        build_model("timm:vit_tiny_patch16_22", 10, DIGITS, 0)
    message = _one_line_input_error(info)
    assert "vit_tiny_patch16_22" in message and "close matches" in message and "vit_tiny_patch16_224" in message
    with pytest.raises(InputError, match="unknown timm model"):
        parse_arch("timm:")
    # a Hub or folder source would read a configuration from outside: not a registered name
    with pytest.raises(InputError, match="unknown timm model"):
        parse_arch("timm:hf-hub:timm/vit_tiny_patch16_224")


def test_option_the_model_rejects_is_named():
    with pytest.raises(InputError) as info:
        build_model(TINY_CONVNEXT[0], 10, DIGITS, 0, {**TINY_CONVNEXT[1], "no_such_option": 1})
    message = _one_line_input_error(info)
    assert "no_such_option" in message and message.startswith("options") and info.value.parameter == "options"


@pytest.mark.parametrize(
    "options,named",
    [
        ({"embed_dim": 30, "num_heads": 4}, "embed_dim=30"),  # heads must divide the width
        ({"pretrained": True}, "pretrained"),  # weights are never loaded
        ({"num_classes": 3}, "num_classes"),  # the dataset decides
    ],
)
def test_options_that_cannot_build_are_input_errors(options, named):
    with pytest.raises(InputError) as info:
        build_model(TINY_VIT[0], 10, DIGITS, 0, {"depth": 1, **options})
    message = _one_line_input_error(info)
    assert named in message and info.value.parameter == "options"


def test_builtins_take_no_options_and_keep_width_suffixes():
    with pytest.raises(InputError, match="options: architecture 'resnet20-8' takes none"):
        build_model("resnet20-8", 10, DIGITS, 0, {"patch_size": 2})
    assert build_model("resnet20-8", 10, DIGITS, 0, {}).stem[0].out_channels == 8


def test_timm_is_imported_only_for_timm_models():
    code = (
        "import sys\n"
        "from gwas_models.training.models import build_model, model_description, parse_arch_options\n"
        "build_model('mlp', 10, (1, 8, 8), 0)\n"
        "assert model_description('mlp', None, 10, (1, 8, 8)) == {}\n"
        "assert parse_arch_options(['a=1']) == {'a': 1}\n"
        "print('timm' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Defaults for small images and initialisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,patch", [((8, 8), 2), ((32, 32), 4), ((28, 28), 4), ((12, 8), 2), ((6, 6), 1), ((3, 3), 1)])
def test_default_patch_size(size, patch):
    assert timm_models.default_patch_size(size) == patch


@pytest.mark.parametrize("shape,patch,tokens", [((1, 8, 8), 2, 16), ((3, 32, 32), 4, 64)])
def test_vision_transformer_gets_image_and_patch_size(shape, patch, tokens):
    model = build_model(TINY_VIT[0], 10, shape, 0, {"depth": 1, "embed_dim": 16, "num_heads": 2})
    assert model.patch_embed.patch_size == (patch, patch) and model.patch_embed.num_patches == tokens
    assert model(torch.rand(2, *shape)).shape == (2, 10)
    # options override the defaults
    model = build_model(TINY_VIT[0], 10, shape, 0, {"depth": 1, "embed_dim": 16, "num_heads": 2, "patch_size": 1})
    assert model.patch_embed.patch_size == (1, 1)


def test_model_without_img_size_or_patch_size_builds():
    # a ResNet takes neither default; ConvNeXt takes patch_size but not img_size
    model = build_model("timm:resnet10t", 7, (3, 16, 16), 0)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 7)
    convnext = build_model(TINY_CONVNEXT[0], 10, DIGITS, 0, TINY_CONVNEXT[1])
    assert convnext(torch.rand(2, *DIGITS)).shape == (2, 10)


def test_init_seed_alone_decides_the_weights():
    state = torch.random.get_rng_state()
    first = build_model(TINY_VIT[0], 10, DIGITS, 5, TINY_VIT[1]).state_dict()
    torch.manual_seed(123)  # the global generator's state does not matter
    again = build_model(TINY_VIT[0], 10, DIGITS, 5, TINY_VIT[1]).state_dict()
    other = build_model(TINY_VIT[0], 10, DIGITS, 6, TINY_VIT[1]).state_dict()
    torch.random.set_rng_state(state)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["pos_embed"], other["pos_embed"]) and not torch.equal(first["head.weight"], other["head.weight"])
    before = torch.random.get_rng_state()
    build_model(TINY_CONVNEXT[0], 10, DIGITS, 5, TINY_CONVNEXT[1])
    assert torch.equal(torch.random.get_rng_state(), before)


# --------------------------------------------------------------------------------------------
# parse_arch_options and model_description
# --------------------------------------------------------------------------------------------


def test_parse_arch_options_reads_literals_and_falls_back_to_strings():
    options = parse_arch_options(
        ["patch_size=2", "act_layer=gelu", "drop_rate=0.1", "depths=(1, 1, 1, 1)", "qkv_bias=False", "norm=a=b", " name = 'x y' "]
    )
    assert options == {
        "patch_size": 2,
        "act_layer": "gelu",
        "drop_rate": 0.1,
        "depths": (1, 1, 1, 1),
        "qkv_bias": False,
        "norm": "a=b",
        "name": "x y",
    }
    assert list(options) == ["patch_size", "act_layer", "drop_rate", "depths", "qkv_bias", "norm", "name"]
    assert parse_arch_options([]) == {}


@pytest.mark.parametrize("items", [["patch_size"], ["=2"], ["2x=3"], ["patch_size="], ["a=1", "a=2"]])
def test_parse_arch_options_rejects_malformed_items(items):
    with pytest.raises(InputError) as info:
        parse_arch_options(items)
    _one_line_input_error(info)
    assert info.value.parameter == "options"


def test_model_description_records_every_argument():
    described = model_description(TINY_VIT[0], TINY_VIT[1], 10, DIGITS)
    assert described == {
        "timm_version": timm.__version__,
        "timm_model": "vit_tiny_patch16_224",
        "model_args": {"pretrained": False, "num_classes": 10, "in_chans": 1, "img_size": 8, "patch_size": 2, **TINY_VIT[1]},
    }
    # the record rebuilds the same model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        rebuilt = timm.create_model(described["timm_model"], **described["model_args"]).state_dict()
    built = build_model(TINY_VIT[0], 10, DIGITS, 9, TINY_VIT[1]).state_dict()
    assert all(torch.equal(built[k], rebuilt[k]) for k in built)
    assert model_description("resnet20", None, 10, DIGITS) == {} and model_description("mlp-512", {}, 10, DIGITS) == {}


def test_model_description_leaves_out_defaults_the_model_rejects(monkeypatch):
    # as in a process that never built the model: it is built once to find out, with the global
    # generator left alone
    monkeypatch.setattr(timm_models, "_TAKES_DEFAULT", {})
    state = torch.random.get_rng_state()
    described = model_description(TINY_CONVNEXT[0], TINY_CONVNEXT[1], 10, (3, 32, 32))
    assert torch.equal(torch.random.get_rng_state(), state)
    # tuples become lists, as JSON reads them back
    expected = {"pretrained": False, "num_classes": 10, "in_chans": 3, "depths": [1, 1, 1, 1], "dims": [8, 8, 16, 16], "patch_size": 1}
    assert described["model_args"] == expected
    assert "img_size" not in model_description("timm:resnet10t", None, 10, (3, 32, 32))["model_args"]


# --------------------------------------------------------------------------------------------
# grand on transformers and ConvNeXts: both paths against one backward per example
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch,options,path", [(*TINY_VIT, "vmap"), (*TINY_CONVNEXT, "layerwise")], ids=["vit", "convnext"])
def test_grand_matches_per_example_loop(arch, options, path, digits, monkeypatch):
    model = build_model(arch, 10, DIGITS, 1, options).double()
    # a trained-looking model: the initial layer scales of ConvNeXt (1e-6) hide most gradients
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(2), dtype=parameter.dtype))
    x, y = digits.x_train[:10].double(), digits.y_train[:10]
    expected = loop_grad_norms(model, x, y).double()
    for path_function in (gradients.layerwise_grad_norms, gradients.vmap_grad_norms):
        torch.testing.assert_close(path_function(model, x, y).double(), expected, rtol=1e-5, atol=0, msg=path_function.__name__)
    taken = []
    for name in ("layerwise_grad_norms", "vmap_grad_norms"):
        real = getattr(gradients, name)
        monkeypatch.setattr(gradients, name, lambda *args, real=real, name=name: taken.append(name) or real(*args))
    model.train()
    torch.testing.assert_close(per_example_grad_norms(model, x, y).double(), expected, rtol=1e-5, atol=0)
    assert model.training  # mode restored
    assert taken == [f"{path}_grad_norms"]  # and no fallback from the layer-wise path


@pytest.mark.parametrize("arch,options", [TINY_VIT, TINY_CONVNEXT], ids=["vit", "convnext"])
def test_every_score_is_recorded_for_batch_norm_free_models(arch, options, digits):
    from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, train

    x, y = digits.x_train[:48], digits.y_train[:48]
    data = DeviceData(x, y, digits.x_test[:8], digits.y_test[:8], 10)
    # two epochs, so that vog (a variance over checkpoints) has two
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, vog_checkpoints=2)
    streams = SeedStreams(3)
    model = build_model(arch, 10, DIGITS, streams.init, options)
    recorder = ScoreRecorder(x, y, 10, config.epochs, scores=S.SCORE_NAMES, early_epoch=1, vog_checkpoints=2, eval_batch_size=20)
    result = train(model, data, config, streams, recorder=recorder)
    assert 0.0 <= result["test_accuracy"] <= 1.0
    got = recorder.scores()
    assert set(got) == set(S.SCORE_NAMES)
    for name in S.SCORE_NAMES:
        assert got[name].shape == (48,) and np.isfinite(got[name]).all(), name
    assert (got["grand"] > 0).all() and (got["vog"] >= 0).all() and (got["el2n"] >= 0).all()
    assert set(np.unique(got["consistently_learned"])) <= set(range(1, config.epochs + 2))
    assert count_parameters(model) > 0


def test_factory_models_receive_options(tmp_path, monkeypatch):
    (tmp_path / "gwasm_test_zoo_options.py").write_text(
        "from torch import nn\n"
        "def make(num_classes, in_channels, hidden=4):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, hidden), nn.Linear(hidden, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert build_model("gwasm_test_zoo_options:make", 10, DIGITS, 0, {"hidden": 6})[1].out_features == 6
        with pytest.raises(InputError) as info:
            build_model("gwasm_test_zoo_options:make", 10, DIGITS, 0, {"width": 6})
        assert "width" in _one_line_input_error(info) and info.value.parameter == "options"
        assert model_description("gwasm_test_zoo_options:make", {"hidden": 6}, 10, DIGITS) == {}
    finally:
        sys.modules.pop("gwasm_test_zoo_options", None)
