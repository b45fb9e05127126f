"""Difficulty scores: their definitions, names, directions and sources.

This file is the one place where a score is defined. Each score is a per-example number computed
from one training run. The registry below names every definition; the functions under it are the
reference definitions in NumPy over whole trajectories. The streaming recorder in
:mod:`gwas_models.training.recorder` computes the same quantities on the training device, minibatch
by minibatch, and its tests check it against these functions.

Definition sets
---------------
A score has a *default* definition, named by the bare score name (``vog``), which is the one the
paper's own code computes (Kwok et al. 2024: github.com/devinkwok/nn_example_difficulty and its
open_lth fork), so that ``gwasm`` reproduces the paper. Where the original paper that proposed a
score defined it otherwise, that definition is a *named variant*, ``<score>:<variant>``
(``vog:agarwal``). Every definition is a column of its own in the run store, so a study can compare
definitions and two runs are never pooled across definitions. ``paper`` names the default set (every
bare name), ``all`` every definition. The module names of the paper's code cited below are given as
best known (the repository was not at hand when this was written).

Stores written before variants existed (definitions version 1) hold today's variants under bare
names; :data:`LEGACY_COLUMNS` says which definition each of their columns is.

Four kinds of trajectory feed the scores:

* *presentations*: the training minibatches in which an example was used, with the model in
  training mode and the example augmented: the logits the training step computed anyway (free).
* *pre-step evaluations*: each training minibatch evaluated in eval mode, without augmentation,
  just before the step that trains on it (one extra forward pass per step).
* *epochs*: one evaluation of the whole training set at the end of each epoch, in eval mode and
  without augmentation ("eval passes").
* *input gradients* at checkpoints (epoch ends), in eval mode, for the VoG definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

import numpy as np

from gwas_models.errors import InputError

ScoreKind = Literal["presentation", "prestep", "epoch", "early", "vog"]

DEFINITIONS_VERSION = 2
"""Version of the definition set. 1: before named variants (bare names meant today's variants)."""

VARIANT_SEPARATOR = ":"
"""Separates a score from its variant in a definition's name (and store column): ``vog:agarwal``."""

PAPER = "paper"
"""Name of the default definition set in a score list: every bare score name."""
ALL = "all"
"""Name of the set of every definition, bare names and variants."""

PAPER_CODE = "Kwok et al. 2024 code (devinkwok/nn_example_difficulty, open_lth fork)"


@dataclass(frozen=True)
class ScoreInfo:
    """What a score definition is and how to read it.

    Attributes
    ----------
    name : str
        The definition's name and its column in the run store: ``<score>`` for the paper's
        definition, ``<score>:<variant>`` for a named variant.
    higher_is_harder : bool
        True when a larger value means a harder example.
    kind : {"presentation", "prestep", "epoch", "early", "vog"}
        What must be recorded to compute it: the training minibatches' own logits, an eval-mode
        forward pass of each minibatch before its step, an evaluation pass at every epoch end, one
        evaluation at the early epoch (with per-example gradients for ``grand``), or input
        gradients at the VoG checkpoints.
    description : str
        One-line definition.
    source : str
        Where the definition comes from: the paper's code for a default, the original paper for a
        variant.
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

    @property
    def base(self) -> str:
        """The score this defines (``vog`` for ``vog:agarwal``)."""
        return self.name.split(VARIANT_SEPARATOR, 1)[0]

    @property
    def variant(self) -> str | None:
        """The variant's name (``agarwal``), or None for the paper's definition."""
        parts = self.name.split(VARIANT_SEPARATOR, 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def is_default(self) -> bool:
        """True for the paper's definition (a bare name)."""
        return self.variant is None


_JIANG = "Jiang et al. 2020 (Characterizing structural regularities of labeled data)"
_TONEVA = "Toneva et al. 2019 (An empirical study of example forgetting)"
_PLEISS = "Pleiss et al. 2020 (Area under the margin ranking; the aum package)"
_SWAYAMDIPTA = "Swayamdipta et al. 2020 (Dataset cartography)"
_AGARWAL = "Agarwal et al. 2020 (Estimating example difficulty using variance of gradients)"
_PAUL = "Paul et al. 2021 (Deep learning on a data diet)"

_DEFINITIONS: tuple[ScoreInfo, ...] = (
    # ---- the paper's code: the default set, in the order of the paper's figures --------------
    ScoreInfo(
        "loss", True, "epoch", "mean over eval passes (epoch ends) of the cross-entropy",
        f"{PAPER_CODE}: pointwise cross-entropy (difficulty/metrics/pointwise.py) averaged over epochs",
    ),
    ScoreInfo(
        "accuracy", False, "epoch", "mean over eval passes of zero-one correctness",
        f"{PAPER_CODE}: pointwise zero-one accuracy (difficulty/metrics/pointwise.py) averaged over epochs",
    ),
    ScoreInfo(
        "aum", False, "epoch", "mean over eval passes of p(true class) - max p(other class), softmax",
        f"{PAPER_CODE}: softmax margin (difficulty/metrics/pointwise.py) averaged over epochs",
    ),
    ScoreInfo(
        "forgetting", True, "prestep",
        "correct-to-incorrect transitions of the eval-mode, unaugmented prediction of each minibatch "
        "before its step; never learned = 0",
        f"{PAPER_CODE}: per-minibatch forgetting events (difficulty/metrics/forget.py)",
    ),
    ScoreInfo(
        "consistently_learned", True, "prestep",
        "first presentation (1-based) from which the pre-step eval-mode prediction stays correct; "
        "wrong at the last one = presentations + 1",
        f"{PAPER_CODE}: first unforgettable iteration (difficulty/metrics/forget.py)",
    ),
    ScoreInfo(
        "el2n", True, "early", "||softmax - one-hot||_2 of the eval pass at the early epoch",
        f"{PAPER_CODE}: error L2 norm at epoch 20 of 160 (difficulty/metrics/pointwise.py); {_PAUL}",
    ),
    ScoreInfo(
        "grand", True, "early", "||grad_theta loss||_2 at the early epoch, all parameters, eval mode",
        f"{PAPER_CODE}: gradient norm at epoch 20 of 160 (difficulty/metrics/grad.py); {_PAUL}",
    ),
    ScoreInfo(
        "vog", True, "vog",
        "d p(true class) / d input, channels averaged; sample variance (ddof=1) over the checkpoints "
        "(every epoch end by default); mean over pixels",
        f"{PAPER_CODE}: variance of gradients (difficulty/metrics/grad.py)",
    ),
    ScoreInfo(
        "confidence", False, "epoch", "mean over eval passes of p(true class)",
        f"{PAPER_CODE}: class confidence averaged over epochs; {_SWAYAMDIPTA}",
    ),
    ScoreInfo(
        "variability", True, "epoch", "std (ddof=0) over eval passes of p(true class)",
        f"{PAPER_CODE}: std of class confidence over epochs; {_SWAYAMDIPTA}",
    ),
    ScoreInfo(
        "entropy", True, "epoch", "mean over eval passes of the predictive entropy (natural log)",
        f"{PAPER_CODE}: pointwise entropy (difficulty/metrics/pointwise.py) averaged over epochs",
    ),
    # ---- named variants: the original papers' definitions (and gwasm's before version 2) ------
    ScoreInfo("loss:presentations", True, "presentation", "mean cross-entropy over presentations", f"{_JIANG}; {_TONEVA}"),
    ScoreInfo(
        "accuracy:presentations", False, "presentation", "mean zero-one correctness over presentations", f"{_JIANG}; {_TONEVA}"
    ),
    ScoreInfo(
        "aum:presentations", False, "presentation",
        "mean over presentations of p(true class) - max p(other class), softmax (gwasm before version 2)",
        f"{_PLEISS}, with the softmax margin",
    ),
    ScoreInfo(
        "aum:pleiss", False, "presentation", "mean over presentations of logit(true class) - max logit(other class)", _PLEISS
    ),
    ScoreInfo(
        "forgetting:toneva", True, "presentation",
        "correct-to-incorrect transitions over successive presentations (training mode, augmented); "
        "never learned = number of presentations",
        _TONEVA,
    ),
    ScoreInfo(
        "consistently_learned:epoch", True, "epoch",
        "first epoch (1-based) after which the eval-pass prediction stays correct; wrong at the last = epochs + 1",
        "Baldock et al. 2021; Siddiqui et al. 2022",
    ),
    ScoreInfo(
        "vog:logit", True, "vog",
        "d logit(true class) / d input; population variance over the checkpoints of each input element, "
        "mean over elements (gwasm before version 2)",
        f"{_AGARWAL}, without its per-class normalisation",
    ),
    ScoreInfo(
        "vog:agarwal", True, "vog",
        "d logit(true class) / d input, channels averaged; population std over the checkpoints per pixel, "
        "mean over pixels; then (vog - class mean) / class std",
        _AGARWAL,
    ),
    ScoreInfo(
        "confidence:swayamdipta", False, "presentation", "mean over presentations of p(true class)", _SWAYAMDIPTA
    ),
    ScoreInfo(
        "variability:swayamdipta", True, "presentation", "std (ddof=0) over presentations of p(true class)", _SWAYAMDIPTA
    ),
    ScoreInfo(
        "entropy:presentations", True, "presentation", "mean predictive entropy over presentations", _JIANG
    ),
)  # fmt: skip

SCORES: dict[str, ScoreInfo] = {info.name: info for info in _DEFINITIONS}
"""Every definition by name: the paper's (bare names) and the named variants."""

SCORE_NAMES: tuple[str, ...] = tuple(n for n, s in SCORES.items() if s.is_default)
"""The paper's definitions, the default set (``paper``): every bare score name."""
PAPER_SCORE_NAMES = SCORE_NAMES
ALL_SCORE_NAMES: tuple[str, ...] = tuple(SCORES)
"""Every definition (``all``), the paper's first: the score columns of the run store."""
VARIANT_NAMES: tuple[str, ...] = tuple(n for n, s in SCORES.items() if not s.is_default)
MINIBATCH_SCORES: tuple[str, ...] = tuple(n for n, s in SCORES.items() if s.kind == "presentation")
"""Definitions computed from the training minibatches' own logits alone (no extra pass)."""

LEGACY_COLUMNS: Mapping[str, str] = {
    "loss": "loss:presentations",
    "accuracy": "accuracy:presentations",
    "aum": "aum:presentations",
    "entropy": "entropy:presentations",
    "forgetting": "forgetting:toneva",
    "consistently_learned": "consistently_learned:epoch",
    "vog": "vog:logit",
    "el2n": "el2n",
    "grand": "grand",
    "confidence": "confidence",
    "variability": "variability",
}
"""Definitions version 1 (stores written before named variants): column -> the definition it holds.

``el2n`` and ``grand`` keep their names: the formula is the same and the early epoch they were
taken at is in each run's provenance (``early_epoch``); only its default for runs under 12 epochs
changed (epoch 1 then, 2 now). ``confidence`` and ``variability`` were already eval-pass means.
"""


def score_info(name: str) -> ScoreInfo:
    """Look up a score definition, with an error that lists the valid names."""
    try:
        return SCORES[name]
    except KeyError:
        raise InputError(f"unknown score {name!r}; valid scores: {', '.join(ALL_SCORE_NAMES)}") from None


def definitions_of(base: str) -> tuple[str, ...]:
    """Every definition of one score, the paper's first: ``definitions_of("vog")``."""
    return tuple(n for n, s in SCORES.items() if s.base == base)


def parse_score_list(text: str | None) -> tuple[str, ...]:
    """Parse a comma-separated list of score definitions.

    ``None`` or ``""`` mean the paper's set; the words ``paper`` and ``all`` stand for the paper's
    set and every definition and may be mixed with names (``paper,vog:agarwal``). Names are kept in
    the order given, each once.

    Raises
    ------
    InputError
        An unknown name (the message lists the valid ones).
    """
    if text is None or not text.strip():
        return SCORE_NAMES
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == PAPER:
            names.extend(SCORE_NAMES)
        elif part == ALL:
            names.extend(ALL_SCORE_NAMES)
        elif part:
            names.append(score_info(part).name)
    return tuple(dict.fromkeys(names))


def definition_record(names: Iterable[str]) -> dict:
    """What a run's provenance records of its scores' definitions (key ``score_definitions``)."""
    return {
        "version": DEFINITIONS_VERSION,
        "recorded": [score_info(n).name for n in names],
        "sources": {n: SCORES[n].source for n in names},
    }


def default_early_epoch(epochs: int) -> int:
    """Epoch of ``el2n`` and ``grand``: one eighth of training (the paper's 20 of 160), at least 2.

    The floor keeps the score meaningful for short runs: after one epoch a model has barely left
    its initialisation (``round(10 / 8)`` would be epoch 1), and Paul et al. score "early in
    training", not at initialisation. Capped at ``epochs`` (a one-epoch run uses epoch 1). Python's
    ``round`` rounds halves to even: 20 epochs give epoch 2, 28 give epoch 4.
    """
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}", parameter="epochs")
    return min(epochs, max(2, round(epochs / 8)))


def default_vog_epochs(epochs: int, n_checkpoints: int | None = None) -> tuple[int, ...]:
    """The VoG checkpoints: every epoch end (the paper's code), or ``n_checkpoints`` spread evenly.

    With ``n_checkpoints`` the epochs are spread over training, the last at its end (gwasm's
    checkpoints before version 2: 8 of them).
    """
    if n_checkpoints is None or n_checkpoints >= epochs:
        return tuple(range(1, epochs + 1))
    return tuple(sorted({int(round(e)) for e in np.linspace(epochs / n_checkpoints, epochs, n_checkpoints)}))


def legacy_column_name(column: str) -> str:
    """The definition a column of a version-1 store holds (unchanged if it is no score column)."""
    return LEGACY_COLUMNS.get(column, column)


# --------------------------------------------------------------------------------------------
# Per-evaluation quantities: one forward pass of a batch of examples.
# --------------------------------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _largest_other(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    others = values.copy()
    np.put_along_axis(others, targets, -np.inf, axis=-1)
    return others.max(axis=-1)


def output_quantities(logits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example quantities of one evaluation.

    Parameters
    ----------
    logits : array of shape (..., n_classes)
    targets : int array of shape (...), or of the trailing shape (broadcast over leading axes)

    Returns
    -------
    dict with arrays of shape (...): ``loss`` (cross-entropy), ``correct`` (argmax equals target;
    ties go to the lowest class index, as in ``argmax``), ``p_true`` (softmax probability of the
    target), ``margin`` (p_true minus the largest other probability), ``logit_margin`` (the
    target's logit minus the largest other logit) and ``entropy`` (natural log).
    """
    logits = np.asarray(logits, dtype=np.float64)
    log_probs = log_softmax(logits)
    probs = np.exp(log_probs)
    # Targets of shape (n_examples,) apply to every step of a (n_steps, n_examples, C) trajectory.
    targets = np.broadcast_to(np.asarray(targets), log_probs.shape[:-1])[..., None]
    p_true = np.take_along_axis(probs, targets, axis=-1)[..., 0]
    logit_true = np.take_along_axis(logits, targets, axis=-1)[..., 0]
    return {
        "loss": -np.take_along_axis(log_probs, targets, axis=-1)[..., 0],
        "correct": np.argmax(logits, axis=-1) == targets[..., 0],
        "p_true": p_true,
        "margin": p_true - _largest_other(probs, targets),
        "logit_margin": logit_true - _largest_other(logits, targets),
        "entropy": -(probs * log_probs).sum(axis=-1),
    }


# --------------------------------------------------------------------------------------------
# Scores from trajectories. Trajectory arrays have shape (n_steps, n_examples).
# --------------------------------------------------------------------------------------------


def forgetting(correct: np.ndarray) -> np.ndarray:
    """Forgetting events, the paper's code: never learned = 0 (``forgetting``).

    Parameters
    ----------
    correct : bool array of shape (n_presentations, n_examples)
        Correctness of the eval-mode, unaugmented prediction of each minibatch just before the step
        that trains on it, one row per presentation of the example.

    Returns
    -------
    float array of shape (n_examples,): the number of correct-to-incorrect transitions between
    successive presentations. An example never classified correctly has none, so it scores 0, like
    an example learned at once and never forgotten: the paper's code counts events and gives the
    never-learned no special value (choice documented here; Toneva's variant is
    :func:`forgetting_toneva`).
    """
    correct = np.asarray(correct, dtype=bool)
    return (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.float64)


def forgetting_toneva(correct: np.ndarray) -> np.ndarray:
    """Forgetting events as Toneva et al. (2019) rank them (``forgetting:toneva``).

    Parameters
    ----------
    correct : bool array of shape (n_presentations, n_examples)
        Correctness of the training minibatches' own (training-mode, augmented) predictions.

    Returns
    -------
    float array of shape (n_examples,): the number of correct-to-incorrect transitions. An example
    never classified correctly gets ``n_presentations``, more than the ``n_presentations // 2``
    transitions any learned example can have, so it ranks as the most forgotten while staying finite.
    """
    correct = np.asarray(correct, dtype=bool)
    never_learned = ~correct.any(axis=0)
    return np.where(never_learned, float(correct.shape[0]), forgetting(correct))


def consistently_learned(correct: np.ndarray) -> np.ndarray:
    """First step (1-based) from which the example stays correct to the end of training.

    The paper's ``consistently_learned`` applies it to the pre-step evaluations (one row per
    presentation, so the unit is presentations); ``consistently_learned:epoch`` to the eval passes
    at the epoch ends.

    Parameters
    ----------
    correct : bool array of shape (n_steps, n_examples)

    Returns
    -------
    float array: 1 if correct at every step, ``n_steps + 1`` if wrong at the last one.
    """
    correct = np.asarray(correct, dtype=bool)
    n_steps = correct.shape[0]
    steps = np.arange(1, n_steps + 1)[:, None]
    last_wrong = np.where(~correct, steps, 0).max(axis=0)
    return (last_wrong + 1).astype(np.float64)


def el2n(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """L2 norm of softmax minus the one-hot target (Paul et al. 2021)."""
    probs = np.exp(log_softmax(logits))
    one_hot = np.eye(probs.shape[-1])[np.asarray(targets)]
    return np.linalg.norm(probs - one_hot, axis=-1)


def _pixel_gradients(input_gradients: np.ndarray) -> np.ndarray:
    """Input gradients averaged over colour channels, as float64 of shape (n_checkpoints, n_examples, n_pixels).

    Images have shape (channels, *spatial) per example, so axis 2 of (n_checkpoints, n_examples,
    channels, *spatial) is averaged; a flat input (n_checkpoints, n_examples, features) has no
    channel axis and is kept as it is.
    """
    grads = np.asarray(input_gradients, dtype=np.float64)
    if grads.ndim < 3:
        raise InputError(
            f"input_gradients must have shape (n_checkpoints, n_examples, ...), got {grads.shape}", parameter="input_gradients"
        )
    if grads.ndim >= 4:
        grads = grads.mean(axis=2)
    return grads.reshape(grads.shape[0], grads.shape[1], -1)


def vog(probability_gradients: np.ndarray) -> np.ndarray:
    """Variance of gradients as the paper's code computes it (``vog``).

    Parameters
    ----------
    probability_gradients : array of shape (n_checkpoints, n_examples, channels, *spatial)
        Gradient of the true-class softmax probability with respect to the input (eval mode), at
        each checkpoint (every epoch end by default).

    Returns
    -------
    array of shape (n_examples,): the gradient averaged over channels, its sample variance
    (``ddof=1``) over checkpoints at every pixel, averaged over pixels. NaN with one checkpoint.
    """
    flat = _pixel_gradients(probability_gradients)
    if flat.shape[0] < 2:
        return np.full(flat.shape[1], np.nan)
    return flat.var(axis=0, ddof=1).mean(axis=-1)


def vog_logit(logit_gradients: np.ndarray) -> np.ndarray:
    """Variance of gradients of the true-class logit, per input element (``vog:logit``).

    gwasm's definition before version 2: Agarwal et al.'s gradient target without their class
    normalisation, with a population variance and no channel average.

    Parameters
    ----------
    logit_gradients : array of shape (n_checkpoints, n_examples, *input_shape)
        Gradient of the true-class logit with respect to the input at each checkpoint.

    Returns
    -------
    array of shape (n_examples,): the population variance over checkpoints of each input element,
    averaged over the input elements.
    """
    grads = np.asarray(logit_gradients, dtype=np.float64)
    flat = grads.reshape(grads.shape[0], grads.shape[1], -1)
    return flat.var(axis=0).mean(axis=-1)


def class_normalise(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(value - class mean) / class std`` within each class (population std).

    A class whose values are all equal (or a class of one example) has no spread to divide by: its
    examples get 0, their distance from the class mean. NaN values stay NaN and are left out of
    their class's mean and std.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full(values.shape, np.nan)
    for label in np.unique(labels):
        members = labels == label
        finite = members & np.isfinite(values)
        if not finite.any():
            continue
        mean, std = values[finite].mean(), values[finite].std()
        centred = values[members] - mean
        out[members] = centred / std if std > 0 else np.where(np.isfinite(centred), 0.0, np.nan)
    return out


def vog_agarwal(logit_gradients: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Variance of gradients as Agarwal et al. (2020) define it (``vog:agarwal``).

    Parameters
    ----------
    logit_gradients : array of shape (n_checkpoints, n_examples, channels, *spatial)
        Gradient of the true-class (pre-softmax) logit with respect to the input at each checkpoint.
    labels : int array of shape (n_examples,)

    Returns
    -------
    array of shape (n_examples,): the gradient averaged over colour channels (a pixel is a spatial
    location, as in the authors' grey-scale gradient maps; our choice where the paper is terse),
    its population std over checkpoints at every pixel (their eq. 2), averaged over pixels (eq. 3),
    then normalised within each class, ``(vog - class mean) / class std`` (their Section 2.1).
    """
    flat = _pixel_gradients(logit_gradients)
    return class_normalise(flat.std(axis=0).mean(axis=-1), labels)


def scores_from_trajectories(
    presentation_logits: np.ndarray,
    prestep_logits: np.ndarray,
    epoch_logits: np.ndarray,
    targets: np.ndarray,
    early_epoch: int,
) -> dict[str, np.ndarray]:
    """Every output-based definition from full logit trajectories (all but ``grand`` and the VoGs).

    Parameters
    ----------
    presentation_logits : array (n_presentations, n_examples, n_classes)
        Training-mode logits of the training minibatches, one row per presentation of every example.
    prestep_logits : array (n_presentations, n_examples, n_classes)
        Eval-mode logits of the unaugmented minibatch just before each step, one row per presentation.
    epoch_logits : array (n_epochs, n_examples, n_classes)
        Eval-mode logits at the end of each epoch.
    targets : int array (n_examples,)
    early_epoch : int
        1-based epoch whose evaluation gives ``el2n``.

    Returns
    -------
    dict of definition name to float array (n_examples,).
    """
    seen = output_quantities(presentation_logits, targets)
    before = output_quantities(prestep_logits, targets)
    evaluated = output_quantities(epoch_logits, targets)
    return {
        "loss": evaluated["loss"].mean(axis=0),
        "accuracy": evaluated["correct"].mean(axis=0),
        "aum": evaluated["margin"].mean(axis=0),
        "forgetting": forgetting(before["correct"]),
        "consistently_learned": consistently_learned(before["correct"]),
        "el2n": el2n(np.asarray(epoch_logits)[early_epoch - 1], targets),
        "confidence": evaluated["p_true"].mean(axis=0),
        "variability": evaluated["p_true"].std(axis=0),
        "entropy": evaluated["entropy"].mean(axis=0),
        "loss:presentations": seen["loss"].mean(axis=0),
        "accuracy:presentations": seen["correct"].mean(axis=0),
        "aum:presentations": seen["margin"].mean(axis=0),
        "aum:pleiss": seen["logit_margin"].mean(axis=0),
        "forgetting:toneva": forgetting_toneva(seen["correct"]),
        "consistently_learned:epoch": consistently_learned(evaluated["correct"]),
        "confidence:swayamdipta": seen["p_true"].mean(axis=0),
        "variability:swayamdipta": seen["p_true"].std(axis=0),
        "entropy:presentations": seen["entropy"].mean(axis=0),
    }
