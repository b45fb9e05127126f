"""Any ``timm`` architecture as ``timm:NAME``, sized for small images, never with pretrained weights.

``timm.create_model(NAME, pretrained=False, num_classes=..., in_chans=..., **defaults, **options)``
builds the model. The defaults make the ImageNet-sized architectures usable on 8x8 to 32x32 inputs:
``img_size`` (the input's height and width) for models whose constructor takes it, and for models
whose constructor takes ``patch_size`` (vision transformers, and the patch stems of ConvNeXt and the
like) the patch size of :func:`default_patch_size`. The user's ``options`` override the defaults.

Which keyword arguments a model takes is found out by building it: timm's entrypoints pass their
``**kwargs`` down to the model class, whose constructor rejects an unknown keyword with a
``TypeError`` as its arguments are bound, before any layer exists or any random number is drawn.
A rejected default is dropped and the call repeated (so the model is built once); a rejected user
option is an :class:`~gwas_models.errors.InputError` naming it. Which defaults an architecture
takes is remembered per process, so that :func:`timm_description` can say what a build passed.
A model class that takes ``**kwargs`` and ignores the ones it does not know (rare in timm) cannot
be caught this way: it builds, and the ignored option has no effect.

timm is imported only here, and only when a ``timm:`` model is built or described.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Mapping

import torch
from torch import nn

from gwas_models.errors import InputError

PREFIX = "timm:"
# Defaults that only some constructors take: dropped, not reported, when a model rejects them.
OPTIONAL_DEFAULTS = ("img_size", "patch_size")
# Options the caller may not set: the dataset decides the first two, and weights are never loaded
# (no downloads, and a run's initial weights come from its seed alone).
_RESERVED = {
    "num_classes": "comes from the dataset",
    "in_chans": "comes from the dataset",
    "pretrained": "is always False (weights come from the seed)",
    "pretrained_cfg": "would select pretrained weights",
    "pretrained_cfg_overlay": "would select pretrained weights",
    "checkpoint_path": "would load weights",
    "cache_dir": "would load weights",
}
# Per timm architecture, whether its constructor took each optional default, as found in this process.
_TAKES_DEFAULT: dict[str, dict[str, bool]] = {}
# "unexpected keyword argument": the class does not take it; "multiple values for keyword
# argument": the entrypoint fixes it itself (e.g. the patch size of resmlp_12_224).
_REJECTION = re.compile(r"unexpected keyword argument|multiple values for keyword argument")
_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def default_patch_size(image_size: tuple[int, int]) -> int:
    """The largest of 4, 2 and 1 that divides both sides and leaves at least 4x4 tokens.

    Parameters
    ----------
    image_size : (height, width)

    Returns
    -------
    int
        2 for 8x8 digits (4x4 tokens), 4 for 32x32 CIFAR (8x8 tokens), 1 when nothing larger fits.
    """
    for patch in (4, 2):
        if all(side % patch == 0 and side // patch >= 4 for side in image_size):
            return patch
    return 1


def check_name(name: str) -> None:
    """Raise an :class:`InputError` listing close matches unless timm registers ``name``."""
    import timm

    # A name with a source ("hf-hub:...") would read a configuration from the Hub or a folder.
    if ":" not in name and name and timm.is_model(name):
        return
    matches = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(matches)}" if matches else "see timm.list_models() for the names"
    raise InputError(f"unknown timm model {name!r}; {hint}")


def _check_options(name: str, options: Mapping[str, Any]) -> None:
    for key in options:
        if not isinstance(key, str) or not key.isidentifier():
            raise InputError(f"options: {key!r} is not a keyword argument name", parameter="options")
        if key in _RESERVED:
            raise InputError(f"options: {key!r} cannot be set for timm model {name!r}: it {_RESERVED[key]}", parameter="options")


def _requested_kwargs(name: str, num_classes: int, input_shape: tuple[int, int, int], options: Mapping[str, Any]) -> dict[str, Any]:
    """Everything to pass to ``timm.create_model`` but ``pretrained``, before any rejection."""
    height, width = input_shape[1], input_shape[2]
    image_size: int | tuple[int, int] = height if height == width else (height, width)
    defaults = {"img_size": image_size, "patch_size": default_patch_size((height, width))}
    takes = _TAKES_DEFAULT.get(name, {})
    kwargs = {"num_classes": num_classes, "in_chans": input_shape[0]}
    kwargs.update({key: value for key, value in defaults.items() if takes.get(key, True)})
    kwargs.update(options)
    return kwargs


def _rejected_keyword(error: TypeError, kwargs: Mapping[str, Any]) -> str | None:
    """The keyword argument that a ``TypeError`` from timm's entrypoint or the model class says it
    does not take, if any."""
    message = str(error)
    if not _REJECTION.search(message):
        return None
    named = [key for key in _QUOTED.findall(message) if key in kwargs]
    return named[0] if named else None


def _create(name: str, kwargs: dict[str, Any], options: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Build, dropping optional defaults the constructor rejects; return the model and what built it."""
    import timm

    kwargs = dict(kwargs)
    # A rejection happens before any random draw, but restore the generator regardless, so that
    # the weights are those of a first-time success.
    state = torch.random.get_rng_state()
    while True:
        torch.random.set_rng_state(state)
        try:
            model = timm.create_model(name, pretrained=False, **kwargs)
        except TypeError as error:
            key = _rejected_keyword(error, kwargs)
            if key is None:
                raise _build_error(name, kwargs, options, error) from None
            if key in options:
                raise InputError(f"options: timm model {name!r} does not take {key!r}", parameter="options") from None
            if key not in OPTIONAL_DEFAULTS:  # num_classes or in_chans: the model cannot be used here
                raise InputError(f"timm model {name!r} does not take {key!r}, which gwas-models needs") from None
            _TAKES_DEFAULT.setdefault(name, {})[key] = False
            del kwargs[key]
        except Exception as error:  # an option of the wrong type or size, or an input too small
            raise _build_error(name, kwargs, options, error) from None
        else:
            _TAKES_DEFAULT.setdefault(name, {}).update({key: True for key in OPTIONAL_DEFAULTS if key in kwargs})
            return model, kwargs


def _build_error(name: str, kwargs: Mapping[str, Any], options: Mapping[str, Any], error: BaseException) -> InputError:
    """A failed build, naming what was passed: the options, and the defaults they may override."""
    defaults = {key: value for key, value in kwargs.items() if key in OPTIONAL_DEFAULTS and key not in options}
    with_defaults = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
    if options:
        given = ", ".join(f"{key}={value!r}" for key, value in options.items())
        also = f" (and defaults {with_defaults})" if defaults else ""
        return InputError(f"options: timm model {name!r} cannot be built with {given}{also}: {_one_line(error)}", parameter="options")
    if defaults:
        return InputError(f"timm model {name!r} cannot be built with defaults {with_defaults} (options override them): {_one_line(error)}")
    return InputError(f"timm model {name!r} cannot be built for this input: {_one_line(error)}")


def build_timm(name: str, num_classes: int, input_shape: tuple[int, int, int], options: Mapping[str, Any]) -> nn.Module:
    """Build timm model ``name`` (no pretrained weights) for ``input_shape`` (channels, height, width).

    Parameters are drawn from torch's global generator: the caller seeds it (see
    :func:`gwas_models.training.models.build_model`).
    """
    _check_options(name, options)
    check_name(name)
    model, _ = _create(name, _requested_kwargs(name, num_classes, input_shape, options), options)
    return model


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively, so that the arguments read back from JSON as they were written."""
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def timm_description(name: str, options: Mapping[str, Any], num_classes: int, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """What provenance records of a timm model: timm's version, the name and every argument passed.

    ``timm.create_model(description["timm_model"], **description["model_args"])`` rebuilds the
    architecture. Which defaults a model takes is known from building it in this process; when that
    is not known, it is built once (seed 0, the global generator untouched) to find out.
    """
    import timm

    _check_options(name, options)
    check_name(name)
    known = _TAKES_DEFAULT.get(name, {})
    if any(key not in known for key in OPTIONAL_DEFAULTS if key not in options):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _create(name, _requested_kwargs(name, num_classes, input_shape, options), options)
    kwargs = {"pretrained": False, **_requested_kwargs(name, num_classes, input_shape, options)}
    return {"timm_version": timm.__version__, "timm_model": name, "model_args": _plain(kwargs)}
