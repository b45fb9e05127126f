"""Record difficulty scores inside any PyTorch training loop.

>>> recorder = ScoreRecorder(train_x, train_y, n_classes=10, epochs=30)      # doctest: +SKIP
>>> for epoch in range(30):                                                   # doctest: +SKIP
...     for example_ids, x, y in batches:
...         recorder.before_step(model, example_ids)  # the paper's forgetting
...         logits = model(augment(x))
...         loss = F.cross_entropy(logits, y); ...
...         recorder.observe(example_ids, logits, y)
...     recorder.end_epoch(model)
>>> scores = recorder.scores()        # {"loss": array(n_examples), ...}

``observe`` takes the training minibatch's logits (no extra forward pass): it feeds the
presentation definitions (``loss:presentations``, ``aum:pleiss``, ``forgetting:toneva``, ...).
``before_step`` evaluates the minibatch in eval mode, without augmentation, before the step trains
on it, when a requested definition needs it (the paper's ``forgetting`` and ``consistently_learned``:
one extra forward pass per step). ``end_epoch`` evaluates the whole training set in eval mode,
without augmentation, when a requested definition needs it (the paper's ``loss``, ``accuracy``,
``aum``, ``entropy``, ``confidence`` and ``variability`` every epoch; ``el2n`` and ``grand`` at the
early epoch; the VoGs' input gradients at their checkpoints, every epoch by default), and reuses
that one pass for all of them. The definitions are those of :mod:`gwas_models.scores`; this class
computes them on the training device as training goes.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models import scores as score_defs
from gwas_models.errors import InputError
from gwas_models.scores import default_early_epoch, default_vog_epochs
from gwas_models.training.gradients import per_example_grad_norms

__all__ = ["ScoreRecorder", "default_early_epoch", "default_vog_epochs"]

#: Which input gradient each VoG definition accumulates: (target, channels averaged).
VOG_GRADIENTS: dict[str, tuple[str, bool]] = {
    "vog": ("probability", True),
    "vog:logit": ("logit", False),
    "vog:agarwal": ("logit", True),
}


def _quantities(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Same quantities as :func:`gwas_models.scores.output_quantities`, in torch."""
    logits = logits.float()
    log_probs = F.log_softmax(logits, dim=1)
    probs = log_probs.exp()
    index = targets[:, None]
    p_true = probs.gather(1, index)[:, 0]
    return {
        "loss": -log_probs.gather(1, index)[:, 0],
        "correct": logits.argmax(dim=1) == targets,
        "p_true": p_true,
        "margin": p_true - probs.scatter(1, index, float("-inf")).amax(dim=1),
        "logit_margin": logits.gather(1, index)[:, 0] - logits.scatter(1, index, float("-inf")).amax(dim=1),
        "entropy": -(probs * log_probs).sum(dim=1),
    }


class _Transitions:
    """Correctness of successive presentations of each example, streamed.

    Keeps, per example, the number of presentations, the forgetting events (correct, then
    incorrect at the next presentation), whether it was ever correct and the last presentation
    (1-based) at which it was wrong, which give :func:`gwas_models.scores.forgetting`,
    :func:`~gwas_models.scores.forgetting_toneva` and :func:`~gwas_models.scores.consistently_learned`.
    """

    def __init__(self, n_examples: int, device: torch.device) -> None:
        zeros = lambda dtype: torch.zeros(n_examples, dtype=dtype, device=device)  # noqa: E731
        self.count = zeros(torch.int64)
        self.events = zeros(torch.int64)
        self.last_wrong = zeros(torch.int64)
        self.previous = zeros(torch.bool)
        self.ever = zeros(torch.bool)

    def update(self, example_ids: torch.Tensor, correct: torch.Tensor) -> None:
        self.count.index_add_(0, example_ids, torch.ones_like(example_ids))
        forgot = self.previous[example_ids] & ~correct
        self.events.index_add_(0, example_ids, forgot.long())
        self.previous[example_ids] = correct
        self.ever[example_ids] |= correct
        self.last_wrong[example_ids] = torch.where(correct, self.last_wrong[example_ids], self.count[example_ids])

    def scores(self) -> dict[str, np.ndarray]:
        """``forgetting`` (never learned = 0), ``forgetting_toneva`` and ``consistently_learned``.

        NaN for an example never presented.
        """
        count = self.count.cpu().numpy().astype(np.float64)
        events = self.events.cpu().numpy().astype(np.float64)
        seen = count > 0
        never_learned = ~self.ever.cpu().numpy()
        return {
            "forgetting": np.where(seen, events, np.nan),
            "forgetting_toneva": np.where(seen, np.where(never_learned, count, events), np.nan),
            "consistently_learned": np.where(seen, self.last_wrong.cpu().numpy() + 1.0, np.nan),
        }


class _Welford:
    """Running mean and sum of squared deviations over checkpoints, elementwise (Welford 1962).

    The variance over checkpoints without keeping every checkpoint's gradients.
    """

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, values: torch.Tensor) -> None:
        values = values.to(self.dtype)
        self.count += 1
        if self.mean is None:
            self.mean = values.clone()
            self.m2 = torch.zeros_like(values)
            return
        delta = values - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (values - self.mean)

    def variance(self, ddof: int) -> torch.Tensor:
        """Elementwise variance with ``count - ddof`` in the denominator, flattened per example."""
        return (self.m2 / (self.count - ddof)).reshape(self.m2.shape[0], -1)


class ScoreRecorder:
    """Streaming per-example score recorder.

    Parameters
    ----------
    inputs : tensor (n_examples, c, h, w)
        The training set as the model sees it without augmentation (normalised), on the training
        device. Needed for the pre-step and epoch-end definitions; may be ``None`` when only
        presentation definitions are requested.
    targets : int64 tensor (n_examples,)
    n_classes : int
    epochs : int
        Number of epochs the loop will run (for the early epoch and the VoG checkpoints).
    scores : iterable of str
        Definitions to compute (default: the paper's, :data:`gwas_models.scores.SCORE_NAMES`; any
        name of :data:`gwas_models.scores.SCORES`).
    early_epoch : int, optional
        1-based epoch of ``el2n`` and ``grand`` (default
        :func:`gwas_models.scores.default_early_epoch`: one eighth of training, at least 2).
    vog_checkpoints : int, optional
        Number of VoG checkpoints, spread evenly with the last at the end of training (default
        None: every epoch end, as the paper's code).
    eval_batch_size : int
        Batch size of the epoch-end evaluation.
    keep_trajectories : bool
        Also keep the per-epoch eval-mode loss, correctness and margin of every example.
    """

    def __init__(
        self,
        inputs: torch.Tensor | None,
        targets: torch.Tensor,
        n_classes: int,
        epochs: int,
        scores: Iterable[str] = score_defs.SCORE_NAMES,
        early_epoch: int | None = None,
        vog_checkpoints: int | None = None,
        eval_batch_size: int = 1024,
        keep_trajectories: bool = False,
    ) -> None:
        self.scores_requested = tuple(score_defs.score_info(s).name for s in scores)
        if epochs < 1:
            raise InputError(f"epochs must be at least 1, got {epochs}", parameter="epochs")
        self.epochs = epochs
        self.early_epoch = early_epoch if early_epoch is not None else default_early_epoch(epochs)
        if not 1 <= self.early_epoch <= epochs:
            raise InputError(f"early_epoch must lie in 1..{epochs} (the early epoch), got {self.early_epoch}", parameter="early_epoch")
        if vog_checkpoints is not None and vog_checkpoints < 2:
            raise InputError(f"vog_checkpoints must be at least 2, got {vog_checkpoints}", parameter="vog_checkpoints")
        self.vog_epochs = default_vog_epochs(epochs, vog_checkpoints)
        self.keep_trajectories = keep_trajectories
        kinds = {score_defs.SCORES[s].kind for s in self.scores_requested}
        self.needs_pre_step = "prestep" in kinds
        self.needs_eval_every_epoch = "epoch" in kinds or keep_trajectories
        self.needs_early = "early" in kinds
        self._vog_requested = tuple(s for s in self.scores_requested if s in VOG_GRADIENTS)
        self.needs_vog = bool(self._vog_requested)
        if (self.needs_pre_step or self.needs_eval_every_epoch or self.needs_early or self.needs_vog) and inputs is None:
            raise InputError("inputs are needed by the pre-step and epoch-end scores; pass them or request presentation scores only", parameter="inputs")
        self.inputs = inputs
        self.targets = targets
        self.n_classes = n_classes
        self.eval_batch_size = eval_batch_size
        self.n_examples = len(targets)
        self.epoch = 0
        device = targets.device
        # float64 sums where the device has them, so long trainings keep exact means.
        self._dtype = torch.float32 if device.type == "mps" else torch.float64
        zeros = lambda: torch.zeros(self.n_examples, dtype=self._dtype, device=device)  # noqa: E731
        self._presented = _Transitions(self.n_examples, device)
        self._sum = {name: zeros() for name in ("loss", "correct", "margin", "logit_margin", "entropy")}
        # Per-example running mean and squared deviations of p(true) over presentations (Welford).
        self._p_mean, self._p_m2 = zeros(), zeros()
        self._pre_step = _Transitions(self.n_examples, device)
        self._eval_sum = {name: zeros() for name in ("loss", "correct", "margin", "entropy")}
        self._epoch_rows: dict[str, list[torch.Tensor]] = {"p_true": [], "correct": [], "loss": [], "margin": []}
        self._early: dict[str, torch.Tensor] = {}
        # One accumulator per gradient the requested VoGs need: vog:logit and vog:agarwal share
        # the true-class logit's gradient but not its channel average.
        self._vog = {VOG_GRADIENTS[name]: _Welford(self._dtype) for name in self._vog_requested}

    # ----------------------------------------------------------------------------------------
    # During the epoch
    # ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def before_step(self, model: nn.Module, example_ids: torch.Tensor) -> None:
        """Evaluate a minibatch in eval mode, unaugmented, before the step that trains on it.

        Call it before the training forward pass, so that the prediction is that of the model the
        previous step left (batch-norm statistics included). Does nothing unless a requested
        definition needs it (the paper's ``forgetting`` and ``consistently_learned``).

        Parameters
        ----------
        model : nn.Module
            Put in eval mode for the pass, then back in the mode it was in.
        example_ids : int64 tensor (batch,)
            Indices of the minibatch's examples in the training set; each at most once per call.
        """
        if not self.needs_pre_step:
            return
        was_training = model.training
        model.eval()
        try:
            logits = model(self.inputs[example_ids])
        finally:
            model.train(was_training)
        self._pre_step.update(example_ids, logits.argmax(dim=1) == self.targets[example_ids])

    @torch.no_grad()
    def observe(self, example_ids: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Record one training minibatch.

        Parameters
        ----------
        example_ids : int64 tensor (batch,)
            Indices of the minibatch's examples in the training set; each at most once per call.
        logits : tensor (batch, n_classes)
            The logits the training step computed (detached here).
        targets : int64 tensor (batch,)
        """
        q = _quantities(logits.detach(), targets)
        for name, total in self._sum.items():
            total.index_add_(0, example_ids, q[name].to(self._dtype))
        self._presented.update(example_ids, q["correct"])
        p_true = q["p_true"].to(self._dtype)
        delta = p_true - self._p_mean[example_ids]
        self._p_mean[example_ids] += delta / self._presented.count[example_ids].to(self._dtype)
        self._p_m2[example_ids] += delta * (p_true - self._p_mean[example_ids])

    # ----------------------------------------------------------------------------------------
    # At the end of each epoch
    # ----------------------------------------------------------------------------------------

    def end_epoch(self, model: nn.Module) -> None:
        """Close an epoch: evaluate the training set where a requested definition needs it."""
        self.epoch += 1
        at_vog = self.needs_vog and self.epoch in self.vog_epochs
        at_early = self.needs_early and self.epoch == self.early_epoch
        if not (self.needs_eval_every_epoch or at_vog or at_early):
            return
        was_training = model.training
        model.eval()
        try:
            gradients = sorted({target for target, _ in self._vog}) if at_vog else []
            logits, input_grads = self._evaluate(model, gradients)
            if at_early and "grand" in self.scores_requested:
                self._early["grand"] = self._grand(model)
        finally:
            model.train(was_training)
        q = _quantities(logits, self.targets)
        if self.needs_eval_every_epoch:
            self._record_eval_pass(q)
        if at_early:
            probs = F.softmax(logits.float(), dim=1)
            one_hot = F.one_hot(self.targets, self.n_classes).to(probs.dtype)
            self._early["el2n"] = (probs - one_hot).norm(dim=1)
        for (target, channel_mean), accumulator in self._vog.items() if at_vog else ():
            grads = input_grads[target]
            # Average over colour channels (axis 1 of (n, c, h, w)); flat inputs have no channels.
            accumulator.update(grads.mean(dim=1) if channel_mean and grads.dim() >= 3 else grads)

    def _record_eval_pass(self, q: dict[str, torch.Tensor]) -> None:
        for name, total in self._eval_sum.items():
            total += q[name].to(self._dtype)
        self._epoch_rows["p_true"].append(q["p_true"])
        self._epoch_rows["correct"].append(q["correct"])
        if self.keep_trajectories:
            self._epoch_rows["loss"].append(q["loss"])
            self._epoch_rows["margin"].append(q["margin"])

    def _evaluate(self, model: nn.Module, gradients: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eval-mode logits of the training set and, if asked, input gradients of the true class's
        ``"probability"`` and/or ``"logit"``."""
        logits, grads = [], {target: [] for target in gradients}
        for start in range(0, self.n_examples, self.eval_batch_size):
            x = self.inputs[start : start + self.eval_batch_size]
            y = self.targets[start : start + self.eval_batch_size]
            if gradients:
                batch_logits, batch_grads = self._true_class_input_grads(model, x, y, gradients)
                for target, value in batch_grads.items():
                    grads[target].append(value)
            else:
                with torch.no_grad():
                    batch_logits = model(x)
            logits.append(batch_logits)
        return torch.cat(logits), {target: torch.cat(values) for target, values in grads.items()}

    @staticmethod
    def _true_class_input_grads(
        model: nn.Module, x: torch.Tensor, y: torch.Tensor, gradients: list[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # In eval mode the examples of a batch do not interact, so the gradient of a sum over the
        # batch gives every example's own input gradient; one forward pass serves both targets.
        x = x.detach().requires_grad_(True)
        out: dict[str, torch.Tensor] = {}
        with torch.enable_grad():
            logits = model(x)
            picked = {
                "probability": lambda: logits.softmax(dim=1).gather(1, y[:, None]).sum(),
                "logit": lambda: logits.gather(1, y[:, None]).sum(),
            }
            for number, target in enumerate(gradients):
                last = number == len(gradients) - 1
                (out[target],) = torch.autograd.grad(picked[target](), x, retain_graph=not last)
        return logits.detach(), {target: grad.detach() for target, grad in out.items()}

    def _grand(self, model: nn.Module) -> torch.Tensor:
        norms = []
        for start in range(0, self.n_examples, self.eval_batch_size):
            x = self.inputs[start : start + self.eval_batch_size]
            y = self.targets[start : start + self.eval_batch_size]
            norms.append(per_example_grad_norms(model, x, y))
        return torch.cat(norms)

    # ----------------------------------------------------------------------------------------
    # Results
    # ----------------------------------------------------------------------------------------

    def scores(self) -> dict[str, np.ndarray]:
        """The requested definitions as float64 arrays of shape (n_examples,).

        Presentation definitions of an example never presented are NaN, and so are the pre-step
        ones of an example never evaluated before a step (a loop that does not call
        :meth:`before_step`). Epoch-end definitions whose epoch was not reached (training stopped
        early) are NaN too, and so are the VoGs when training has a single checkpoint (no variance
        over one).
        """
        everything = {
            **self._presentation_scores(),
            **self._pre_step_scores(),
            **self._epoch_scores(),
            **{name: value.double().cpu().numpy() for name, value in self._early.items()},
            **self._vog_scores(),
        }
        nan = np.full(self.n_examples, np.nan)
        return {name: np.asarray(everything.get(name, nan), dtype=np.float64) for name in self.scores_requested}

    def _presentation_scores(self) -> dict[str, np.ndarray]:
        n_presented = self._presented.count.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {name: total.cpu().double().numpy() / n_presented for name, total in self._sum.items()}
            variance = self._p_m2.cpu().double().numpy() / n_presented
        presented = n_presented > 0
        transitions = self._presented.scores()
        return {
            "loss:presentations": means["loss"],
            "accuracy:presentations": means["correct"],
            "aum:presentations": means["margin"],
            "aum:pleiss": means["logit_margin"],
            "entropy:presentations": means["entropy"],
            "forgetting:toneva": transitions["forgetting_toneva"],
            "confidence:swayamdipta": np.where(presented, self._p_mean.cpu().double().numpy(), np.nan),
            "variability:swayamdipta": np.sqrt(np.maximum(variance, 0.0)),
        }

    def _pre_step_scores(self) -> dict[str, np.ndarray]:
        transitions = self._pre_step.scores()
        return {"forgetting": transitions["forgetting"], "consistently_learned": transitions["consistently_learned"]}

    def _epoch_scores(self) -> dict[str, np.ndarray]:
        # Means over every epoch end only: a training stopped early has none.
        if len(self._epoch_rows["correct"]) != self.epochs:
            return {}
        means = {name: total.cpu().double().numpy() / self.epochs for name, total in self._eval_sum.items()}
        correct = torch.stack(self._epoch_rows["correct"]).cpu().numpy()
        p_true = torch.stack(self._epoch_rows["p_true"]).double().cpu().numpy()
        return {
            "loss": means["loss"],
            "accuracy": means["correct"],
            "aum": means["margin"],
            "entropy": means["entropy"],
            "confidence": p_true.mean(axis=0),
            "variability": p_true.std(axis=0),
            "consistently_learned:epoch": score_defs.consistently_learned(correct),
        }

    def _vog_scores(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self._vog_requested:
            accumulator = self._vog[VOG_GRADIENTS[name]]
            # A variance over checkpoints needs two of them, and every one of them reached.
            if accumulator.count != len(self.vog_epochs) or accumulator.count < 2:
                continue
            if name == "vog":
                out[name] = accumulator.variance(ddof=1).mean(dim=1).double().cpu().numpy()
            elif name == "vog:logit":
                out[name] = accumulator.variance(ddof=0).mean(dim=1).double().cpu().numpy()
            else:
                spread = accumulator.variance(ddof=0).sqrt().mean(dim=1).double().cpu().numpy()
                out[name] = score_defs.class_normalise(spread, self.targets.cpu().numpy())
        return out

    def trajectories(self) -> dict[str, np.ndarray]:
        """Per-epoch eval-mode ``loss``, ``correct`` and ``margin``, shape (n_epochs, n_examples)."""
        if not self.keep_trajectories:
            raise InputError("keep_trajectories is off: create the recorder with keep_trajectories=True to keep trajectories", parameter="keep_trajectories")
        rows = {name: self._epoch_rows[name] for name in ("loss", "correct", "margin")}
        return {name: torch.stack(r).float().cpu().numpy() for name, r in rows.items() if r}
