"""Model registry: CIFAR-style ResNets and VGGs of any width, an MLP, and user factories.

Names:

* ``resnet20``, ``resnet32``, ``resnet44``, ``resnet56``, ``resnet110``: He et al. (2016) §4.2,
  three stages of ``(depth - 2) / 6`` basic blocks, base width 16. A suffix sets the base width:
  ``resnet20-64`` is four times as wide.
* ``resnet18``, ``resnet34``: the ImageNet layouts (four stages of 2-2-2-2 and 3-4-6-3 basic
  blocks, base width 64) with a 3x3 stem for small images, as commonly trained on CIFAR; the
  paper's "ResNet deep" is ``resnet34``.
* ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``: Simonyan & Zisserman configurations with batch norm
  and one linear classifier (the usual CIFAR variant), base width 64; ``vgg16-16`` is a quarter.
* ``mlp``: two hidden layers of 256 units (``mlp-512`` for 512).
* ``timm:NAME``: any timm architecture, without pretrained weights, sized for the input (see
  :mod:`gwas_models.training.timm_models`); ``options`` are passed to its constructor.
* ``package.module:function``: any factory, called as ``function(num_classes=..., in_channels=...,
  **options)``.

Every built-in model works from 8x8 (digits) to 32x32 (CIFAR) inputs: downsampling stops once the
feature map is 1x1, and a global average pool precedes the classifier.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn
import torch.nn.functional as F

from gwas_models.errors import InputError
from gwas_models.training import timm_models

# The names live in a module of their own, which reads them without importing torch.
from gwas_models.training.arch_names import (
    BUILTIN_ARCHS,
    IMAGENET_RESNET_STAGES,
    RESNET_DEPTHS,
    VGG_CONFIGS,
    parse_arch_name,
)


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            # Projection shortcut (option B of He et al.), which also handles odd spatial sizes.
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for small images: a 3x3 stem, then stages of basic blocks doubling the width.

    ``depth`` 6n+2 gives He et al.'s CIFAR ResNets (three stages of n blocks); ``stages`` overrides
    the blocks per stage (e.g. (3, 4, 6, 3) for ResNet-34).
    """

    def __init__(
        self, depth: int, width: int = 16, num_classes: int = 10, in_channels: int = 3, stages: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        if stages is None:
            if (depth - 2) % 6:
                raise InputError(f"ResNet depth must be 6n+2, got {depth}")
            stages = (((depth - 2) // 6),) * 3
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        in_planes = width
        for stage, blocks in enumerate(stages):
            planes = width * 2**stage
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(_BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class _PoolIfLarger(nn.Module):
    """2x2 max pooling that leaves 1-pixel-wide maps alone, so deep VGGs accept 8x8 inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            return x
        return F.max_pool2d(x, 2)


class CifarVGG(nn.Module):
    """VGG with batch norm for small images; ``width`` is the first stage's channel count."""

    def __init__(self, depth: int, width: int = 64, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(_PoolIfLarger())
            else:
                out = int(item) * width
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class MLP(nn.Module):
    """Two hidden ReLU layers over the flattened image."""

    def __init__(self, input_size: int, hidden: int = 256, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(input_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


Builder = Callable[[int, tuple[int, int, int], Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class ArchSpec:
    """A parsed architecture name and the function that builds it.

    ``build(num_classes, input_shape, options)`` returns the model; ``input_shape`` is
    (channels, height, width) and ``options`` the keyword arguments for its constructor.
    """

    name: str
    build: Builder


def _without_options(build: Callable[[int, tuple[int, int, int]], nn.Module], name: str) -> Builder:
    """A built-in's builder: its name says everything, so it takes no options."""

    def build_checked(num_classes: int, input_shape: tuple[int, int, int], options: Mapping[str, Any]) -> nn.Module:
        if options:
            given = ", ".join(map(str, options))
            raise InputError(
                f"options: architecture {name!r} takes none (given {given}); only timm:NAME and package.module:factory models do",
                parameter="options",
            )
        return build(num_classes, input_shape)

    return build_checked


def _timm_builder(name: str) -> Builder:
    model_name = name[len(timm_models.PREFIX) :]
    timm_models.check_name(model_name)
    return lambda num_classes, input_shape, options: timm_models.build_timm(model_name, num_classes, input_shape, options)


def _user_factory(name: str) -> Builder:
    module_name, _, function_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, but also a SyntaxError or any failure in the user's module
        raise InputError(f"cannot import module {module_name!r} of architecture {name!r}: {type(error).__name__}: {error}") from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"module {module_name!r} has no callable {function_name!r}")

    def build(num_classes: int, input_shape: tuple[int, int, int], options: Mapping[str, Any]) -> nn.Module:
        try:
            model = factory(num_classes=num_classes, in_channels=input_shape[0], **options)
        except TypeError as error:
            if options:
                given = ", ".join(options)
                message = f"options: factory {name!r} must accept num_classes=, in_channels= and {given}: {error}"
                raise InputError(message, parameter="options") from None
            raise InputError(f"factory {name!r} must accept num_classes= and in_channels=: {error}") from None
        if not isinstance(model, nn.Module):
            raise InputError(f"factory {name!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    return build


def parse_arch(name: str) -> ArchSpec:
    """Parse an architecture name into a builder, with an error listing the valid names.

    A ``timm:NAME`` is checked against timm's registry (importing timm); other names import nothing.
    """
    spec = parse_arch_name(name)
    if spec.family == "timm":
        return ArchSpec(name, _timm_builder(name))
    if spec.family == "factory":
        return ArchSpec(name, _user_factory(name))
    depth, width = spec.depth, spec.width
    if spec.family == "mlp":
        return ArchSpec(name, _without_options(lambda n, shape: MLP(shape[0] * shape[1] * shape[2], width, n), name))
    if spec.family == "resnet":
        return ArchSpec(name, _without_options(lambda n, shape: CifarResNet(depth, width, n, shape[0]), name))
    if spec.family == "imagenet_resnet":
        stages = IMAGENET_RESNET_STAGES[depth]
        return ArchSpec(name, _without_options(lambda n, shape: CifarResNet(depth, width, n, shape[0], stages=stages), name))
    return ArchSpec(name, _without_options(lambda n, shape: CifarVGG(depth, width, n, shape[0]), name))


def build_model(
    name: str, num_classes: int, input_shape: tuple[int, int, int], init_seed: int, options: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build a model with parameters drawn from ``init_seed`` alone.

    Parameters
    ----------
    name : str
        An architecture name (see the module docstring): a built-in, ``timm:NAME`` or
        ``package.module:factory``.
    num_classes : int
    input_shape : (channels, height, width)
    init_seed : int
        Decides the initial weights.
    options : mapping, optional
        Keyword arguments for the constructor of a ``timm:`` or factory model (e.g.
        ``{"patch_size": 2}``); they override the timm defaults. Built-ins take none.

    Returns
    -------
    nn.Module

    Notes
    -----
    torch layers initialise from the global generator; it is forked here so that the seed decides
    the initial weights and nothing outside this call sees or changes that generator's state.
    """
    spec = parse_arch(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return spec.build(num_classes, input_shape, dict(options or {}))


def parse_arch_options(items: Iterable[str]) -> dict[str, Any]:
    """Read ``key=value`` strings into constructor options.

    A value is a Python literal where it reads as one (``patch_size=2`` gives 2, ``drop_rate=0.1``
    0.1, ``depths=(1,1,1,1)`` a tuple, ``qkv_bias=False`` False), else the plain string
    (``act_layer=gelu`` gives "gelu").

    Parameters
    ----------
    items : iterable of str

    Returns
    -------
    dict
        Option name to value, in the order given.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, equals, text = str(item).partition("=")
        key = key.strip()
        if not equals or not key.isidentifier() or not text.strip():
            raise InputError(f"options: {item!r} is not key=value (e.g. patch_size=2)", parameter="options")
        if key in options:
            raise InputError(f"options: {key!r} is given twice", parameter="options")
        try:
            options[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            options[key] = text.strip()  # a bare word such as gelu: a string
    return options


def model_description(
    name: str, options: Mapping[str, Any] | None, num_classes: int, input_shape: tuple[int, int, int]
) -> dict[str, Any]:
    """What a run's provenance must record about its model beyond the architecture name.

    Parameters
    ----------
    name : str
        The architecture name given to :func:`build_model`.
    options : mapping or None
        The options given to :func:`build_model`.
    num_classes : int
    input_shape : (channels, height, width)

    Returns
    -------
    dict
        For ``timm:NAME``: ``{"timm_version", "timm_model": NAME, "model_args"}``, where
        ``model_args`` holds every keyword argument passed to ``timm.create_model``, the defaults
        included (tuples as lists). For every other architecture ``{}``: its name says it all.
    """
    if not name.startswith(timm_models.PREFIX):
        return {}
    return timm_models.timm_description(name[len(timm_models.PREFIX) :], dict(options or {}), num_classes, input_shape)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
