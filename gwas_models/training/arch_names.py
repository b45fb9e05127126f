"""Architecture names, read without importing torch.

A name says which model to build: a built-in family with an optional width suffix (``resnet20``,
``resnet20-64``, ``vgg16-16``, ``mlp-512``), ``timm:NAME`` or ``package.module:factory``. Reading it
is cheap, so that a mistyped name is reported at once, before any dataset or framework is loaded;
:mod:`gwas_models.training.models` builds what it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gwas_models.errors import InputError

RESNET_DEPTHS = (20, 32, 44, 56, 110)
# Stages of basic blocks of the ImageNet ResNets, trained on small images with a 3x3 stem.
IMAGENET_RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
# Channels of each VGG layer as multiples of the base width, "M" for max pooling.
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}
BUILTIN_ARCHS = tuple(f"resnet{d}" for d in RESNET_DEPTHS + tuple(IMAGENET_RESNET_STAGES)) + tuple(f"vgg{d}" for d in VGG_CONFIGS) + ("mlp",)
#: Prefix of the names of timm models.
TIMM_PREFIX = "timm:"
_NAME = re.compile(r"^(resnet|vgg)(\d+)(?:-(\d+))?$|^(mlp)(?:-(\d+))?$")
_VALID = (
    f"valid: {', '.join(BUILTIN_ARCHS)} (optionally with a width suffix, e.g. resnet20-64, vgg16-16), "
    "timm:NAME (any timm model), or package.module:factory"
)
_DEFAULT_WIDTH = {"resnet": 16, "imagenet_resnet": 64, "vgg": 64, "mlp": 256}


@dataclass(frozen=True)
class ArchName:
    """What an architecture name says.

    Attributes
    ----------
    name : str
    family : {"resnet", "imagenet_resnet", "vgg", "mlp", "timm", "factory"}
    depth : int or None
        Layers of a ResNet or VGG.
    width : int or None
        Base width of a built-in family (hidden units of the MLP), the default when not suffixed.
    """

    name: str
    family: str
    depth: int | None = None
    width: int | None = None


def parse_arch_name(name: str) -> ArchName:
    """Read an architecture name; :class:`InputError` listing the valid names when it is none.

    ``timm:`` and ``package.module:factory`` names are taken as they are: whether timm knows the
    model, or the factory exists, is found when it is built.
    """
    if name.startswith(TIMM_PREFIX):
        return ArchName(name, "timm")
    if ":" in name:
        return ArchName(name, "factory")
    match = _NAME.match(name)
    if not match:
        raise InputError(f"unknown architecture {name!r}; {_VALID}")
    family, depth, width, mlp, hidden = match.groups()
    suffix = hidden if mlp else width
    if suffix is not None and int(suffix) < 1:
        raise InputError(f"architecture {name!r}: the width suffix must be at least 1")
    if mlp:
        return ArchName(name, "mlp", None, int(hidden) if hidden else _DEFAULT_WIDTH["mlp"])
    depth_value = int(depth)
    if family == "resnet" and depth_value in IMAGENET_RESNET_STAGES:
        family = "imagenet_resnet"
    elif not ((family == "resnet" and depth_value in RESNET_DEPTHS) or (family == "vgg" and depth_value in VGG_CONFIGS)):
        raise InputError(f"unknown architecture {name!r}; {_VALID}")
    return ArchName(name, family, depth_value, int(width) if width else _DEFAULT_WIDTH[family])
