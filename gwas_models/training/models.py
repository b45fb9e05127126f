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
* ``package.module:function``: any factory, called as ``function(num_classes=..., in_channels=...)``.

Every built-in model works from 8x8 (digits) to 32x32 (CIFAR) inputs: downsampling stops once the
feature map is 1x1, and a global average pool precedes the classifier.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from gwas_models.errors import InputError

RESNET_DEPTHS = (20, 32, 44, 56, 110)
# Stages of basic blocks of the ImageNet ResNets, trained on small images with a 3x3 stem.
IMAGENET_RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}
BUILTIN_ARCHS = tuple(f"resnet{d}" for d in RESNET_DEPTHS + tuple(IMAGENET_RESNET_STAGES)) + tuple(f"vgg{d}" for d in VGG_CONFIGS) + ("mlp",)
_NAME = re.compile(r"^(resnet|vgg)(\d+)(?:-(\d+))?$|^(mlp)(?:-(\d+))?$")


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


@dataclass(frozen=True)
class ArchSpec:
    """A parsed architecture name and the function that builds it."""

    name: str
    build: Callable[[int, tuple[int, int, int]], nn.Module]


def _user_factory(name: str) -> Callable[[int, tuple[int, int, int]], nn.Module]:
    module_name, _, function_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, but also a SyntaxError or any failure in the user's module
        raise InputError(f"cannot import module {module_name!r} of architecture {name!r}: {type(error).__name__}: {error}") from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"module {module_name!r} has no callable {function_name!r}")

    def build(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
        try:
            model = factory(num_classes=num_classes, in_channels=input_shape[0])
        except TypeError as error:
            raise InputError(f"factory {name!r} must accept num_classes= and in_channels=: {error}") from None
        if not isinstance(model, nn.Module):
            raise InputError(f"factory {name!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    return build


def parse_arch(name: str) -> ArchSpec:
    """Parse an architecture name into a builder, with an error listing the valid names."""
    if ":" in name:
        return ArchSpec(name, _user_factory(name))
    match = _NAME.match(name)
    valid = f"valid: {', '.join(BUILTIN_ARCHS)} (optionally with a width suffix, e.g. resnet20-64, vgg16-16), or package.module:factory"
    if not match:
        raise InputError(f"unknown architecture {name!r}; {valid}")
    family, depth, width, mlp, hidden = match.groups()
    if (width is not None and int(width) < 1) or (hidden is not None and int(hidden) < 1):
        raise InputError(f"architecture {name!r}: the width suffix must be at least 1")
    if mlp:
        size = int(hidden) if hidden else 256
        return ArchSpec(name, lambda n, shape: MLP(shape[0] * shape[1] * shape[2], size, n))
    depth_value = int(depth)
    if family == "resnet" and depth_value in RESNET_DEPTHS:
        base = int(width) if width else 16
        return ArchSpec(name, lambda n, shape: CifarResNet(depth_value, base, n, shape[0]))
    if family == "resnet" and depth_value in IMAGENET_RESNET_STAGES:
        base = int(width) if width else 64
        stages = IMAGENET_RESNET_STAGES[depth_value]
        return ArchSpec(name, lambda n, shape: CifarResNet(depth_value, base, n, shape[0], stages=stages))
    if family == "vgg" and depth_value in VGG_CONFIGS:
        base = int(width) if width else 64
        return ArchSpec(name, lambda n, shape: CifarVGG(depth_value, base, n, shape[0]))
    raise InputError(f"unknown architecture {name!r}; {valid}")


def build_model(name: str, num_classes: int, input_shape: tuple[int, int, int], init_seed: int) -> nn.Module:
    """Build a model with parameters drawn from ``init_seed`` alone.

    torch layers initialise from the global generator; it is forked here so that the seed decides
    the initial weights and nothing outside this call sees or changes that generator's state.
    """
    spec = parse_arch(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return spec.build(num_classes, input_shape)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
