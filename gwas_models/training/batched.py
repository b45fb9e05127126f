"""K replicate runs of one architecture trained as one batched model.

A small model leaves most of a GPU idle, and one process per run under-uses even a 2-core CPU.
:func:`batch_replicates` turns K ordinary models of a built-in architecture (each initialised from
its own run's init seed) into one :class:`BatchedModel` in the grouped-convolution form:

* the K inputs travel side by side in the channel axis, (B, K x C, H, W), channels-last;
* each ``Conv2d`` becomes one convolution with ``groups = K x groups``, so replicate k's output
  channels see only its own input channels;
* each ``BatchNorm2d`` covers K x C channels: every replicate keeps its own batch statistics and
  running statistics;
* each ``Linear`` becomes a batched matrix product over (K, out, in).

Every operation acts on each replicate's slice alone, so replicate k computes what model k would
compute alone, up to rounding (in float64, parameters and logits agree to about 1e-14 after two
epochs of resnet20 or vgg11-16 on digits).
:func:`train_replicates` trains the K replicates with the loop of
:func:`gwas_models.training.train.train`: each with its own order and augmentation generators, the
same learning-rate schedule, and an optimizer whose every update is elementwise, so that no
replicate's step depends on another's.

The other form, ``torch.func.stack_module_state`` + ``functional_call`` + ``vmap``, is generic (it
would take user factories) and does keep per-replicate batch-norm running statistics, but it is the
slower one on a CPU. Forward and backward of resnet20 on digits, K = 8, batch 64, one thread, in
throughput against the 8 models one after another: ``vmap`` 0.95x, grouped 1.25x, grouped and
channels-last 1.45x. Only the grouped, channels-last form is built.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gwas_models.errors import InputError
from gwas_models.training.arch_names import parse_arch_name
from gwas_models.training.models import MLP, CifarResNet, CifarVGG, _BasicBlock, _PoolIfLarger, build_model
from gwas_models.training.train import (  # the loop is train.py's, re-exported here
    DeviceData,
    SeedStreams,
    TrainConfig,
    evaluate_replicates,
    make_optimizer,
    train_replicates,
)

__all__ = [
    "BatchedModel",
    "available_memory",
    "CannotBatch",
    "batch_replicates",
    "build_batched",
    "can_batch",
    "choose_n_replicates",
    "evaluate_replicates",
    "train_replicates",
    "unbatch",
]

#: Architecture families (see :func:`gwas_models.training.arch_names.parse_arch_name`) that batch.
BATCHABLE_FAMILIES = ("resnet", "imagenet_resnet", "vgg", "mlp")
# Model classes whose forward the batched form reproduces, and layers without parameters that act
# on each channel (or each replicate) alone.
_ROOTS = (CifarResNet, CifarVGG, MLP)
_CONTAINERS = (nn.Sequential, _BasicBlock)
_STATELESS = (nn.ReLU, nn.Identity, _PoolIfLarger)


class CannotBatch(InputError):
    """A model that :func:`batch_replicates` cannot turn into a batched model (train it alone)."""


def can_batch(arch: str) -> bool:
    """Whether replicates of architecture ``arch`` can be trained as one batched model.

    True for every built-in (ResNets, VGGs, MLP, any width); False for ``timm:`` models and user
    factories, whose layers are not known in advance.
    """
    return parse_arch_name(arch).family in BATCHABLE_FAMILIES


class _BatchedLinear(nn.Module):
    """K linear layers applied as one batched matrix product.

    ``grouped_input`` says how the input holds the replicates: (B, K x in) with replicate k in
    features k x in .. (k + 1) x in (after the convolutional trunk), or (K, B, in) (the MLP).
    The output is (K, B, out) either way.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, grouped_input: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)  # (K, out, in)
        self.bias = None if bias is None else nn.Parameter(bias)  # (K, out)
        self.grouped_input = grouped_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_replicates, _, in_features = self.weight.shape
        if self.grouped_input:
            x = x.reshape(x.shape[0], n_replicates, in_features).transpose(0, 1)
        out = torch.bmm(x, self.weight.transpose(1, 2))
        return out if self.bias is None else out + self.bias[:, None, :]


def _structure(model: nn.Module) -> list[tuple]:
    modules = [(name, type(m)) for name, m in model.named_modules()]
    tensors = [(name, tuple(t.shape), t.dtype, t.device) for name, t in model.state_dict().items()]
    return modules + tensors


def _check_batchable(models: Sequence[nn.Module]) -> None:
    if not models:
        raise CannotBatch("models: no models to batch", parameter="models")
    root = models[0]
    if type(root) not in _ROOTS:
        raise CannotBatch(f"cannot batch a {type(root).__name__}: only the built-in ResNets, VGGs and MLP batch")
    for name, module in root.named_modules():
        if type(module) not in _ROOTS + _CONTAINERS + _STATELESS + (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Flatten):
            raise CannotBatch(f"cannot batch a {type(root).__name__} holding a {type(module).__name__} ({name or 'root'})")
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
            raise CannotBatch(f"cannot batch a model with hooks ({name or 'root'}): the batched model would not call them")
        if type(module) is nn.Conv2d and module.padding_mode != "zeros":
            raise CannotBatch(f"cannot batch a convolution with padding_mode {module.padding_mode!r} ({name})")
        if type(module) is nn.BatchNorm2d and not (module.affine and module.track_running_stats):
            raise CannotBatch(f"cannot batch a batch norm without affine parameters or running statistics ({name})")
    structure = _structure(root)
    for index, model in enumerate(models[1:], start=1):
        if type(model) is not type(root) or _structure(model) != structure:
            raise CannotBatch(f"models: model {index} differs from model 0 in layers, shapes, dtype or device", parameter="models")


def _batched_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    first, k = convs[0], len(convs)
    out = nn.Conv2d(
        first.in_channels * k,
        first.out_channels * k,
        first.kernel_size,
        stride=first.stride,
        padding=first.padding,
        dilation=first.dilation,
        groups=first.groups * k,
        bias=first.bias is not None,
        device=first.weight.device,
        dtype=first.weight.dtype,
    )
    with torch.no_grad():
        # Group j of the batched convolution is group j mod groups of replicate j // groups.
        out.weight.copy_(torch.cat([c.weight for c in convs]))
        if first.bias is not None:
            out.bias.copy_(torch.cat([c.bias for c in convs]))
    return out


def _batched_norm(norms: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    first = norms[0]
    out = nn.BatchNorm2d(
        first.num_features * len(norms), eps=first.eps, momentum=first.momentum, device=first.weight.device, dtype=first.weight.dtype
    )
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(out, name).copy_(torch.cat([getattr(n, name) for n in norms]))
        # One counter for all: it only matters with momentum=None, and then every replicate counts alike.
        out.num_batches_tracked.copy_(first.num_batches_tracked)
    return out


def _batched_leaf(modules: list[nn.Module], grouped: bool) -> nn.Module:
    first = modules[0]
    if type(first) is nn.Conv2d:
        return _batched_conv(modules)
    if type(first) is nn.BatchNorm2d:
        return _batched_norm(modules)
    if type(first) is nn.Linear:
        bias = None if first.bias is None else torch.stack([m.bias.detach() for m in modules]).clone()
        return _BatchedLinear(torch.stack([m.weight.detach() for m in modules]).clone(), bias, grouped)
    if type(first) is nn.Flatten:
        if grouped or first.start_dim < 0:
            raise CannotBatch("cannot batch an nn.Flatten inside a convolutional model")
        # The replicate axis comes first: flatten each replicate's examples.
        return nn.Flatten(first.start_dim + 1, first.end_dim)
    return copy.deepcopy(first)


class BatchedModel(nn.Module):
    """K replicates of one architecture as one module; build it with :func:`batch_replicates`.

    Attributes
    ----------
    n_replicates : int
        K.
    body : nn.Module
        The model with every layer batched (grouped convolutions, K x C-channel batch norms,
        batched linear layers).
    """

    def __init__(self, body: nn.Module, template: nn.Module, n_replicates: int, grouped: bool) -> None:
        super().__init__()
        self.body = body
        self.n_replicates = n_replicates
        self.grouped = grouped
        # An ordinary model on the meta device (no storage), the skeleton of replicate(k); kept out
        # of the module tree so that it has no parameters of the batched model.
        object.__setattr__(self, "_template", template)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of every replicate on its own inputs.

        Parameters
        ----------
        x : tensor (K, B, c, h, w)
            Replicate k sees only ``x[k]``; for one set of inputs shared by all, pass
            ``x.expand(K, *x.shape)``.

        Returns
        -------
        tensor (K, B, n_classes)
        """
        wrong_rank = x.dim() != 5 if self.grouped else x.dim() < 3
        if wrong_rank or x.shape[0] != self.n_replicates:
            expected = "batch, channels, height, width" if self.grouped else "batch, ..."
            raise InputError(f"x: expected a tensor (n_replicates={self.n_replicates}, {expected}), got shape {tuple(x.shape)}", parameter="x")
        if self.grouped:
            k, b, c, h, w = x.shape
            # (K, B, C, H, W) -> (B, H, W, K x C) in memory, seen as (B, K x C, H, W): channels-last.
            x = x.permute(1, 3, 4, 0, 2).reshape(b, h, w, k * c).permute(0, 3, 1, 2)
        return self.body(x)

    def replicate(self, k: int) -> nn.Module:
        """A standalone ordinary model holding copies of replicate ``k``'s parameters and buffers.

        It is in the batched model's train/eval mode, on its device, with its dtype.
        """
        if not 0 <= k < self.n_replicates:
            raise InputError(f"k must lie in 0..{self.n_replicates - 1}, got {k}", parameter="k")
        model = copy.deepcopy(self._template)
        state = {}
        for name, _ in model.named_modules():
            batched = self.body.get_submodule(name)
            for key, value in _replicate_tensors(batched, k, self.n_replicates).items():
                state[f"{name}.{key}" if name else key] = value
        model.load_state_dict(state, assign=True)
        return model.train(self.training)


def _replicate_tensors(module: nn.Module, k: int, n_replicates: int) -> dict[str, torch.Tensor]:
    """Replicate ``k``'s own parameters and buffers of one batched layer, copied, contiguous."""
    if isinstance(module, _BatchedLinear):
        tensors = {"weight": module.weight[k]}
        if module.bias is not None:
            tensors["bias"] = module.bias[k]
    elif type(module) in (nn.Conv2d, nn.BatchNorm2d):
        tensors = {}
        for name, value in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            tensors[name] = value if name == "num_batches_tracked" else value.chunk(n_replicates)[k]
    else:
        return {}
    return {name: value.detach().clone(memory_format=torch.contiguous_format) for name, value in tensors.items()}


def batch_replicates(models: Sequence[nn.Module]) -> BatchedModel:
    """One batched model of K ordinary models of the same built-in architecture.

    Parameters
    ----------
    models : sequence of K nn.Module
        Models of one built-in architecture (same layers, shapes, dtype and device), e.g. from
        :func:`~gwas_models.training.models.build_model` with each run's init seed. They are not
        changed; the batched model holds copies of their parameters and buffers.

    Returns
    -------
    BatchedModel
        In the mode (train/eval) of ``models[0]``; replicate k starts from ``models[k]``.

    Raises
    ------
    CannotBatch
        For a model other than the built-in ResNets, VGGs and MLP (timm models, user factories),
        a model with hooks, or models that differ.
    """
    models = list(models)
    _check_batchable(models)
    root = models[0]
    grouped = type(root) is not MLP
    body = copy.deepcopy(root)
    named = [dict(m.named_modules()) for m in models]
    for name, module in root.named_modules():
        if name and not isinstance(module, _ROOTS + _CONTAINERS):
            parent, _, child = name.rpartition(".")
            setattr(body.get_submodule(parent), child, _batched_leaf([n[name] for n in named], grouped))
    if grouped:
        body = body.to(memory_format=torch.channels_last)
    return BatchedModel(body, copy.deepcopy(root).to("meta"), len(models), grouped).train(root.training)


def unbatch(model: BatchedModel) -> list[nn.Module]:
    """The K replicates as ordinary models (copies), in order: the inverse of :func:`batch_replicates`."""
    return [model.replicate(k) for k in range(model.n_replicates)]


def build_batched(
    arch: str, n_classes: int, input_shape: tuple[int, int, int], streams: Sequence[SeedStreams], device: torch.device | str = "cpu"
) -> BatchedModel:
    """The batched model of ``arch`` whose replicate k starts as run ``streams[k]`` would alone.

    Raises
    ------
    CannotBatch
        When ``arch`` is not a built-in (see :func:`can_batch`).
    """
    if not can_batch(arch):
        raise CannotBatch(f"arch: {arch!r} cannot be batched; only the built-in ResNets, VGGs and MLP can", parameter="arch")
    models = [build_model(arch, n_classes, input_shape, s.init).to(device) for s in streams]
    return batch_replicates(models)


# ----------------------------------------------------------------------------------------------
# How many replicates fit
# ----------------------------------------------------------------------------------------------

#: Share of the free device memory (CUDA) or available RAM (CPU, MPS) that ``auto`` plans to use:
#: the estimate misses allocator fragmentation and the recorder's own buffers, and RAM is shared.
MEMORY_SAFETY = {"cuda": 0.8, "cpu": 0.5, "mps": 0.5}
#: Largest K that ``auto`` picks on a CPU: on two cores the throughput stops growing by K = 4-8
#: (``benchmarks/collect_speed.py``), and a larger K only delays the first run written.
CPU_MAX_REPLICATES = 8


def _trial_step(model: BatchedModel, data: DeviceData, config: TrainConfig) -> None:
    """One training step and the most demanding epoch-end pass, on the first examples.

    The epoch-end pass is eval mode over ``eval_batch_size`` examples with input gradients, as the
    recorder's VoG computes them; a trial measures the memory that training the batch needs.
    """
    k = model.n_replicates
    optimizer = make_optimizer(model, config)
    x = data.x_train[: config.batch_size]
    y = data.y_train[: config.batch_size]
    model.train()
    logits = model(x.expand(k, *x.shape).contiguous())
    F.cross_entropy(logits.flatten(0, 1), y.repeat(k), reduction="sum").backward()
    optimizer.step()
    del logits
    model.eval()
    x = data.x_train[: config.eval_batch_size]
    inputs = x.expand(k, *x.shape).contiguous().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(inputs).logsumexp(2).sum(), inputs)
    del grad
    model.train()


def _saved_bytes(model: BatchedModel, data: DeviceData, config: TrainConfig) -> int:
    """Bytes of the tensors autograd keeps for the backward pass in a trial step, at most.

    A device-independent stand-in for the peak memory of a step where none can be measured
    (CPU, MPS): each tensor storage counted once, parameters not counted.
    """
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    peak = 0
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal peak
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
            peak = max(peak, sum(saved.values()))
        return tensor

    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        saved.pop(tensor.untyped_storage().data_ptr(), None)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        _trial_step(model, data, config)
    return peak


def _state_bytes(model: BatchedModel, config: TrainConfig) -> int:
    # Parameters, their gradients and the optimizer's state (SGD: momentum; AdamW: two moments).
    n_states = 2 if config.optimizer == "adamw" else 1
    return sum(p.numel() * p.element_size() for p in model.parameters()) * (2 + n_states)


def _trial_bytes(arch: str, data: DeviceData, config: TrainConfig, device: torch.device, k: int) -> int:
    streams = [SeedStreams(seed) for seed in range(k)]
    model = build_batched(arch, data.n_classes, tuple(data.x_train.shape[1:]), streams, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        _trial_step(model, data, config)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before + _param_bytes(model)
        del model
        torch.cuda.empty_cache()
        return peak
    return _saved_bytes(model, data, config) + _state_bytes(model, config)


def _param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def available_memory(device: torch.device) -> int | None:
    """Bytes that training may still take on ``device``, None when it cannot be found.

    CUDA: free device memory (``torch.cuda.mem_get_info``). CPU: ``MemAvailable`` of
    ``/proc/meminfo``, else psutil's available memory where psutil is installed. MPS: the
    recommended working set less what torch holds.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps" and hasattr(torch.mps, "recommended_max_memory"):
        return int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def choose_n_replicates(
    arch: str, data: DeviceData, config: TrainConfig, device: torch.device | str, n_runs: int
) -> int:
    """The largest number of replicates, at most ``n_runs``, whose training fits in memory.

    Two trial steps, with 1 and 2 replicates (a training step at ``batch_size`` and an eval pass
    with input gradients at ``eval_batch_size``), give the memory of one more replicate and the
    memory that does not grow with K; K is what fits in :data:`MEMORY_SAFETY` of the available
    memory (:func:`available_memory`). On CUDA the trials' peak allocation is measured; elsewhere
    it is estimated from the tensors autograd saves plus parameters, gradients and optimizer state.

    Parameters
    ----------
    arch : str
        A built-in architecture name; any other gives 1 (it is trained one run at a time).
    data : DeviceData
        The data, already on ``device`` (the trials run on it).
    config : TrainConfig
    device : torch.device or str
    n_runs : int
        Runs still to train: K never exceeds it.

    Returns
    -------
    int
        At least 1. On a CPU a larger K is not always faster: K is also at most
        :data:`CPU_MAX_REPLICATES`. Where the available memory cannot be found, K is
        ``n_runs`` (at most :data:`CPU_MAX_REPLICATES` on a CPU).
    """
    if n_runs < 1:
        raise InputError(f"n_runs must be at least 1, got {n_runs}", parameter="n_runs")
    device = torch.device(device)
    if device.type == "cpu":
        n_runs = min(n_runs, CPU_MAX_REPLICATES)
    if n_runs == 1 or not can_batch(arch):
        return 1
    available = available_memory(device)
    if available is None:
        return n_runs
    one = _trial_bytes(arch, data, config, device, 1)
    two = _trial_bytes(arch, data, config, device, 2)
    per_replicate = max(two - one, 1)
    fixed = max(one - per_replicate, 0)
    budget = available * MEMORY_SAFETY.get(device.type, 0.5) - fixed
    return int(max(1, min(n_runs, budget // per_replicate)))
