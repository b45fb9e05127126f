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

K replicate runs trained as one batched model (``n_replicates=K``) are recorded at once: the
minibatches are then (K, batch) example ids, (K, batch, n_classes) logits and (K, batch) targets,
the model maps (K, batch, *example_shape) to (K, batch, n_classes), replicate k seeing only its own
slice, and :meth:`ScoreRecorder.replicate_scores` gives one dict per run. Every state tensor holds
the K runs side by side (flattened, run k's example i at k * n_examples + i), so each call is one
vectorised operation whatever K; the single run is K = 1.

Nothing in ``before_step``, ``observe`` or ``end_epoch`` reads a value back to the host (no
``.item()``, no condition on a tensor's value, no data-dependent shape), so on a GPU training
never waits for the recorder; ``grand`` at the early epoch is the one exception (its per-example
gradients check themselves once per run). The scores come back in :meth:`ScoreRecorder.scores`.
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
from gwas_models.training.gradients import per_example_grad_norms, true_class_input_grads
from gwas_models.training.train import OneRun

__all__ = ["ScoreRecorder", "default_early_epoch", "default_vog_epochs"]

#: Which input gradient each VoG definition accumulates: (target, channels averaged).
VOG_GRADIENTS: dict[str, tuple[str, bool]] = {
    "vog": ("probability", True),
    "vog:logit": ("logit", False),
    "vog:agarwal": ("logit", True),
}


def _quantities(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Same quantities as :func:`gwas_models.scores.output_quantities`, in torch.

    ``logits`` (n, n_classes) and ``targets`` (n,); computed in at least float32 (half-precision
    logits are promoted), in float64 for float64 logits.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
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
    State is flat over the (n_replicates, n_examples) grid; updates take flat indices.
    """

    def __init__(self, shape: tuple[int, int], device: torch.device) -> None:
        self.shape = shape
        size = shape[0] * shape[1]
        zeros = lambda dtype: torch.zeros(size, dtype=dtype, device=device)  # noqa: E731
        self.count = zeros(torch.int64)
        self.events = zeros(torch.int64)
        self.last_wrong = zeros(torch.int64)
        self.previous = zeros(torch.bool)
        self.ever = zeros(torch.bool)

    def update(self, flat_ids: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one presentation of each of ``flat_ids`` (distinct), correct or not.

        Gathers and scatters only (no mask indexing), so nothing waits on the device.
        """
        self.count.index_add_(0, flat_ids, torch.ones_like(flat_ids))
        forgot = self.previous[flat_ids] & ~correct
        self.events.index_add_(0, flat_ids, forgot.long())
        self.previous[flat_ids] = correct
        self.ever[flat_ids] |= correct
        self.last_wrong[flat_ids] = torch.where(correct, self.last_wrong[flat_ids], self.count[flat_ids])

    def scores(self) -> dict[str, np.ndarray]:
        """``forgetting`` (never learned = 0), ``forgetting_toneva`` and ``consistently_learned``,
        each (n_replicates, n_examples).

        NaN for an example never presented.
        """
        count = self.count.reshape(self.shape).cpu().numpy().astype(np.float64)
        events = self.events.reshape(self.shape).cpu().numpy().astype(np.float64)
        seen = count > 0
        never_learned = ~self.ever.reshape(self.shape).cpu().numpy()
        return {
            "forgetting": np.where(seen, events, np.nan),
            "forgetting_toneva": np.where(seen, np.where(never_learned, count, events), np.nan),
            "consistently_learned": np.where(seen, self.last_wrong.reshape(self.shape).cpu().numpy() + 1.0, np.nan),
        }


class _Welford:
    """Running mean and sum of squared deviations over checkpoints, elementwise (Welford 1962).

    The variance over checkpoints without keeping every checkpoint's gradients. A checkpoint is
    filled chunk by chunk (:meth:`start_checkpoint`, then :meth:`update` for each chunk of
    examples), so no more than one chunk's gradients exist besides the two accumulators.
    """

    def __init__(self, n_examples: int, dtype: torch.dtype) -> None:
        self.n_examples = n_examples
        self.dtype = dtype
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def start_checkpoint(self) -> None:
        self.count += 1

    def update(self, start: int, values: torch.Tensor) -> None:
        """Add the current checkpoint's ``values`` (n_replicates, chunk, ...) of examples
        ``start .. start + chunk``."""
        values = values.to(self.dtype)
        if self.mean is None:
            shape = (values.shape[0], self.n_examples, *values.shape[2:])
            self.mean = torch.zeros(shape, dtype=self.dtype, device=values.device)
            self.m2 = torch.zeros_like(self.mean)
        # From zeros, the first checkpoint gives mean = values and m2 = 0 exactly.
        mean = self.mean[:, start : start + values.shape[1]]
        m2 = self.m2[:, start : start + values.shape[1]]
        delta = values - mean
        mean += delta / self.count
        m2 += delta * (values - mean)

    def variance(self, ddof: int) -> torch.Tensor:
        """Elementwise variance with ``count - ddof`` in the denominator, flattened per example:
        (n_replicates, n_examples, elements)."""
        return (self.m2 / (self.count - ddof)).reshape(*self.m2.shape[:2], -1)


class ScoreRecorder:
    """Streaming per-example score recorder, of one run or of K replicate runs trained at once.

    Parameters
    ----------
    inputs : tensor (n_examples, *example_shape)
        The training set as the model sees it without augmentation (normalised), on the training
        device. Needed for the pre-step and epoch-end definitions; may be ``None`` when only
        presentation definitions are requested.
    targets : int64 tensor (n_examples,)
        The labels, the same for every replicate.
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
        Batch size of the epoch-end evaluation (per replicate).
    keep_trajectories : bool
        Also keep the per-epoch eval-mode loss, correctness and margin of every example.
    n_replicates : int
        Number of runs recorded at once, K. With K > 1 the model given to :meth:`before_step` and
        :meth:`end_epoch` is a batched model: an ``n_replicates`` attribute equal to K, a forward
        pass mapping (K, batch, *example_shape) to (K, batch, n_classes) in which replicate k sees
        only its own slice, and ``replicate(k)``, replicate k as an ordinary model (for
        ``grand``). The epoch-end pass gives it the same chunk of the training set for every
        replicate as ``x.expand(K, ...)``, a view: its forward must accept a non-contiguous input
        (``reshape``, not ``view``). With K = 1 the model is an ordinary one (or a batched model of
        one replicate) and the minibatch arguments may drop the replicate dimension.
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
        n_replicates: int = 1,
    ) -> None:
        self.scores_requested = tuple(score_defs.score_info(s).name for s in scores)
        if epochs < 1:
            raise InputError(f"epochs must be at least 1, got {epochs}", parameter="epochs")
        if isinstance(n_replicates, bool) or not isinstance(n_replicates, int) or n_replicates < 1:
            raise InputError(f"n_replicates must be a positive integer, got {n_replicates!r}", parameter="n_replicates")
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
        self.n_replicates = n_replicates
        self.epoch = 0
        device = targets.device
        # Run k's example i sits at k * n_examples + i of every flat state tensor.
        self._grid_shape = (n_replicates, self.n_examples)
        self._offsets = torch.arange(n_replicates, device=device)[:, None] * self.n_examples
        self._flat_targets = targets.repeat(n_replicates)
        # float64 sums where the device has them, so long trainings keep exact means.
        self._dtype = torch.float32 if device.type == "mps" else torch.float64
        zeros = lambda: torch.zeros(n_replicates * self.n_examples, dtype=self._dtype, device=device)  # noqa: E731
        self._presented = _Transitions(self._grid_shape, device)
        self._sum = {name: zeros() for name in ("loss", "correct", "margin", "logit_margin", "entropy")}
        # Per-example running mean and squared deviations of p(true) over presentations (Welford).
        self._p_mean, self._p_m2 = zeros(), zeros()
        self._pre_step = _Transitions(self._grid_shape, device)
        self._eval_sum = {name: zeros() for name in ("loss", "correct", "margin", "entropy")}
        self._epoch_rows: dict[str, list[torch.Tensor]] = {"p_true": [], "correct": [], "loss": [], "margin": []}
        self._early: dict[str, torch.Tensor] = {}
        # One accumulator per gradient the requested VoGs need: vog:logit and vog:agarwal share
        # the true-class logit's gradient but not its channel average.
        self._vog = {VOG_GRADIENTS[name]: _Welford(self.n_examples, self._dtype) for name in self._vog_requested}

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
            The model (K = 1) or the batched model of the K replicates (see the class's
            ``n_replicates``). Put in eval mode for the pass, then back in the mode it was in.
        example_ids : int64 tensor (n_replicates, batch), or (batch,) when n_replicates is 1
            Indices of each replicate's minibatch examples in the training set; each at most once
            per replicate and call.
        """
        if not self.needs_pre_step:
            return
        ids = self._replicate_ids(example_ids)
        was_training = model.training
        model.eval()
        try:
            logits = self._forward(model, self.inputs[ids])
        finally:
            model.train(was_training)
        self._pre_step.update(self._flat(ids), (logits.argmax(dim=-1) == self.targets[ids]).reshape(-1))

    @torch.no_grad()
    def observe(self, example_ids: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Record one training minibatch.

        Parameters
        ----------
        example_ids : int64 tensor (n_replicates, batch), or (batch,) when n_replicates is 1
            Indices of each replicate's minibatch examples in the training set; each at most once
            per replicate and call.
        logits : tensor (n_replicates, batch, n_classes), or (batch, n_classes)
            The logits the training step computed (detached here).
        targets : int64 tensor shaped as ``example_ids``
        """
        ids, logits, targets = self._replicate_batch(example_ids, logits, targets)
        flat = self._flat(ids)
        q = _quantities(logits.detach().reshape(-1, self.n_classes), targets.reshape(-1))
        for name, total in self._sum.items():
            total.index_add_(0, flat, q[name].to(self._dtype))
        self._presented.update(flat, q["correct"])
        p_true = q["p_true"].to(self._dtype)
        delta = p_true - self._p_mean[flat]
        self._p_mean[flat] += delta / self._presented.count[flat].to(self._dtype)
        self._p_m2[flat] += delta * (p_true - self._p_mean[flat])

    def _replicate_ids(self, example_ids: torch.Tensor) -> torch.Tensor:
        """Example ids as (n_replicates, batch); a single run may give them as (batch,)."""
        if self.n_replicates == 1 and example_ids.dim() == 1:
            return example_ids[None]
        if example_ids.dim() != 2 or example_ids.shape[0] != self.n_replicates:
            raise InputError(
                f"example_ids must have shape (n_replicates, batch) with n_replicates={self.n_replicates}, got {tuple(example_ids.shape)}",
                parameter="example_ids",
            )
        return example_ids

    def _replicate_batch(
        self, example_ids: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A training minibatch as (K, batch) ids, (K, batch, n_classes) logits, (K, batch) targets."""
        single = self.n_replicates == 1 and example_ids.dim() == 1
        ids = self._replicate_ids(example_ids)
        lead = tuple(example_ids.shape)
        if tuple(logits.shape) != (*lead, self.n_classes):
            raise InputError(f"logits must have shape {(*lead, self.n_classes)} (as example_ids, then n_classes), got {tuple(logits.shape)}", parameter="logits")
        if tuple(targets.shape) != lead:
            raise InputError(f"targets must have the shape of example_ids, {lead}, got {tuple(targets.shape)}", parameter="targets")
        if single:
            return ids, logits[None], targets[None]
        return ids, logits, targets

    def _flat(self, ids: torch.Tensor) -> torch.Tensor:
        """Positions of (K, batch) example ids in the flat (K * n_examples) state."""
        return (ids + self._offsets).reshape(-1)

    def _is_batched(self, model: nn.Module) -> bool:
        """Whether ``model`` is a batched model of the recorder's replicates (else an ordinary
        model of the single run); an InputError for a model that fits neither."""
        replicates = getattr(model, "n_replicates", None)
        if replicates is None:
            if self.n_replicates != 1:
                raise InputError(
                    f"model is not a batched model (no n_replicates attribute) but the recorder records n_replicates={self.n_replicates} runs",
                    parameter="model",
                )
            return False
        if replicates != self.n_replicates:
            raise InputError(f"model holds {replicates} replicates but the recorder records n_replicates={self.n_replicates}", parameter="model")
        return True

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits (K, batch, n_classes) of inputs (K, batch, *example_shape)."""
        logits = (model if self._is_batched(model) else OneRun(model))(x)
        expected = (*x.shape[:2], self.n_classes)
        if tuple(logits.shape) != expected:
            raise InputError(f"model gave logits of shape {tuple(logits.shape)} for inputs {tuple(x.shape)}, expected {expected}", parameter="model")
        return logits

    # ----------------------------------------------------------------------------------------
    # At the end of each epoch
    # ----------------------------------------------------------------------------------------

    def end_epoch(self, model: nn.Module) -> None:
        """Close an epoch: evaluate the training set where a requested definition needs it.

        Parameters
        ----------
        model : nn.Module
            As for :meth:`before_step`. Put in eval mode for the pass, then back in its mode.
        """
        epoch = self.epoch + 1
        at_vog = self.needs_vog and epoch in self.vog_epochs
        at_early = self.needs_early and epoch == self.early_epoch
        needed = self.needs_eval_every_epoch or at_vog or at_early
        batched = needed and self._is_batched(model)  # before the epoch counts: a wrong model changes nothing
        self.epoch = epoch
        if not needed:
            return
        was_training = model.training
        model.eval()
        try:
            logits = self._evaluate(model, at_vog)
            if at_early and "grand" in self.scores_requested:
                self._early["grand"] = self._grand(model, batched)
        finally:
            model.train(was_training)
        q = _quantities(logits.reshape(-1, self.n_classes), self._flat_targets)
        if self.needs_eval_every_epoch:
            self._record_eval_pass(q)
        if at_early:
            probs = F.softmax(logits.to(q["p_true"].dtype), dim=-1)
            # scatter, not F.one_hot, which reads the labels' range back to the host on a CPU
            one_hot = torch.zeros_like(probs).scatter_(-1, self.targets.expand(self.n_replicates, -1)[..., None], 1.0)
            self._early["el2n"] = (probs - one_hot).norm(dim=-1).reshape(-1)

    def _record_eval_pass(self, q: dict[str, torch.Tensor]) -> None:
        for name, total in self._eval_sum.items():
            total += q[name].to(self._dtype)
        self._epoch_rows["p_true"].append(q["p_true"])
        self._epoch_rows["correct"].append(q["correct"])
        if self.keep_trajectories:
            self._epoch_rows["loss"].append(q["loss"])
            self._epoch_rows["margin"].append(q["margin"])

    def _evaluate(self, model: nn.Module, at_vog: bool) -> torch.Tensor:
        """Eval-mode logits (K, n_examples, n_classes) of the training set; at a VoG checkpoint,
        the input gradients go into their accumulators chunk by chunk."""
        gradients = sorted({target for target, _ in self._vog}) if at_vog else []
        for accumulator in self._vog.values() if at_vog else ():
            accumulator.start_checkpoint()
        k = self.n_replicates
        logits = []
        for start in range(0, self.n_examples, self.eval_batch_size):
            x = self.inputs[start : start + self.eval_batch_size]
            y = self.targets[start : start + self.eval_batch_size]
            shared = x.expand(k, *x.shape)  # the same chunk for every replicate, not copied
            if gradients:
                # Each (replicate, example) needs its own input gradient, hence its own memory.
                forward = lambda inputs: self._forward(model, inputs)  # noqa: E731
                batch_logits, grads = true_class_input_grads(forward, shared.contiguous(), y.expand(k, *y.shape), gradients)
                for (target, channel_mean), accumulator in self._vog.items():
                    g = grads[target]
                    # Average over colour channels (axis 2 of (K, n, c, h, w)); flat inputs have none.
                    accumulator.update(start, g.mean(dim=2) if channel_mean and g.dim() >= 4 else g)
            else:
                with torch.no_grad():
                    batch_logits = self._forward(model, shared)
            logits.append(batch_logits)
        return torch.cat(logits, dim=1)

    def _grand(self, model: nn.Module, batched: bool) -> torch.Tensor:
        """Per-example gradient norms of every replicate, flat (K * n_examples)."""
        # Once per run, at the early epoch: a loop over the replicates costs little here.
        replicas = [model.replicate(k) for k in range(self.n_replicates)] if batched else [model]
        norms = []
        for replica in replicas:
            for start in range(0, self.n_examples, self.eval_batch_size):
                x = self.inputs[start : start + self.eval_batch_size]
                y = self.targets[start : start + self.eval_batch_size]
                norms.append(per_example_grad_norms(replica, x, y))
        return torch.cat(norms)

    # ----------------------------------------------------------------------------------------
    # Results
    # ----------------------------------------------------------------------------------------

    def scores(self) -> dict[str, np.ndarray]:
        """The requested definitions as float64 arrays of shape (n_examples,), of the single run.

        Presentation definitions of an example never presented are NaN, and so are the pre-step
        ones of an example never evaluated before a step (a loop that does not call
        :meth:`before_step`). Epoch-end definitions whose epoch was not reached (training stopped
        early) are NaN too, and so are the VoGs when training has a single checkpoint (no variance
        over one). With n_replicates > 1, see :meth:`replicate_scores`.
        """
        self._check_single("scores", "replicate_scores")
        return self.replicate_scores()[0]

    def replicate_scores(self) -> list[dict[str, np.ndarray]]:
        """The scores of each replicate: K dicts as :meth:`scores` returns (one for K = 1)."""
        everything = {
            **self._presentation_scores(),
            **self._pre_step_scores(),
            **self._epoch_scores(),
            **{name: self._grid(value) for name, value in self._early.items()},
            **self._vog_scores(),
        }
        nan = np.full(self._grid_shape, np.nan)
        grids = {name: np.asarray(everything.get(name, nan), dtype=np.float64) for name in self.scores_requested}
        return [{name: grid[k].copy() for name, grid in grids.items()} for k in range(self.n_replicates)]

    def _check_single(self, method: str, instead: str) -> None:
        if self.n_replicates != 1:
            raise InputError(
                f"n_replicates is {self.n_replicates}: {method}() gives a single run's results; use {instead}() for each replicate's",
                parameter="n_replicates",
            )

    def _grid(self, flat: torch.Tensor) -> np.ndarray:
        """A flat (K * n_examples) state tensor as a float64 (K, n_examples) array."""
        return flat.reshape(self._grid_shape).cpu().double().numpy()

    def _presentation_scores(self) -> dict[str, np.ndarray]:
        n_presented = self._presented.count.reshape(self._grid_shape).cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {name: self._grid(total) / n_presented for name, total in self._sum.items()}
            variance = self._grid(self._p_m2) / n_presented
        presented = n_presented > 0
        transitions = self._presented.scores()
        return {
            "loss:presentations": means["loss"],
            "accuracy:presentations": means["correct"],
            "aum:presentations": means["margin"],
            "aum:pleiss": means["logit_margin"],
            "entropy:presentations": means["entropy"],
            "forgetting:toneva": transitions["forgetting_toneva"],
            "confidence:swayamdipta": np.where(presented, self._grid(self._p_mean), np.nan),
            "variability:swayamdipta": np.sqrt(np.maximum(variance, 0.0)),
        }

    def _pre_step_scores(self) -> dict[str, np.ndarray]:
        transitions = self._pre_step.scores()
        return {"forgetting": transitions["forgetting"], "consistently_learned": transitions["consistently_learned"]}

    def _epoch_scores(self) -> dict[str, np.ndarray]:
        # Means over every epoch end only: a training stopped early has none.
        if len(self._epoch_rows["correct"]) != self.epochs:
            return {}
        means = {name: self._grid(total) / self.epochs for name, total in self._eval_sum.items()}
        rows = (self.epochs, *self._grid_shape)
        correct = torch.stack(self._epoch_rows["correct"]).reshape(rows).cpu().numpy()
        p_true = torch.stack(self._epoch_rows["p_true"]).reshape(rows).cpu().double().numpy()
        return {
            "loss": means["loss"],
            "accuracy": means["correct"],
            "aum": means["margin"],
            "entropy": means["entropy"],
            "confidence": p_true.mean(axis=0),
            "variability": p_true.std(axis=0),
            "consistently_learned:epoch": np.stack([score_defs.consistently_learned(correct[:, k]) for k in range(self.n_replicates)]),
        }

    def _vog_scores(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self._vog_requested:
            accumulator = self._vog[VOG_GRADIENTS[name]]
            # A variance over checkpoints needs two of them, and every one of them reached.
            if accumulator.count != len(self.vog_epochs) or accumulator.count < 2:
                continue
            if name == "vog":
                out[name] = accumulator.variance(ddof=1).mean(dim=-1).cpu().double().numpy()
            elif name == "vog:logit":
                out[name] = accumulator.variance(ddof=0).mean(dim=-1).cpu().double().numpy()
            else:
                spread = accumulator.variance(ddof=0).sqrt().mean(dim=-1).cpu().double().numpy()
                labels = self.targets.cpu().numpy()
                out[name] = np.stack([score_defs.class_normalise(run, labels) for run in spread])
        return out

    def trajectories(self) -> dict[str, np.ndarray]:
        """Per-epoch eval-mode ``loss``, ``correct`` and ``margin``, shape (n_epochs, n_examples),
        of the single run (with n_replicates > 1, see :meth:`replicate_trajectories`)."""
        self._check_trajectories_kept()
        self._check_single("trajectories", "replicate_trajectories")
        return self.replicate_trajectories()[0]

    def replicate_trajectories(self) -> list[dict[str, np.ndarray]]:
        """The trajectories of each replicate: K dicts as :meth:`trajectories` returns."""
        self._check_trajectories_kept()
        stacked = {
            name: torch.stack(r).float().reshape(len(r), *self._grid_shape).cpu().numpy()
            for name in ("loss", "correct", "margin")
            if (r := self._epoch_rows[name])
        }
        return [{name: np.ascontiguousarray(values[:, k]) for name, values in stacked.items()} for k in range(self.n_replicates)]

    def _check_trajectories_kept(self) -> None:
        if not self.keep_trajectories:
            raise InputError("keep_trajectories is off: create the recorder with keep_trajectories=True to keep trajectories", parameter="keep_trajectories")
