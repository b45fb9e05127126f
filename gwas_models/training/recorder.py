"""Record difficulty scores inside any PyTorch training loop.

>>> recorder = ScoreRecorder(train_x, train_y, n_classes=10, epochs=30)      # doctest: +SKIP
>>> for epoch in range(30):                                                   # doctest: +SKIP
...     for example_ids, x, y in batches:
...         logits = model(augment(x))
...         loss = F.cross_entropy(logits, y); ...
...         recorder.observe(example_ids, logits, y)
...     recorder.end_epoch(model)
>>> scores = recorder.scores()        # {"loss": array(n_examples), ...}

``observe`` takes the training minibatch's logits (no extra forward pass): it feeds the
presentation scores. ``end_epoch`` evaluates the whole training set in eval mode, without
augmentation, when a requested score needs it (``consistently_learned``, ``confidence``,
``variability`` every epoch; ``el2n`` and ``grand`` at the early epoch; ``vog`` at its checkpoints).
The definitions are those of :mod:`gwas_models.scores`; this class computes them on the training
device as training goes.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models import scores as score_defs
from gwas_models.errors import InputError
from gwas_models.training.gradients import per_example_grad_norms, true_class_logits_and_input_grads


def default_early_epoch(epochs: int) -> int:
    """The paper's epoch 20 of 160, scaled: one eighth of training, at least epoch 1."""
    return max(1, round(epochs / 8))


def default_vog_epochs(epochs: int, n_checkpoints: int) -> tuple[int, ...]:
    """``n_checkpoints`` epochs spread evenly over training, ending at the last epoch."""
    n_checkpoints = min(n_checkpoints, epochs)
    return tuple(sorted({int(round(e)) for e in np.linspace(epochs / n_checkpoints, epochs, n_checkpoints)}))


class ScoreRecorder:
    """Streaming per-example score recorder.

    Parameters
    ----------
    inputs : tensor (n_examples, c, h, w)
        The training set as the model sees it without augmentation (normalised), on the training
        device. Needed only for the epoch-end scores; may be ``None`` when only presentation
        scores are requested.
    targets : int64 tensor (n_examples,)
    n_classes : int
    epochs : int
        Number of epochs the loop will run (for the early epoch and the VoG checkpoints).
    scores : iterable of str
        Which scores to compute (default: all of :data:`gwas_models.scores.SCORE_NAMES`).
    early_epoch : int, optional
        1-based epoch of ``el2n`` and ``grand`` (default ``epochs / 8``, the paper's 20 of 160).
    vog_checkpoints : int
        Number of checkpoints for ``vog`` (spread evenly, the last at the end of training).
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
        vog_checkpoints: int = 8,
        eval_batch_size: int = 1024,
        keep_trajectories: bool = False,
    ) -> None:
        self.scores_requested = tuple(score_defs.score_info(s).name for s in scores)
        if epochs < 1:
            raise InputError(f"epochs must be at least 1, got {epochs}")
        self.epochs = epochs
        self.early_epoch = early_epoch if early_epoch is not None else default_early_epoch(epochs)
        if not 1 <= self.early_epoch <= epochs:
            raise InputError(f"early epoch must lie in 1..{epochs}, got {self.early_epoch}")
        if vog_checkpoints < 2:
            raise InputError(f"vog needs at least 2 checkpoints, got {vog_checkpoints}")
        self.vog_epochs = default_vog_epochs(epochs, vog_checkpoints)
        self.keep_trajectories = keep_trajectories
        kinds = {score_defs.SCORES[s].kind for s in self.scores_requested}
        self.needs_eval_every_epoch = "epoch" in kinds or keep_trajectories
        self.needs_early = "early" in kinds
        self.needs_vog = "vog" in kinds
        if (self.needs_eval_every_epoch or self.needs_early or self.needs_vog) and inputs is None:
            raise InputError("epoch-end scores need the training inputs; pass inputs= or request presentation scores only")
        self.inputs = inputs
        self.targets = targets
        self.n_classes = n_classes
        self.eval_batch_size = eval_batch_size
        self.n_examples = len(targets)
        self.epoch = 0
        device = targets.device
        # float64 sums where the device has them, so long trainings keep exact means.
        self._dtype = torch.float32 if device.type == "mps" else torch.float64
        zeros = lambda dtype=self._dtype: torch.zeros(self.n_examples, dtype=dtype, device=device)  # noqa: E731
        self._sum = {name: zeros() for name in ("loss", "correct", "margin", "entropy")}
        self._presentations = zeros(torch.int64)
        self._forgetting_events = zeros(torch.int64)
        self._previous_correct = zeros(torch.bool)
        self._ever_correct = zeros(torch.bool)
        self._epoch_rows: dict[str, list[torch.Tensor]] = {"p_true": [], "correct": [], "loss": [], "margin": []}
        self._early: dict[str, torch.Tensor] = {}
        self._vog_count = 0
        self._vog_mean: torch.Tensor | None = None
        self._vog_m2: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------
    # During the epoch
    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _quantities(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Same quantities as :func:`gwas_models.scores.output_quantities`, in torch."""
        log_probs = F.log_softmax(logits.float(), dim=1)
        probs = log_probs.exp()
        p_true = probs.gather(1, targets[:, None])[:, 0]
        p_other = probs.scatter(1, targets[:, None], float("-inf")).amax(dim=1)
        return {
            "loss": -log_probs.gather(1, targets[:, None])[:, 0],
            "correct": logits.argmax(dim=1) == targets,
            "p_true": p_true,
            "margin": p_true - p_other,
            "entropy": -(probs * log_probs).sum(dim=1),
        }

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
        q = self._quantities(logits.detach(), targets)
        for name in self._sum:
            self._sum[name].index_add_(0, example_ids, q[name].to(self._dtype))
        correct = q["correct"]
        forgot = self._previous_correct[example_ids] & ~correct
        self._forgetting_events.index_add_(0, example_ids, forgot.long())
        self._previous_correct[example_ids] = correct
        self._ever_correct[example_ids] |= correct
        self._presentations.index_add_(0, example_ids, torch.ones_like(example_ids))

    # ----------------------------------------------------------------------------------------
    # At the end of each epoch
    # ----------------------------------------------------------------------------------------

    def end_epoch(self, model: nn.Module) -> None:
        """Close an epoch: evaluate the training set where a requested score needs it."""
        self.epoch += 1
        at_vog = self.needs_vog and self.epoch in self.vog_epochs
        at_early = self.needs_early and self.epoch == self.early_epoch
        if not (self.needs_eval_every_epoch or at_vog or at_early):
            return
        was_training = model.training
        model.eval()
        try:
            logits, input_grads = self._evaluate(model, with_input_grads=at_vog)
        finally:
            model.train(was_training)
        q = self._quantities(logits, self.targets)
        if self.needs_eval_every_epoch:
            self._epoch_rows["p_true"].append(q["p_true"])
            self._epoch_rows["correct"].append(q["correct"])
            if self.keep_trajectories:
                self._epoch_rows["loss"].append(q["loss"])
                self._epoch_rows["margin"].append(q["margin"])
        if at_early:
            probs = F.softmax(logits.float(), dim=1)
            one_hot = F.one_hot(self.targets, self.n_classes).to(probs.dtype)
            self._early["el2n"] = (probs - one_hot).norm(dim=1)
            if "grand" in self.scores_requested:
                self._early["grand"] = self._grand(model)
        if at_vog:
            self._update_vog(input_grads)

    def _evaluate(self, model: nn.Module, with_input_grads: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, grads = [], []
        for start in range(0, self.n_examples, self.eval_batch_size):
            x = self.inputs[start : start + self.eval_batch_size]
            y = self.targets[start : start + self.eval_batch_size]
            if with_input_grads:
                batch_logits, batch_grads = true_class_logits_and_input_grads(model, x, y)
                grads.append(batch_grads)
            else:
                with torch.no_grad():
                    batch_logits = model(x)
            logits.append(batch_logits)
        return torch.cat(logits), (torch.cat(grads) if grads else None)

    def _grand(self, model: nn.Module) -> torch.Tensor:
        norms = []
        for start in range(0, self.n_examples, self.eval_batch_size):
            x = self.inputs[start : start + self.eval_batch_size]
            y = self.targets[start : start + self.eval_batch_size]
            norms.append(per_example_grad_norms(model, x, y))
        return torch.cat(norms)

    def _update_vog(self, grads: torch.Tensor) -> None:
        # Welford's update: the variance over checkpoints without keeping every checkpoint.
        grads = grads.to(self._dtype)
        self._vog_count += 1
        if self._vog_mean is None:
            self._vog_mean = grads.clone()
            self._vog_m2 = torch.zeros_like(grads)
            return
        delta = grads - self._vog_mean
        self._vog_mean += delta / self._vog_count
        self._vog_m2 += delta * (grads - self._vog_mean)

    # ----------------------------------------------------------------------------------------
    # Results
    # ----------------------------------------------------------------------------------------

    def scores(self) -> dict[str, np.ndarray]:
        """The requested scores as float64 arrays of shape (n_examples,).

        Presentation scores of an example never presented are NaN; epoch-end scores whose epoch
        was not reached (training stopped early) are NaN too, and so is ``vog`` when training has
        a single epoch (no variance over one checkpoint).
        """
        out: dict[str, np.ndarray] = {}
        n_presented = self._presentations.cpu().numpy()
        presented = n_presented > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {name: self._sum[name].cpu().double().numpy() / n_presented for name in self._sum}
        forgetting = self._forgetting_events.cpu().numpy().astype(np.float64)
        never_learned = ~self._ever_correct.cpu().numpy()
        forgetting = np.where(never_learned, n_presented.astype(np.float64), forgetting)
        presentation_scores = {
            "loss": means["loss"],
            "accuracy": means["correct"],
            "aum": means["margin"],
            "entropy": means["entropy"],
            "forgetting": np.where(presented, forgetting, np.nan),
        }
        nan = np.full(self.n_examples, np.nan)
        epoch_scores = {}
        if self._epoch_rows["correct"]:
            correct = torch.stack(self._epoch_rows["correct"]).cpu().numpy()
            p_true = torch.stack(self._epoch_rows["p_true"]).double().cpu().numpy()
            if correct.shape[0] == self.epochs:
                epoch_scores = {
                    "consistently_learned": score_defs.consistently_learned(correct),
                    "confidence": p_true.mean(axis=0),
                    "variability": p_true.std(axis=0),
                }
        early = {name: value.double().cpu().numpy() for name, value in self._early.items()}
        vog = nan
        # A variance over checkpoints needs two of them: one-epoch training has no VoG.
        if self._vog_m2 is not None and self._vog_count == len(self.vog_epochs) >= 2:
            variance = (self._vog_m2 / self._vog_count).reshape(self.n_examples, -1)
            vog = variance.mean(dim=1).double().cpu().numpy()
        everything = {**presentation_scores, **epoch_scores, **early, "vog": vog}
        for name in self.scores_requested:
            out[name] = np.asarray(everything.get(name, nan), dtype=np.float64)
        return out

    def trajectories(self) -> dict[str, np.ndarray]:
        """Per-epoch eval-mode ``loss``, ``correct`` and ``margin``, shape (n_epochs, n_examples)."""
        if not self.keep_trajectories:
            raise InputError("trajectories were not kept; create the recorder with keep_trajectories=True")
        rows = {name: self._epoch_rows[name] for name in ("loss", "correct", "margin")}
        return {name: torch.stack(r).float().cpu().numpy() for name, r in rows.items() if r}
