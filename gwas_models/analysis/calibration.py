"""Calibration scenarios: simulated studies with the effects real runs have, and what a test found.

The defaults of an association are chosen on these (``tests/test_calibration_defaults.py`` asserts
them, ``benchmarks/calibration.py`` prints the table). Each scenario is a latent-difficulty model
(:func:`~gwas_models.analysis.simulate.simulate_score_matrix`) with the run effects of real runs
(a shift and a scale per run, a shift per run and class), observed through a score's shape:
loss-like (positive, skewed), confidence-like (bounded, saturating), or counts over eval passes
(accuracy-like: heavy ties and a ceiling). "Changed" examples carry a planted effect on top of
whatever the architecture does to every example; an unchanged example is one whose difficulty
*relative to its architecture* is the same.

Pure: numbers in, numbers out; randomness only from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix

#: The run effects of every scenario, in latent units (the latent run-to-run noise has sd 0.5):
#: a run's level, its scale (log-normal) and a level per run and class.
RUN_EFFECTS: dict[str, float] = {"run_offset_sd": 0.5, "run_scale_sd": 0.2, "class_shift_sd": 0.3}
#: Score name of each observation model (its direction comes from the score registry).
SCORE_OF_LINK: dict[str, str] = {"softplus": "loss", "logistic": "confidence", "binomial": "accuracy", "identity": "loss"}


@dataclass(frozen=True)
class Scenario:
    """One simulated study design.

    Attributes
    ----------
    name : str
    link : {"identity", "softplus", "logistic", "binomial"}
        How the score shows the latent difficulty (see :mod:`~gwas_models.analysis.simulate`).
    runs : (int, int)
        Runs of A and of B.
    n_examples : int
    n_changed : int
        Examples with a planted effect in B (0: a complete null).
    effect : float
        Size of the planted effect, latent units.
    one_way : bool
        Every changed example gets harder (else each gets a random direction).
    global_shift : float
        Every example of B harder by this much (latent units): B worse overall.
    """

    name: str
    link: str = "softplus"
    runs: tuple[int, int] = (10, 10)
    n_examples: int = 2000
    n_changed: int = 50
    effect: float = 3.0
    one_way: bool = False
    global_shift: float = 0.0
    run_effects: dict[str, float] = field(default_factory=lambda: dict(RUN_EFFECTS))

    @property
    def score(self) -> str:
        return SCORE_OF_LINK[self.link]


#: The scenarios the defaults answer (issue: global shift + changed examples on a loss-like and a
#: bounded score; many examples moving one way; tied counts).
SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("global shift + 50 changed, loss-like", link="softplus", global_shift=1.0),
        Scenario("global shift + 50 changed, confidence-like", link="logistic", global_shift=1.0),
        Scenario("400 of 2,000 moving one way, loss-like", link="softplus", n_changed=400, effect=1.5, one_way=True),
        Scenario("400 of 2,000 moving one way, confidence-like", link="logistic", n_changed=400, effect=1.5, one_way=True),
        Scenario("100 changed, tied counts", link="binomial", n_changed=100),
        Scenario("global shift + 100 changed, tied counts", link="binomial", n_changed=100, global_shift=1.0),
    )
}


def null_scenario(runs: tuple[int, int], link: str = "softplus", n_examples: int = 500) -> Scenario:
    """A complete null (no example changed, no shift) with the run effects of real runs."""
    return Scenario(f"null {runs[0]} v {runs[1]}, {SCORE_OF_LINK[link]}-like", link=link, runs=runs, n_examples=n_examples, n_changed=0)


def simulate_scenario(rng: np.random.Generator, scenario: Scenario) -> tuple[ScoreMatrix, np.ndarray]:
    """One study of a scenario: its score matrix (architectures ``A`` and ``B``) and the changed examples.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    scenario : Scenario

    Returns
    -------
    matrix : ScoreMatrix
    changed : int array
        Indices of the examples with a planted effect.
    """
    if scenario.n_changed > scenario.n_examples:
        raise InputError(f"n_changed ({scenario.n_changed}) exceeds n_examples ({scenario.n_examples})")
    noise_sd = 0.5  # latent run-to-run noise: effects below are latent units, divided by it
    changed = np.sort(rng.choice(scenario.n_examples, scenario.n_changed, replace=False))
    signs = np.ones(len(changed)) if scenario.one_way else rng.choice([-1.0, 1.0], len(changed))
    matrix = simulate_score_matrix(
        rng,
        scenario.n_examples,
        {"A": scenario.runs[0], "B": scenario.runs[1]},
        effect_examples=changed,
        effect_size=signs * scenario.effect / noise_sd,
        global_shift=scenario.global_shift / noise_sd,
        shift_arch="B",
        effect_arch="B",
        noise_sd=noise_sd,
        difficulty_mean=-1.5,  # most examples easy, as on real training sets
        difficulty_sd=1.5,
        link=scenario.link,
        score=scenario.score,
        **scenario.run_effects,
    )
    return matrix, changed


@dataclass(frozen=True)
class Discoveries:
    """What one set of calls found.

    Attributes
    ----------
    n_hits, n_true : int
        Examples called, and those of them that were changed.
    n_changed : int
    """

    n_hits: int
    n_true: int
    n_changed: int

    @property
    def n_false(self) -> int:
        return self.n_hits - self.n_true

    @property
    def power(self) -> float:
        """Share of the changed examples called (NaN without changed examples)."""
        return self.n_true / self.n_changed if self.n_changed else float("nan")

    @property
    def fdp(self) -> float:
        """False discovery proportion: share of the calls that are unchanged examples (0 without calls)."""
        return self.n_false / self.n_hits if self.n_hits else 0.0

    def __add__(self, other: "Discoveries") -> "Discoveries":
        return Discoveries(self.n_hits + other.n_hits, self.n_true + other.n_true, self.n_changed + other.n_changed)


def discoveries(adjusted_p: np.ndarray, changed: np.ndarray, alpha: float) -> Discoveries:
    """The examples whose adjusted p is at most ``alpha``, against the changed ones.

    Parameters
    ----------
    adjusted_p : float array (n_examples,)
        NaN for an untested example (never called).
    changed : int array
        Indices of the changed examples.
    alpha : float
    """
    adjusted_p = np.asarray(adjusted_p, dtype=np.float64)
    called = np.flatnonzero(np.nan_to_num(adjusted_p, nan=np.inf) <= alpha)
    return Discoveries(n_hits=len(called), n_true=int(np.isin(called, changed).sum()), n_changed=len(changed))


def discoveries_table(rows: dict[tuple[str, str], Discoveries]) -> pd.DataFrame:
    """One row per (scenario, setting): hits, changed found, power and false discovery proportion."""
    records = [
        {"scenario": scenario, "setting": setting, "hits": d.n_hits, "found": d.n_true, "changed": d.n_changed, "power": d.power, "fdp": d.fdp}
        for (scenario, setting), d in rows.items()
    ]
    return pd.DataFrame(records)
