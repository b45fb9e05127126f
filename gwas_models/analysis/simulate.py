"""Simulated score matrices with planted effects, for tests, calibration checks and documentation.

The model of one score of run r (architecture g, seed s) on example j of class c(j) is::

    value[r, j] = run_scale[r] * (sign * (difficulty[j] + effect[g, j] + shift[g])
                                  + run_offset[r] + seed_noise[s, j] + noise_sd * e[r, j])
                  + class_shift[r, c(j)]

* ``difficulty[j]``: the example's baseline difficulty, shared by every run (normal, sd
  ``difficulty_sd``); it differs between examples, not between groups, so it never creates a
  difference to detect.
* ``effect[g, j]``: the planted effect, ``effect_size * noise_sd`` on the chosen examples in the
  chosen architecture, 0 elsewhere: with ``run_offset_sd = seed_sd = 0`` the planted examples have
  Cohen's d = ``effect_size``.
* ``shift[g]``: a global shift of every example in one architecture (``global_shift * noise_sd``),
  the analogue of population stratification: it inflates every test and λGC.
* ``run_offset[r]``: a per-run level (all examples of a run move together), sd ``run_offset_sd``.
* ``run_scale[r]``: a per-run scale factor, ``exp(N(0, run_scale_sd))``: a run that spreads its
  examples' scores more or less (say, trained longer).
* ``class_shift[r, c]``: a per-run level of each class, sd ``class_shift_sd``: run shifts that
  differ between classes, as ``el2n`` shows on real runs.
* The run effects (``run_offset``, ``run_scale``, ``class_shift``) have the same distribution in
  every architecture: they are the luck of a seed, shared by all examples of a run, which makes the
  per-example tests of one study correlated without making any of them invalid.
* ``seed_noise[s, j]``: a component shared by the runs that use the same seed in every
  architecture (same data order), sd ``seed_sd``: it is what a paired test removes.
* ``sign``: +1 when higher values of the score mean harder, -1 otherwise, so a positive effect
  always makes the example harder.

With ``link`` other than ``"identity"``, the value above is a latent difficulty and the score is
a function of it, as real scores are: ``"softplus"`` gives a positive, skewed, loss-like score;
``"logistic"`` a score bounded in (0, 1) that saturates for easy examples, like confidence;
``"binomial"`` a count over ``n_trials`` eval passes divided by ``n_trials`` (accuracy-like:
heavily tied, with a ceiling). A global shift of the latent difficulty is then a *nonlinear*
change of the score: large for examples in mid-range, nil for examples at the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import special

from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix
from gwas_models.scores import SCORES

DEFAULT_RUNS: Mapping[str, int] = {"A": 20, "B": 20}
#: Observation models of :func:`simulate_score_matrix`: the score as a function of the latent value.
LINKS: tuple[str, ...] = ("identity", "softplus", "logistic", "binomial")


def simulate_score_matrix(
    rng: np.random.Generator,
    n_examples: int = 1000,
    runs: Mapping[str, int] | None = None,
    *,
    effect_examples: Sequence[int] | np.ndarray = (),
    effect_size: float | Sequence[float] | np.ndarray = 0.0,
    effect_arch: str | None = None,
    global_shift: float = 0.0,
    shift_arch: str | None = None,
    noise_sd: float = 1.0,
    difficulty_sd: float = 1.0,
    run_offset_sd: float = 0.0,
    seed_sd: float = 0.0,
    run_scale_sd: float = 0.0,
    class_shift_sd: float = 0.0,
    n_classes: int = 10,
    score: str = "loss",
    higher_is_harder: bool | None = None,
    dataset: str = "simulated",
    difficulty: np.ndarray | None = None,
    difficulty_mean: float = 0.0,
    link: str = "identity",
    n_trials: int = 10,
) -> ScoreMatrix:
    """One score of many simulated runs, with planted per-example effects and an optional shift.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    n_examples : int
        Training examples (columns).
    runs : mapping of architecture name to number of runs
        Default ``{"A": 20, "B": 20}``. Runs of each architecture get seeds 0, 1, ...
    effect_examples : sequence of int
        Indices of the examples that get the planted effect.
    effect_size : float or array (len(effect_examples),)
        The planted effect in units of ``noise_sd`` (positive: harder in ``effect_arch``); an
        array gives each planted example its own (e.g. random signs).
    effect_arch : str, optional
        Architecture that carries the effect (default: the last one).
    global_shift : float
        Shift of every example in ``shift_arch``, in units of ``noise_sd`` (positive: harder).
    shift_arch : str, optional
        Architecture that carries the shift (default: ``effect_arch``).
    noise_sd, difficulty_sd, run_offset_sd, seed_sd, run_scale_sd, class_shift_sd : float
        Standard deviations of the model's components (see the module docstring).
    n_classes : int
        Example j belongs to class ``j % n_classes``, named ``"class0"``, ``"class1"``, ...
    score : str
        Score name; its direction comes from the registry unless ``higher_is_harder`` is given.
    higher_is_harder : bool, optional
    dataset : str
    difficulty : array (n_examples,), optional
        Baseline difficulty to use instead of drawing one (to share it between scores).
    difficulty_mean : float
        Mean of the drawn difficulty (negative: most examples easy, as on real training sets).
    link : {"identity", "softplus", "logistic", "binomial"}
        The score as a function of the latent value (see the module docstring).
    n_trials : int
        Eval passes counted by ``link="binomial"``.

    Returns
    -------
    ScoreMatrix
        Runs ordered by architecture, then seed.
    """
    runs = dict(runs if runs is not None else DEFAULT_RUNS)
    archs = list(runs)
    if not archs or any(int(k) < 1 for k in runs.values()):
        raise InputError("runs must map each architecture to a positive number of runs")
    if n_examples < 1 or n_classes < 1:
        raise InputError("n_examples and n_classes must be positive")
    effect_arch = archs[-1] if effect_arch is None else effect_arch
    shift_arch = effect_arch if shift_arch is None else shift_arch
    for name in (effect_arch, shift_arch):
        if name not in runs:
            raise InputError(f"architecture {name!r} is not among the simulated ones ({', '.join(archs)})")
    effect_examples = np.asarray(effect_examples, dtype=np.int64)
    if effect_examples.size and (effect_examples.min() < 0 or effect_examples.max() >= n_examples):
        raise InputError(f"effect_examples must lie in 0..{n_examples - 1}")
    if higher_is_harder is None:
        higher_is_harder = SCORES[score].higher_is_harder if score in SCORES else True
    sign = 1.0 if higher_is_harder else -1.0
    if link not in LINKS:
        raise InputError(f"link must be one of {', '.join(LINKS)}, got {link!r}", parameter="link")
    if n_trials < 1:
        raise InputError(f"n_trials must be positive, got {n_trials}", parameter="n_trials")
    effect = np.broadcast_to(np.asarray(effect_size, dtype=np.float64), effect_examples.shape)

    if difficulty is None:
        difficulty = rng.normal(difficulty_mean, difficulty_sd, n_examples)
    difficulty = np.asarray(difficulty, dtype=np.float64)
    if difficulty.shape != (n_examples,):
        raise InputError(f"difficulty must have shape ({n_examples},)")
    n_seeds = max(int(k) for k in runs.values())
    seed_noise = rng.normal(0.0, seed_sd, (n_seeds, n_examples)) if seed_sd > 0 else None

    example_labels = np.arange(n_examples) % n_classes
    blocks, groups, seeds = [], [], []
    for arch in archs:
        n_runs = int(runs[arch])
        harder = difficulty.copy()
        if arch == effect_arch and effect_examples.size:
            harder[effect_examples] += effect * noise_sd
        if arch == shift_arch:
            harder += global_shift * noise_sd
        block = sign * harder + rng.normal(0.0, noise_sd, (n_runs, n_examples))
        if run_offset_sd > 0:
            block += rng.normal(0.0, run_offset_sd, (n_runs, 1))
        if seed_noise is not None:
            block += seed_noise[:n_runs]
        # Drawn last, so that without them the draws (and every seeded simulation) stay as they were.
        block = _apply_run_effects(rng, block, example_labels, n_classes, run_scale_sd, class_shift_sd)
        blocks.append(_observe(rng, block, link, n_trials))
        groups += [arch] * n_runs
        seeds += list(range(n_runs))
    example_id = np.arange(n_examples)
    return ScoreMatrix(
        score=score,
        values=np.vstack(blocks),
        groups=np.asarray(groups),
        seeds=np.asarray(seeds),
        example_id=example_id,
        labels=example_labels,
        class_names=tuple(f"class{c}" for c in range(n_classes)),
        dataset=dataset,
        higher_is_harder=bool(higher_is_harder),
    )


def _observe(rng: np.random.Generator, latent: np.ndarray, link: str, n_trials: int) -> np.ndarray:
    """The score of a latent value under ``link`` (oriented already: higher latent, higher score)."""
    if link == "softplus":
        return np.logaddexp(0.0, latent)
    if link == "logistic":
        return special.expit(latent)
    if link == "binomial":
        return rng.binomial(n_trials, special.expit(latent)) / n_trials
    return latent


def _apply_run_effects(
    rng: np.random.Generator,
    block: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    run_scale_sd: float,
    class_shift_sd: float,
) -> np.ndarray:
    """``block`` (n_runs, ..., n_examples) scaled by a factor per run and shifted per run and class."""
    lead = block.shape[:-1]
    if run_scale_sd > 0:
        block = block * np.exp(rng.normal(0.0, run_scale_sd, lead + (1,)))
    if class_shift_sd > 0:
        block = block + rng.normal(0.0, class_shift_sd, lead + (n_classes,))[..., labels]
    return block


def simulate_scores(
    rng: np.random.Generator,
    scores: Sequence[str] = ("loss", "aum"),
    n_examples: int = 1000,
    runs: Mapping[str, int] | None = None,
    **options,
) -> dict[str, ScoreMatrix]:
    """Several scores of the same simulated runs, sharing the examples' baseline difficulty.

    Each score gets its own run-to-run noise and is oriented by its direction, so a planted
    effect makes the same examples harder under every score. Keyword options are those of
    :func:`simulate_score_matrix` (``effect_examples``, ``effect_size``, ``global_shift``, ...).

    Returns
    -------
    dict mapping score name to its :class:`ScoreMatrix`.
    """
    difficulty = options.pop("difficulty", None)
    if difficulty is None:
        difficulty = rng.normal(0.0, options.get("difficulty_sd", 1.0), n_examples)
    return {
        name: simulate_score_matrix(rng, n_examples, runs, score=name, difficulty=difficulty, **options)
        for name in scores
    }


@dataclass(frozen=True)
class NullStudies:
    """Many simulated studies without any difference between architectures, side by side.

    Attributes
    ----------
    values : float array (n_scores, n_runs, n_studies, n_examples)
        The scores of every run of every study; ``values[k][:, i]`` is study i's score matrix of
        score k.
    groups, seeds : arrays (n_runs,)
        Architecture and seed of each run (the same in every study).
    labels : int array (n_examples,)
        Class of each example (``j % n_classes``).
    """

    values: np.ndarray
    groups: np.ndarray
    seeds: np.ndarray
    labels: np.ndarray

    @property
    def n_studies(self) -> int:
        return self.values.shape[2]

    def runs_of(self, arch: str, score: int = 0) -> np.ndarray:
        """Scores of one architecture's runs in every study, (n_runs_arch, n_studies, n_examples)."""
        return self.values[score][self.groups == arch]

    def flat(self, arch: str, score: int = 0) -> np.ndarray:
        """:meth:`runs_of` with the studies laid side by side: (n_runs_arch, n_studies * n_examples),
        so that one vectorised test covers every example of every study."""
        runs = self.runs_of(arch, score)
        return runs.reshape(runs.shape[0], -1)


def simulate_null_studies(
    rng: np.random.Generator,
    n_studies: int,
    n_examples: int = 1000,
    runs: Mapping[str, int] | None = None,
    *,
    n_scores: int = 1,
    score_correlation: float = 0.0,
    noise_sd: float = 1.0,
    difficulty_sd: float = 1.0,
    run_offset_sd: float = 0.0,
    run_scale_sd: float = 0.0,
    class_shift_sd: float = 0.0,
    seed_sd: float = 0.0,
    n_classes: int = 10,
) -> NullStudies:
    """Null studies for calibration checks: the model of :func:`simulate_score_matrix` without effect
    or shift, every study with its own difficulties and run effects, drawn all at once.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    n_studies, n_examples : int
    runs : mapping of architecture name to number of runs
        Default ``{"A": 20, "B": 20}``; the seeds of each are 0, 1, ...
    n_scores : int
        Scores per run and example. They share the example's difficulty and the run effects, and
        their run-by-example noise has correlation ``score_correlation`` between scores: strongly
        correlated tests of one example, as real scores are.
    score_correlation : float in [0, 1]
    noise_sd, difficulty_sd, run_offset_sd, run_scale_sd, class_shift_sd, seed_sd : float
        As for :func:`simulate_score_matrix`.
    n_classes : int

    Returns
    -------
    NullStudies
    """
    runs = dict(runs if runs is not None else DEFAULT_RUNS)
    if not runs or any(int(k) < 1 for k in runs.values()):
        raise InputError("runs must map each architecture to a positive number of runs")
    if n_studies < 1 or n_examples < 1 or n_scores < 1 or n_classes < 1:
        raise InputError("n_studies, n_examples, n_scores and n_classes must be positive")
    if not 0.0 <= score_correlation <= 1.0:
        raise InputError(f"score_correlation must lie in [0, 1], got {score_correlation}", parameter="score_correlation")
    groups = np.concatenate([[arch] * int(k) for arch, k in runs.items()])
    seeds = np.concatenate([np.arange(int(k)) for k in runs.values()])
    n_runs = len(groups)
    labels = np.arange(n_examples) % n_classes
    shape = (n_runs, n_studies, n_examples)
    base = rng.normal(0.0, difficulty_sd, (1, n_studies, n_examples))
    if run_offset_sd > 0:
        base = base + rng.normal(0.0, run_offset_sd, (n_runs, n_studies, 1))
    if seed_sd > 0:  # shared by the runs of one seed in every architecture
        base = base + rng.normal(0.0, seed_sd, (int(seeds.max()) + 1, n_studies, n_examples))[seeds]
    shared = rng.normal(0.0, 1.0, shape) if score_correlation > 0 else 0.0
    scale = np.exp(rng.normal(0.0, run_scale_sd, (n_runs, n_studies, 1))) if run_scale_sd > 0 else 1.0
    shifts = rng.normal(0.0, class_shift_sd, (n_runs, n_studies, n_classes))[..., labels] if class_shift_sd > 0 else 0.0
    values = np.empty((n_scores,) + shape)
    for k in range(n_scores):  # a loop over scores; every study and example at once
        noise = np.sqrt(score_correlation) * shared + np.sqrt(1.0 - score_correlation) * rng.normal(0.0, 1.0, shape)
        values[k] = scale * (base + noise_sd * noise) + shifts
    return NullStudies(values=values, groups=groups, seeds=seeds, labels=labels)
