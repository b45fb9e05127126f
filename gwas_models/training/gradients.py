"""Per-example gradients: parameter-gradient norms (GraNd) and input gradients (VoG).

Both run the model in eval mode (batch norm uses its running statistics), so an example's
gradient does not depend on the other examples of its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

# Upper bound on per-example gradient elements held at once (float32: 4 bytes each).
_GRADIENT_ELEMENTS_PER_CHUNK = 50_000_000


def per_example_grad_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """‖∇θ cross-entropy‖₂ of every example over all trainable parameters, in eval mode.

    Models built only of ``Conv2d`` (ungrouped), ``Linear`` and ``BatchNorm2d`` parameters (every
    built-in architecture) get the norms layer by layer from one ordinary backward pass (see
    :func:`layerwise_grad_norms`), several times faster than materialising every example's
    gradient. Any other model falls back to :func:`vmap_grad_norms`.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode for the call; its mode is restored afterwards.
    inputs : tensor (n, c, h, w), on the model's device
    targets : int64 tensor (n,)

    Returns
    -------
    float32 tensor (n,) on the same device.
    """
    if _supports_layerwise(model):
        return layerwise_grad_norms(model, inputs, targets)
    return vmap_grad_norms(model, inputs, targets)


_LAYERWISE_TYPES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def _supports_layerwise(model: nn.Module) -> bool:
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not isinstance(module, _LAYERWISE_TYPES):
            return False
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str)):
            return False
    return True


def _squared_norm_of_outer(grad_out: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Per-example ‖Σ_p grad_out[p] ⊗ activations[p]‖² for (n, P, O) and (n, P, D) inputs.

    Either forms the (O, D) gradient per example or, when positions are few, uses the identity
    ‖Gᵀ A‖² = Σ_pq (A Aᵀ)_pq (G Gᵀ)_pq, whichever holds fewer numbers.
    """
    positions, out_dim, in_dim = grad_out.shape[1], grad_out.shape[2], activations.shape[2]
    if positions * positions < out_dim * in_dim:
        gram_a = activations @ activations.transpose(1, 2)
        gram_g = grad_out @ grad_out.transpose(1, 2)
        return (gram_a * gram_g).sum(dim=(1, 2))
    return (grad_out.transpose(1, 2) @ activations).pow(2).sum(dim=(1, 2))


def layerwise_grad_norms(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per-example gradient norms from each layer's inputs and output gradients.

    One backward pass of the summed loss gives every layer's output gradient per example (eval mode:
    examples do not interact); a layer's per-example weight gradient is the sum over positions of
    output gradient ⊗ input patch, whose squared norm is computed without forming the gradient
    where that is cheaper. Batch norm in eval mode is a per-channel affine map of the normalised
    input.
    """
    was_training = model.training
    model.eval()
    captured: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    grads: dict[int, torch.Tensor] = {}

    def forward_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        index = len(captured)
        captured.append((module, args[0].detach(), output))
        if output.requires_grad:  # a frozen layer at the start of the network has nothing to record
            output.register_hook(lambda g, index=index: grads.__setitem__(index, g.detach()))

    handles = [m.register_forward_hook(forward_hook) for m in model.modules() if isinstance(m, _LAYERWISE_TYPES)]
    norms = []
    try:
        for start in range(0, len(inputs), chunk):
            captured.clear()
            grads.clear()
            x, y = inputs[start : start + chunk], targets[start : start + chunk]
            with torch.enable_grad():
                loss = F.cross_entropy(model(x), y, reduction="sum")
                if len({id(module) for module, _, _ in captured}) != len(captured):
                    # A module called twice shares its weights between calls: its per-example
                    # gradient is the sum over calls, which per-call norms cannot give.
                    for handle in handles:
                        handle.remove()
                    return vmap_grad_norms(model, inputs, targets)
                params = [p for p in model.parameters() if p.requires_grad]
                torch.autograd.grad(loss, params, allow_unused=True)
            squared = torch.zeros(len(x), device=x.device, dtype=torch.float32)
            for index, (module, layer_input, _) in enumerate(captured):
                if index in grads:
                    squared += _layer_squared_norms(module, layer_input, grads[index])
            norms.append(squared.sqrt())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return torch.cat(norms)


def _layer_squared_norms(module: nn.Module, layer_input: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    n = layer_input.shape[0]
    total = torch.zeros(n, device=layer_input.device, dtype=torch.float32)
    if isinstance(module, nn.Linear):
        activations = layer_input.reshape(n, -1, layer_input.shape[-1])
        g = grad_out.reshape(n, -1, grad_out.shape[-1])
    elif isinstance(module, nn.Conv2d):
        activations = F.unfold(layer_input, module.kernel_size, module.dilation, module.padding, module.stride).transpose(1, 2)
        g = grad_out.flatten(2).transpose(1, 2)
    else:  # BatchNorm2d in eval mode: y = x_hat * weight + bias, per channel
        x_hat = (layer_input - module.running_mean[None, :, None, None]) / torch.sqrt(module.running_var[None, :, None, None] + module.eps)
        if module.weight is not None and module.weight.requires_grad:
            total += (grad_out * x_hat).sum(dim=(2, 3)).pow(2).sum(dim=1)
        if module.bias is not None and module.bias.requires_grad:
            total += grad_out.sum(dim=(2, 3)).pow(2).sum(dim=1)
        return total
    if module.weight.requires_grad:
        total += _squared_norm_of_outer(g, activations)
    if module.bias is not None and module.bias.requires_grad:
        total += g.sum(dim=1).pow(2).sum(dim=1)
    return total


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
    float32 tensor (n,) on the same device.
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
        for start in range(0, len(inputs), chunk):
            grads = per_example_grads(params, inputs[start : start + chunk], targets[start : start + chunk])
            squared = sum(g.pow(2).flatten(1).sum(1) for g in grads.values())
            norms.append(squared.sqrt())
    finally:
        model.train(was_training)
    return torch.cat(norms)


def true_class_logits_and_input_grads(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the gradient of each example's true-class logit with respect to its input.

    In eval mode the examples of a batch do not interact, so the gradient of the summed true-class
    logits gives every example's own input gradient in one backward pass. Parameter ``.grad``
    fields are left untouched (``torch.autograd.grad`` on the input only).
    """
    x = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        picked = logits.gather(1, targets[:, None]).sum()
        (input_grad,) = torch.autograd.grad(picked, x)
    return logits.detach(), input_grad.detach()
