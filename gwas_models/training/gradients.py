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
    """‖∇θ cross-entropy‖₂ of every example over all trainable parameters.

    Uses ``torch.func.vmap(grad(...))`` over a functional call of the model in eval mode, in chunks
    sized so that the stacked per-example gradients stay below about 200 MB.

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
