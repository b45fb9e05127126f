"""Per-example gradients: parameter-gradient norms (GraNd) and input gradients (VoG).

Both run the model in eval mode (batch norm uses its running statistics), so an example's
gradient does not depend on the other examples of its batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

# Upper bound on per-example gradient elements held at once (float32: 4 bytes each).
_GRADIENT_ELEMENTS_PER_CHUNK = 50_000_000


def per_example_grad_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """‖∇θ cross-entropy‖₂ of every example over all trainable parameters, in eval mode.

    The norms are taken layer by layer from one ordinary backward pass (see
    :func:`layerwise_grad_norms`), several times faster than materialising every example's
    gradient. The whole model goes through :func:`vmap_grad_norms` instead when that path cannot
    decompose it exactly (a parameter shared between modules or calls, a module returning several
    tensors, a parameter used outside its module's forward) and when the model itself owns
    parameters (a vision transformer's class token and position embedding): their per-example
    gradients need the whole model run again per example, which costs more than ``vmap`` does
    (one thread: tiny ViT on 8x8 digits about 1,600 v 3,300 examples/s; a 2.7M-parameter ViT on
    32x32, 25 v 53).

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the call; its mode is restored afterwards.
    inputs : tensor (n, c, h, w), on the model's device
    targets : int64 tensor (n,)

    Returns
    -------
    tensor (n,) on the same device, float32 (float64 for a float64 model: a float64 run's
    ``grand`` keeps float64 precision).
    """
    if _supports_layerwise(model) and not _own_trainable(model):
        return layerwise_grad_norms(model, inputs, targets)
    return vmap_grad_norms(model, inputs, targets)


def _norm_dtype(values: torch.Tensor) -> torch.dtype:
    """Dtype of the squared norms: at least float32 (half-precision sums lose examples' norms),
    float64 for a float64 model."""
    return torch.promote_types(values.dtype, torch.float32)


def _own_trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters(recurse=False) if p.requires_grad]


def _supports_layerwise(model: nn.Module) -> bool:
    """Whether no trainable parameter belongs to two modules (tied weights need the whole model).

    The rest of what the layer-wise path needs can only be seen while the model runs; see
    :func:`layerwise_grad_norms`.
    """
    seen: set[int] = set()
    for module in model.modules():
        for parameter in _own_trainable(module):
            if id(parameter) in seen:
                return False
            seen.add(id(parameter))
    return True


def _is_plain_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward


def _is_plain_conv(module: nn.Module) -> bool:
    # A subclass that changes the computation (weight standardisation, dynamic "same" padding)
    # overrides forward or _conv_forward: it is then handled as any other module.
    return (
        isinstance(module, nn.Conv2d)
        and type(module).forward is nn.Conv2d.forward
        and type(module)._conv_forward is nn.Conv2d._conv_forward
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def _is_plain_batch_norm(module: nn.Module) -> bool:
    # With running statistics, eval-mode batch norm is a per-channel affine map of the input.
    return (
        isinstance(module, nn.BatchNorm2d)
        and type(module).forward is nn.BatchNorm2d.forward
        and module.running_mean is not None
        and module.running_var is not None
    )


def _squared_norm_of_outer(grad_out: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Per-example ‖Σ_p grad_out[p] ⊗ activations[p]‖² for (n, P, O) and (n, P, D) inputs.

    P is the positions that share the weight: a convolution's output pixels, a transformer's
    tokens. Either forms the (O, D) gradient per example or, when positions are few, uses the
    identity ‖Gᵀ A‖² = Σ_pq (A Aᵀ)_pq (G Gᵀ)_pq ("ghost norm"), whichever holds fewer numbers.
    """
    positions, out_dim, in_dim = grad_out.shape[1], grad_out.shape[2], activations.shape[2]
    if positions * positions < out_dim * in_dim:
        gram_a = activations @ activations.transpose(1, 2)
        gram_g = grad_out @ grad_out.transpose(1, 2)
        return (gram_a * gram_g).sum(dim=(1, 2))
    return (grad_out.transpose(1, 2) @ activations).pow(2).sum(dim=(1, 2))


@dataclass
class _Call:
    """One call of a parameter-owning module in the forward pass: its inputs and output."""

    module: nn.Module
    args: tuple
    kwargs: dict
    output: torch.Tensor


class _CallRecorder:
    """Forward hooks on every module that owns trainable parameters: their calls and output gradients."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[_Call] = []
        self.grads: dict[int, torch.Tensor] = {}
        self.recording = True
        self.unsupported = False
        owners = [m for m in model.modules() if _own_trainable(m)]
        self.handles = [m.register_forward_hook(self._hook, with_kwargs=True) for m in owners]

    def _hook(self, module: nn.Module, args: tuple, kwargs: dict, output) -> None:
        if not self.recording:  # a module's forward being run again per example
            return
        if not isinstance(output, torch.Tensor) or output.dim() == 0:
            self.unsupported = True
            return
        index = len(self.calls)
        self.calls.append(_Call(module, _detached(args), _detached(kwargs), output))
        if output.requires_grad:  # a frozen layer at the start of the network has nothing to record
            output.register_hook(lambda g, index=index: self.grads.__setitem__(index, g.detach()))

    def clear(self) -> None:
        self.calls.clear()
        self.grads.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


# Tolerance of the check that per-example gradients add up to the batch gradient, relative to the
# sum of the per-example norms (float32 rounding is about 1e-7 of that; a missed use of a
# parameter is of the order of its gradient).
_SUM_CHECK_RTOL = 1e-4
# Size of the first chunk, on which that check runs: small, so that it costs little, and odd, so
# that it is unlikely to equal a dimension of a tensor that is not per example.
_PROBE_SIZE = 7


def layerwise_grad_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per-example gradient norms from each layer's inputs and output gradients.

    One backward pass of the summed loss gives every module's output gradient per example (eval
    mode: examples do not interact). Each module that owns trainable parameters then gives its
    share of every example's squared norm:

    * ``Linear`` and ``Conv2d`` (grouped too): the per-example weight gradient is the sum over
      positions (pixels, tokens) of output gradient ⊗ input, whose squared norm is computed
      without forming the gradient where that is cheaper;
    * ``BatchNorm2d`` (eval mode): a per-channel affine map of the normalised input;
    * any other module (layer norm, layer scale, a ConvNeXt block's scale, a transformer's class
      token and position embedding): its forward is run again per example with ``torch.func``,
      differentiating with respect to its own parameters only, so that only those gradients
      are materialised.

    On a first chunk of a few examples the per-example gradients are checked to add up, parameter
    by parameter, to the ordinary batch gradient. A model where they do not (a parameter used
    outside its module's forward, say), a module called twice or returning several tensors, and
    one whose modules are called differently from chunk to chunk send the whole computation to
    :func:`vmap_grad_norms`.
    """
    was_training = model.training
    model.eval()
    recorder = _CallRecorder(model)
    norms: list[torch.Tensor] | None = []
    try:
        layout = None
        first = min(_PROBE_SIZE, chunk)
        starts = [0] + list(range(first, len(inputs), chunk))
        for start, stop in zip(starts, starts[1:] + [len(inputs)]):
            result = _chunk_squared_norms(model, recorder, inputs[start:stop], targets[start:stop], check=layout is None)
            if result is None or (layout is not None and result[1] != layout):
                norms = None
                break
            layout = result[1]
            norms.append(result[0].sqrt())
    finally:
        recorder.remove()
        model.train(was_training)
    if norms is None:
        return vmap_grad_norms(model, inputs, targets)
    return torch.cat(norms)


def _chunk_squared_norms(model: nn.Module, recorder: _CallRecorder, x: torch.Tensor, y: torch.Tensor, check: bool):
    """Squared norms (n,) of one chunk and the layout of its module calls, or None if not decomposable."""
    recorder.clear()
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        calls = recorder.calls
        # A module called twice shares its weights between calls: its per-example gradient is
        # the sum over calls, which per-call norms cannot give.
        if recorder.unsupported or len({id(c.module) for c in calls}) != len(calls) or any(c.output.shape[0] != len(x) for c in calls):
            return None
        params = [p for p in model.parameters() if p.requires_grad]
        try:
            batch_grads = torch.autograd.grad(loss, params, allow_unused=True)
        except RuntimeError:
            # A model that keeps part of one call's graph for the next (timm's TinyViT caches
            # its attention biases in eval mode) cannot be differentiated chunk after chunk.
            return None
    squared = torch.zeros(len(x), device=x.device, dtype=_norm_dtype(loss))
    sums: dict[int, torch.Tensor] = {}
    scale = 0.0
    recorder.recording = False
    try:
        for index, call in enumerate(calls):
            if index in recorder.grads:
                terms = _module_terms(call, recorder.grads[index], check)
                if terms is None:
                    return None
                module_squared, module_sums = terms
                squared += module_squared
                sums.update(module_sums)
                scale += float(module_squared.sqrt().sum()) if check else 0.0
    finally:
        recorder.recording = True
    if check and not _adds_up(params, batch_grads, sums, scale):
        return None
    layout = tuple((id(c.module), _batched_mask(c, len(x))) for c in calls)
    return squared, layout


def _batched_mask(call: _Call, n: int) -> tuple[bool, ...]:
    """Which of a call's inputs (flattened) are per example: tensors whose first dimension is n."""
    leaves, _ = tree_flatten((call.args, call.kwargs))
    return tuple(isinstance(leaf, torch.Tensor) and leaf.dim() > 0 and leaf.shape[0] == n for leaf in leaves)


def _detached(tree):
    return tree_map(lambda value: value.detach() if isinstance(value, torch.Tensor) else value, tree)


def _adds_up(params: list[torch.Tensor], batch_grads: tuple, sums: dict[int, torch.Tensor], scale: float) -> bool:
    """Whether the per-example gradients summed over the batch give the batch gradient of every parameter."""
    error = 0.0
    for parameter, batch_grad in zip(params, batch_grads):
        expected = torch.zeros_like(parameter) if batch_grad is None else batch_grad
        got = sums.get(id(parameter), torch.zeros_like(parameter))
        error += float((got.to(expected.dtype) - expected).pow(2).sum())
    return error**0.5 <= _SUM_CHECK_RTOL * scale + 1e-30


def _module_terms(call: _Call, grad_out: torch.Tensor, with_sums: bool) -> tuple[torch.Tensor, dict[int, torch.Tensor]] | None:
    """One module's per-example squared gradient norms (n,) and, if asked, its parameters' batch
    sums by id; None when its forward cannot be run per example."""
    module = call.module
    if _is_plain_linear(module) or _is_plain_conv(module):
        return _weight_terms(module, call.args[0], grad_out, with_sums)
    if _is_plain_batch_norm(module):
        return _batch_norm_terms(module, call.args[0], grad_out, with_sums)
    try:
        return _functional_terms(call, grad_out, with_sums)
    except (RuntimeError, ValueError):
        # torch.func cannot run it (an operation without a batching rule, data-dependent control
        # flow, an output shaped otherwise per example): the whole model goes to vmap, as any
        # model with such a module did before this path existed.
        return None


def _weight_terms(module: nn.Module, layer_input: torch.Tensor, grad_out: torch.Tensor, with_sums: bool):
    """Linear over any leading dimensions, or a convolution with ``groups`` independent groups."""
    n = layer_input.shape[0]
    if isinstance(module, nn.Linear):
        groups = 1
        activations = layer_input.reshape(n, 1, -1, layer_input.shape[-1])
        g = grad_out.reshape(n, 1, -1, grad_out.shape[-1])
    else:
        groups = module.groups
        patches = F.unfold(layer_input, module.kernel_size, module.dilation, module.padding, module.stride)
        # unfold orders a patch channel by channel, so each group's input channels are contiguous
        activations = patches.reshape(n, groups, -1, patches.shape[-1]).transpose(2, 3)
        g = grad_out.reshape(n, groups, grad_out.shape[1] // groups, -1).transpose(2, 3)
    positions = activations.shape[2]
    flat_a = activations.reshape(n * groups, positions, -1)
    flat_g = g.reshape(n * groups, positions, -1)
    squared = torch.zeros(n, device=layer_input.device, dtype=_norm_dtype(grad_out))
    sums: dict[int, torch.Tensor] = {}
    if module.weight.requires_grad:
        squared += _squared_norm_of_outer(flat_g, flat_a).reshape(n, groups).sum(1)
        if with_sums:  # (groups, out per group, in per group), the layout of the weight
            sums[id(module.weight)] = torch.einsum("ngpo,ngpd->god", g, activations).reshape(module.weight.shape)
    if module.bias is not None and module.bias.requires_grad:
        per_example_bias = g.sum(dim=2).reshape(n, -1)
        squared += per_example_bias.pow(2).sum(dim=1)
        if with_sums:
            sums[id(module.bias)] = per_example_bias.sum(0)
    return squared, sums


def _batch_norm_terms(module: nn.BatchNorm2d, layer_input: torch.Tensor, grad_out: torch.Tensor, with_sums: bool):
    """Eval-mode batch norm: y = x_hat * weight + bias, per channel."""
    squared = torch.zeros(layer_input.shape[0], device=layer_input.device, dtype=_norm_dtype(grad_out))
    sums: dict[int, torch.Tensor] = {}
    x_hat = (layer_input - module.running_mean[None, :, None, None]) / torch.sqrt(module.running_var[None, :, None, None] + module.eps)
    for parameter, scaled in ((module.weight, True), (module.bias, False)):
        if parameter is not None and parameter.requires_grad:
            values = (grad_out * x_hat if scaled else grad_out).sum(dim=(2, 3))
            squared += values.pow(2).sum(dim=1)
            if with_sums:
                sums[id(parameter)] = values.sum(0)
    return squared, sums


def _functional_terms(call: _Call, grad_out: torch.Tensor, with_sums: bool):
    """Any module: run its forward per example, differentiating ⟨output, output gradient⟩ with
    respect to its own parameters (children's are constants), so only those gradients exist."""
    module = call.module
    n = grad_out.shape[0]
    own = {name: p.detach() for name, p in module.named_parameters(recurse=False) if p.requires_grad}
    leaves, spec = tree_flatten((call.args, call.kwargs))
    batched = _batched_mask(call, n)
    example_leaves = [leaf for leaf, is_batched in zip(leaves, batched) if is_batched]

    def weighted_output(parameters: dict[str, torch.Tensor], example: list[torch.Tensor], g: torch.Tensor) -> torch.Tensor:
        values = iter(example)
        full = [next(values).unsqueeze(0) if is_batched else leaf for leaf, is_batched in zip(leaves, batched)]
        args, kwargs = tree_unflatten(full, spec)
        return (functional_call(module, parameters, args, kwargs) * g.unsqueeze(0)).sum()

    n_own = sum(p.numel() for p in own.values())
    per_chunk = max(1, _GRADIENT_ELEMENTS_PER_CHUNK // max(n_own, 1))
    with torch.no_grad():  # torch.func.grad still differentiates; nothing else records a graph
        per_example = vmap(grad(weighted_output), in_dims=(None, 0, 0), chunk_size=per_chunk)(own, example_leaves, grad_out)
    squared = sum(g.pow(2).flatten(1).sum(1) for g in per_example.values()).to(_norm_dtype(grad_out))
    sums = {id(getattr(module, name)): g.sum(0) for name, g in per_example.items()} if with_sums else {}
    return squared, sums


def vmap_grad_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example gradient norms of any model with ``torch.func.vmap(grad(...))``.

    A functional call of the model in eval mode, in chunks sized so that the stacked per-example
    gradients stay below about 200 MB.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the call; its mode is restored afterwards.
    inputs : tensor (n, c, h, w), on the model's device
    targets : int64 tensor (n,)

    Returns
    -------
    tensor (n,) on the same device, float32 (float64 for a float64 model).
    """
    was_training = model.training
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def example_loss(parameters: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (parameters, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_example_grads = vmap(grad(example_loss), in_dims=(None, 0, 0))
    n_params = sum(p.numel() for p in params.values())
    chunk = max(1, _GRADIENT_ELEMENTS_PER_CHUNK // max(n_params, 1))
    norms = []
    try:
        with warnings.catch_warnings():
            # vmap runs attention through an unbatched fallback on the CPU and says so at every call;
            # the result is exact, only slower, and the recorder's user can do nothing about it.
            warnings.filterwarnings("ignore", message="There is a performance drop", category=UserWarning)
            for start in range(0, len(inputs), chunk):
                grads = per_example_grads(params, inputs[start : start + chunk], targets[start : start + chunk])
                squared = sum(g.pow(2).flatten(1).sum(1) for g in grads.values())
                norms.append(squared.to(_norm_dtype(squared)).sqrt())
    finally:
        model.train(was_training)
    return torch.cat(norms)


def true_class_input_grads(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    of: Sequence[str] = ("logit",),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and the gradients of each example's true-class probability and/or logit with respect
    to its own input, from one forward pass.

    In eval mode the examples of a batch do not interact, so the gradient of the sum over the batch
    gives every example's own input gradient; the same holds over any leading dimensions (the
    replicates of a batched model, each of which sees only its own slice of the input). Parameter
    ``.grad`` fields are left untouched (``torch.autograd.grad`` on the input only).

    Parameters
    ----------
    forward : callable
        Maps inputs (*lead, *example_shape) to logits (*lead, n_classes); the model in eval mode.
    inputs : tensor (*lead, *example_shape)
        Detached here; for a batched model each replicate's slice must be its own memory (not an
        ``expand``-ed view), so that every (replicate, example) gets its own gradient.
    targets : int64 tensor (*lead,)
    of : sequence of {"probability", "logit"}

    Returns
    -------
    logits : tensor (*lead, n_classes), detached
    grads : dict of the names of ``of`` to tensors shaped as ``inputs``
    """
    x = inputs.detach().requires_grad_(True)
    index = targets[..., None]
    grads: dict[str, torch.Tensor] = {}
    with torch.enable_grad():
        logits = forward(x)
        picked = {
            "probability": lambda: logits.softmax(dim=-1).gather(-1, index).sum(),
            "logit": lambda: logits.gather(-1, index).sum(),
        }
        for number, target in enumerate(of):
            last = number == len(of) - 1
            (grad_of_target,) = torch.autograd.grad(picked[target](), x, retain_graph=not last)
            grads[target] = grad_of_target.detach()
    return logits.detach(), grads


def true_class_logits_and_input_grads(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the gradient of each example's true-class logit with respect to its input.

    :func:`true_class_input_grads` of an ordinary model: inputs (n, ...), targets (n,).
    """
    logits, grads = true_class_input_grads(model, inputs, targets, ("logit",))
    return logits, grads["logit"]
