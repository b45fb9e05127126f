"""Difficulty scores: their names, directions and definitions.

This file is the one place where a score is defined. Each score is a per-example number computed
from one training run. The table below is the registry; the functions under it are the reference
definitions in NumPy over whole trajectories. The streaming recorder in
:mod:`gwas_models.training.recorder` computes the same quantities on the training device, minibatch by
minibatch, and its tests check it against these functions.

Two kinds of trajectory feed the scores:

* *presentations*: the training minibatches in which an example was used, with the model in
  training mode and the example augmented. ``loss``, ``accuracy``, ``aum``, ``forgetting`` and
  ``entropy`` average over presentations, as Toneva et al. (2019) and Pleiss et al. (2020) do.
* *epochs*: one evaluation of the whole training set at the end of each epoch, in eval mode and
  without augmentation. ``consistently_learned``, ``confidence`` and ``variability`` use these;
  ``el2n`` and ``grand`` use the evaluation at one early epoch, ``vog`` a few checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from gwas_models.errors import InputError

ScoreKind = Literal["minibatch", "epoch", "early", "vog"]


@dataclass(frozen=True)
class ScoreInfo:
    """What a score is and how to read it.

    Attributes
    ----------
    name : str
        Column name in the run store.
    higher_is_harder : bool
        True when a larger value means a harder example.
    kind : {"minibatch", "epoch", "early", "vog"}
        What must be recorded to compute it: the training minibatches only, an evaluation pass at
        every epoch end, one evaluation at the early epoch (with per-example gradients for
        ``grand``), or input gradients at a few checkpoints.
    description : str
        One-line definition.
    source : str
        The paper the definition follows.
    """

    name: str
    higher_is_harder: bool
    kind: ScoreKind
    description: str
    source: str

    @property
    def sign(self) -> int:
        """+1 when higher is harder, -1 when higher is easier: multiply to orient to difficulty."""
        return 1 if self.higher_is_harder else -1


SCORES: dict[str, ScoreInfo] = {
    info.name: info
    for info in (
        ScoreInfo("loss", True, "minibatch", "mean cross-entropy over presentations", "Jiang et al. 2020"),
        ScoreInfo("accuracy", False, "minibatch", "mean zero-one correctness over presentations", "Jiang et al. 2020"),
        ScoreInfo(
            "aum",
            False,
            "minibatch",
            "mean over presentations of p(true class) - max p(other class)",
            "Pleiss et al. 2020",
        ),
        ScoreInfo(
            "forgetting",
            True,
            "minibatch",
            "correct-to-incorrect transitions over successive presentations; never learned = n presentations",
            "Toneva et al. 2019",
        ),
        ScoreInfo(
            "consistently_learned",
            True,
            "epoch",
            "first epoch (1-based) after which the example stays correct; never learned = epochs + 1",
            "Baldock et al. 2021; Siddiqui et al. 2022",
        ),
        ScoreInfo("el2n", True, "early", "||softmax - one-hot||_2 at the early epoch", "Paul et al. 2021"),
        ScoreInfo("grand", True, "early", "||grad_theta loss||_2 at the early epoch, all parameters", "Paul et al. 2021"),
        ScoreInfo(
            "vog",
            True,
            "vog",
            "variance over checkpoints of d logit_true / d input, averaged over input elements",
            "Agarwal et al. 2020",
        ),
        ScoreInfo("confidence", False, "epoch", "mean over epochs of p(true class)", "Swayamdipta et al. 2020"),
        ScoreInfo("variability", True, "epoch", "std over epochs of p(true class)", "Swayamdipta et al. 2020"),
        ScoreInfo("entropy", True, "minibatch", "mean predictive entropy over presentations", "Jiang et al. 2020"),
    )
}

SCORE_NAMES: tuple[str, ...] = tuple(SCORES)
MINIBATCH_SCORES: tuple[str, ...] = tuple(n for n, s in SCORES.items() if s.kind == "minibatch")


def score_info(name: str) -> ScoreInfo:
    """Look up a built-in score, with an error that lists the valid names."""
    try:
        return SCORES[name]
    except KeyError:
        raise InputError(f"unknown score {name!r}; valid scores: {', '.join(SCORE_NAMES)}") from None


def parse_score_list(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated score list (``None``, ``""`` or ``"all"`` mean every score)."""
    if text is None or text.strip() in ("", "all"):
        return SCORE_NAMES
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        score_info(name)
    return names


# --------------------------------------------------------------------------------------------
# Per-evaluation quantities: one forward pass of a batch of examples.
# --------------------------------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def output_quantities(logits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example quantities of one evaluation.

    Parameters
    ----------
    logits : array of shape (..., n_classes)
    targets : int array of shape (...)

    Returns
    -------
    dict with arrays of shape (...): ``loss`` (cross-entropy), ``correct`` (argmax equals target;
    ties go to the lowest class index, as in ``argmax``), ``p_true`` (softmax probability of the
    target), ``margin`` (p_true minus the largest other probability) and ``entropy`` (natural log).
    """
    log_probs = log_softmax(logits)
    probs = np.exp(log_probs)
    # Targets of shape (n_examples,) apply to every step of a (n_steps, n_examples, C) trajectory.
    targets = np.broadcast_to(np.asarray(targets), log_probs.shape[:-1])[..., None]
    p_true = np.take_along_axis(probs, targets, axis=-1)[..., 0]
    others = probs.copy()
    np.put_along_axis(others, targets, -np.inf, axis=-1)
    return {
        "loss": -np.take_along_axis(log_probs, targets, axis=-1)[..., 0],
        "correct": np.argmax(logits, axis=-1) == targets[..., 0],
        "p_true": p_true,
        "margin": p_true - others.max(axis=-1),
        "entropy": -(probs * log_probs).sum(axis=-1),
    }


# --------------------------------------------------------------------------------------------
# Scores from trajectories. Trajectory arrays have shape (n_steps, n_examples).
# --------------------------------------------------------------------------------------------


def forgetting(correct: np.ndarray) -> np.ndarray:
    """Forgetting events over successive presentations (Toneva et al. 2019).

    Parameters
    ----------
    correct : bool array of shape (n_presentations, n_examples)

    Returns
    -------
    float array of shape (n_examples,): the number of correct-to-incorrect transitions. An example
    never classified correctly gets ``n_presentations``, more than the ``n_presentations // 2``
    transitions any learned example can have, so it ranks as the most forgotten while staying finite.
    """
    correct = np.asarray(correct, dtype=bool)
    events = (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.float64)
    never_learned = ~correct.any(axis=0)
    return np.where(never_learned, float(correct.shape[0]), events)


def consistently_learned(correct: np.ndarray) -> np.ndarray:
    """First epoch (1-based) from which the example stays correct to the end of training.

    Parameters
    ----------
    correct : bool array of shape (n_epochs, n_examples), evaluations at the end of each epoch.

    Returns
    -------
    float array: 1 if correct at every epoch end, ``n_epochs + 1`` if wrong at the last one.
    """
    correct = np.asarray(correct, dtype=bool)
    n_epochs = correct.shape[0]
    epochs = np.arange(1, n_epochs + 1)[:, None]
    last_wrong = np.where(~correct, epochs, 0).max(axis=0)
    return (last_wrong + 1).astype(np.float64)


def el2n(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """L2 norm of softmax minus the one-hot target (Paul et al. 2021)."""
    probs = np.exp(log_softmax(logits))
    one_hot = np.eye(probs.shape[-1])[np.asarray(targets)]
    return np.linalg.norm(probs - one_hot, axis=-1)


def vog(input_gradients: np.ndarray) -> np.ndarray:
    """Variance of gradients (Agarwal et al. 2020).

    Parameters
    ----------
    input_gradients : array of shape (n_checkpoints, n_examples, *input_shape)
        Gradient of the true-class logit with respect to the input at each checkpoint.

    Returns
    -------
    array of shape (n_examples,): the variance over checkpoints (population variance) of each input
    element, averaged over the input elements.
    """
    grads = np.asarray(input_gradients, dtype=np.float64)
    flat = grads.reshape(grads.shape[0], grads.shape[1], -1)
    return flat.var(axis=0).mean(axis=-1)


def scores_from_trajectories(
    presentation_logits: np.ndarray,
    epoch_logits: np.ndarray,
    targets: np.ndarray,
    early_epoch: int,
) -> dict[str, np.ndarray]:
    """All output-based scores from full logit trajectories (everything but ``grand`` and ``vog``).

    Parameters
    ----------
    presentation_logits : array (n_presentations, n_examples, n_classes)
        Training-mode logits, one row per presentation of every example.
    epoch_logits : array (n_epochs, n_examples, n_classes)
        Eval-mode logits at the end of each epoch.
    targets : int array (n_examples,)
    early_epoch : int
        1-based epoch whose evaluation gives ``el2n``.
    """
    seen = output_quantities(presentation_logits, targets)
    evaluated = output_quantities(epoch_logits, targets)
    return {
        "loss": seen["loss"].mean(axis=0),
        "accuracy": seen["correct"].mean(axis=0),
        "aum": seen["margin"].mean(axis=0),
        "forgetting": forgetting(seen["correct"]),
        "consistently_learned": consistently_learned(evaluated["correct"]),
        "el2n": el2n(epoch_logits[early_epoch - 1], targets),
        "confidence": evaluated["p_true"].mean(axis=0),
        "variability": evaluated["p_true"].std(axis=0),
        "entropy": seen["entropy"].mean(axis=0),
    }
