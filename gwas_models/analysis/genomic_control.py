"""Genomic control with replicate runs: λGC against its own null, and the global shift tested per run.

In a GWAS, λGC > 1 says that population stratification inflates every test. Here the individuals
are training runs, and every example of a run shares that run's random effects: a lucky seed makes
the run better on every example. Each per-example test stays valid, but the tests of one study are
strongly correlated, so λGC of one comparison swings widely between studies in which nothing
differs (0.4 to 4.4 with 8 v 8 runs). A fixed threshold such as λ > 1.1 then cries wolf in a third
of such studies. Two statements replace it:

**λ against its own null** (:func:`lambda_null`). Under the null hypothesis the runs are
exchangeable, so relabelling them (which runs count as A, which as B) and recomputing every
per-example test gives λ's distribution under run-to-run noise, with the correlation between
examples included. Every relabelling is used when the runs allow at most
:data:`LAMBDA_NULL_RELABELINGS` distinct ones (exact), else that many random ones, drawn from a
passed-in generator. The relabelling p of λ is the share of relabellings whose λ is at least the
observed one (Monte Carlo: (1 + b) / (1 + B)); λ is "beyond its null" when that p is at most
:data:`LAMBDA_NULL_ALPHA`, i.e. λ exceeds the null's 95th percentile: a difference between the
architectures that reaches many examples at once, more than run-to-run noise explains.

**The global shift, tested where it lives** (:func:`run_level_test`). A global shift is a property
of runs, not of examples: the mean score of a run over the examples is one number per run, and
Welch's t (paired: the paired t) of these run means between A and B tests it with the right
number of degrees of freedom: the runs.

Neither is ever used to divide the statistics (genomic control's λ-correction): with replicate
runs a corrected p would be as noisy as λ itself.

For speed on large studies, λ's null is computed on at most :data:`LAMBDA_NULL_EXAMPLES` examples,
evenly spaced among those tested (the observed λ of the comparison, over every tested example, is
reported as is; the relabelling p and percentiles compare like with like, the observed λ over the
same examples). Per block of relabellings, the per-example test runs once over every example of
every relabelling, laid side by side as columns of one matrix: the same vectorised test as the
observed one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from math import factorial, prod
from typing import Callable, Sequence

import numpy as np
from scipy import special

from gwas_models.analysis.association import OK, as_score_matrix, two_sample_test, welch_anova
from gwas_models.analysis.multitest import CHI2_1DF_MEDIAN
from gwas_models.analysis.permutation import (
    draw_labelings,
    draw_sign_flips,
    enumerate_labelings,
    enumerate_sign_flips,
    permutation_plan,
)
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import ERRCODES

#: Relabellings of λ's null: all of them when the runs allow at most this many distinct ones,
#: else this many random ones (Monte Carlo; relabelling p at least 1/201). The cost is one test
#: of every example per relabelling: 200 x 2,000 examples take about 0.25 s per score.
LAMBDA_NULL_RELABELINGS = 200
#: Examples used for λ's null, evenly spaced among the tested ones, when there are more. λ is a
#: median: over 2,000 examples its sampling error (about 5%) is small beside its spread between
#: null studies with replicate runs (0.4 to 4.4 with 8 v 8 runs), and the observed λ it is
#: compared with is taken over the same examples.
LAMBDA_NULL_EXAMPLES = 2000
#: Seed of the random relabellings when a study is given no generator, so that its ``.log`` is
#: reproducible.
LAMBDA_NULL_SEED = 0
#: λ is beyond its null when its relabelling p is at most this (above the 95th percentile).
LAMBDA_NULL_ALPHA = 0.05
#: Percentiles of λ's null that are reported.
LAMBDA_NULL_PERCENTILES = (2.5, 50.0, 95.0, 97.5)

# Relative tolerance for "λ at least as large": relabellings equivalent to the observed one (the
# identity, the A/B mirror) must count even when the order of summation changes the last bits.
_TIE_TOLERANCE = 1e-9
# Scores gathered per block of relabellings (32 MB of float64).
_BLOCK_ELEMENTS = 4_000_000

#: ``p_of_groups(groups) -> p``: the per-example p of relabelled groups, each an array
#: (n_runs_g, n_relabelings, n_examples), as an array (n_relabelings, n_examples).
GroupTest = Callable[[Sequence[np.ndarray]], np.ndarray]


# --------------------------------------------------------------------------------------------
# λ of many sets of p-values
# --------------------------------------------------------------------------------------------


def genomic_control_lambdas(p: np.ndarray) -> np.ndarray:
    """λGC of each row of p-values: median χ²₁ quantile of p over its finite entries / χ²₁ median.

    Row by row equal to :func:`~gwas_models.analysis.multitest.genomic_control_lambda` (the median of
    the statistics is the statistic of the median p, the map being monotone).

    Parameters
    ----------
    p : array (n_sets, n_tests)
        NaN entries are ignored.

    Returns
    -------
    float array (n_sets,); NaN for a row without finite p.
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN, on purpose
        statistics = special.ndtri(p / 2.0) ** 2  # chi2.isf(p, 1), accurate for tiny p
        return np.nanmedian(statistics, axis=1) / CHI2_1DF_MEDIAN


# --------------------------------------------------------------------------------------------
# λ against relabellings of the runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LambdaNull:
    """λGC of one score and its distribution under relabelling of the runs.

    Attributes
    ----------
    lambda_gc : float
        λ of the observed labelling over the examples used (equal to the comparison's λ unless
        the examples were thinned to :data:`LAMBDA_NULL_EXAMPLES`).
    percentiles : dict float -> float
        λ's null at :data:`LAMBDA_NULL_PERCENTILES` (2.5, 50, 95, 97.5).
    p : float
        Relabelling p: share of relabellings with λ at least the observed one.
    n_relabelings : int
        Relabellings in the null (exact: every distinct one, the observed included).
    exact : bool
        Every distinct relabelling was used (else random ones).
    n_examples : int
        Examples used.
    """

    lambda_gc: float
    percentiles: dict[float, float]
    p: float
    n_relabelings: int
    exact: bool
    n_examples: int

    @property
    def low(self) -> float:
        """2.5th percentile of λ's null."""
        return self.percentiles[2.5]

    @property
    def median(self) -> float:
        return self.percentiles[50.0]

    @property
    def upper(self) -> float:
        """95th percentile of λ's null: λ beyond it is more than run-to-run noise."""
        return self.percentiles[95.0]

    @property
    def high(self) -> float:
        """97.5th percentile of λ's null."""
        return self.percentiles[97.5]

    @property
    def beyond(self) -> bool:
        """λ exceeds its null: relabelling p at most :data:`LAMBDA_NULL_ALPHA`."""
        return bool(self.p <= LAMBDA_NULL_ALPHA)

    def verdict(self) -> str:
        """What λ says, in words."""
        if not np.isfinite(self.p):
            return "no null (no tested example, or no relabelling gave a λ)"
        if self.beyond:
            return "beyond it: a real global difference between the architectures"
        return "consistent with run-to-run noise"

    def describe(self) -> str:
        """One line for the ``.log``, e.g. ``λ = 2.90, 95th percentile under relabelling 4.10 (p
        0.31, all 35 relabellings): consistent with run-to-run noise``."""
        if not np.isfinite(self.p):
            return f"λ = {self.lambda_gc:.2f}: {self.verdict()}"
        how = f"all {self.n_relabelings}" if self.exact else f"{self.n_relabelings} random"
        return (
            f"λ = {self.lambda_gc:.2f}, 95th percentile under relabelling {self.upper:.2f} "
            f"(null 2.5-97.5%: {self.low:.2f}-{self.high:.2f}; p {self.p:.3g}; {how} relabellings, "
            f"{self.n_examples} examples): {self.verdict()}"
        )


def lambda_null(
    values_a: np.ndarray,
    values_b: np.ndarray,
    test: str = "welch",
    *,
    rng: np.random.Generator | None = None,
    tested: np.ndarray | None = None,
    max_relabelings: int = LAMBDA_NULL_RELABELINGS,
    max_examples: int = LAMBDA_NULL_EXAMPLES,
    p_of_groups: GroupTest | None = None,
) -> LambdaNull:
    """λGC of a two-sample comparison against its distribution under relabelling of the runs.

    Parameters
    ----------
    values_a, values_b : arrays (n_runs_a, n_examples), (n_runs_b, n_examples)
        The scores that were tested (normalised, if they were). Paired: row i of A and of B are
        the two runs of seed i.
    test : {"welch", "student", "paired"}
        The per-example test; ``paired`` relabels by swapping A and B within seed pairs.
    rng : numpy.random.Generator, optional
        Source of the random relabellings, when there are more than ``max_relabelings`` distinct
        ones (a fresh unseeded generator when omitted).
    tested : bool array (n_examples,), optional
        The examples tested under the observed labelling (default: all); the others are left out.
    max_relabelings : int
        Every distinct relabelling when there are at most this many, else this many random ones.
    max_examples : int
        At most this many tested examples, evenly spaced, enter the null.
    p_of_groups : callable, optional
        The per-example p of relabelled groups (see :data:`GroupTest`); default
        :func:`two_sample_p` of ``test``. For a test that is not ``two_sample_test`` (e.g. a
        moderated t), so that the null is that of the test reported.

    Returns
    -------
    LambdaNull
    """
    values_a = as_score_matrix(values_a, "scores of A")
    values_b = as_score_matrix(values_b, "scores of B")
    paired = test == "paired"
    n_a, n_b = values_a.shape[0], values_b.shape[0]
    if paired and values_a.shape != values_b.shape:
        raise InputError(f"a paired test needs the same runs in both groups ({n_a} vs {n_b})")
    columns = _null_examples(values_a.shape[1], tested, max_examples)
    data = np.vstack([values_a[:, columns], values_b[:, columns]])
    plan = permutation_plan(n_a, n_b, max_relabelings, paired, exact_limit=max_relabelings)
    if plan.exact:
        patterns = enumerate_sign_flips(n_a) if paired else enumerate_labelings(n_a, n_b)
    else:
        rng = rng if rng is not None else np.random.default_rng()
        draws = draw_sign_flips(rng, n_a, plan.n_relabelings) if paired else draw_labelings(rng, n_a, n_b, plan.n_relabelings)
        identity = np.ones((1, n_a)) if paired else np.r_[np.zeros(n_a), np.ones(n_b)][None, :]
        patterns = np.vstack([identity, draws])  # the observed labelling first, through the same arithmetic
    orders = _sign_flip_orders(patterns) if paired else np.argsort(patterns, axis=1, kind="stable")
    lambdas = _relabelled_lambdas(data, orders, (n_a, n_b), p_of_groups or two_sample_p(test))
    return _summarise(lambdas, plan.exact, len(columns))


def lambda_null_oneway(
    groups: Sequence[np.ndarray],
    *,
    rng: np.random.Generator | None = None,
    tested: np.ndarray | None = None,
    max_relabelings: int = LAMBDA_NULL_RELABELINGS,
    max_examples: int = LAMBDA_NULL_EXAMPLES,
) -> LambdaNull:
    """λGC of a Welch's ANOVA across groups against its distribution under relabelling of the runs.

    As :func:`lambda_null`, for three or more groups: a relabelling deals the runs out to groups
    of the observed sizes; all of them when the runs allow at most ``max_relabelings`` (the
    identity among them), else that many random ones.

    Parameters
    ----------
    groups : sequence of arrays (n_runs_g, n_examples)
    rng, tested, max_relabelings, max_examples
        As for :func:`lambda_null`.

    Returns
    -------
    LambdaNull
    """
    matrices = [as_score_matrix(g, "scores") for g in groups]
    sizes = tuple(m.shape[0] for m in matrices)
    columns = _null_examples(matrices[0].shape[1], tested, max_examples)
    data = np.vstack([m[:, columns] for m in matrices])
    n_runs = data.shape[0]
    n_distinct = factorial(n_runs) // prod(factorial(size) for size in sizes)
    exact = n_distinct <= max_relabelings
    if exact:
        orders = _enumerate_deals(sizes)
    else:
        rng = rng if rng is not None else np.random.default_rng()
        draws = rng.permuted(np.tile(np.arange(n_runs), (max_relabelings, 1)), axis=1)
        orders = np.vstack([np.arange(n_runs)[None, :], draws])

    def anova_p(relabelled: Sequence[np.ndarray]) -> np.ndarray:
        shape = relabelled[0].shape[1:]
        return welch_anova([g.reshape(g.shape[0], -1) for g in relabelled]).p.reshape(shape)

    lambdas = _relabelled_lambdas(data, orders, sizes, anova_p)
    return _summarise(lambdas, exact, len(columns))


def two_sample_p(test: str) -> GroupTest:
    """The :data:`GroupTest` of :func:`~gwas_models.analysis.association.two_sample_test`: one call
    over every relabelling's examples side by side."""

    def p_of_groups(groups: Sequence[np.ndarray]) -> np.ndarray:
        group_a, group_b = groups
        shape = group_a.shape[1:]
        result = two_sample_test(group_a.reshape(group_a.shape[0], -1), group_b.reshape(group_b.shape[0], -1), test)
        return result.p.reshape(shape)

    return p_of_groups


def _null_examples(n_examples: int, tested: np.ndarray | None, max_examples: int) -> np.ndarray:
    """Indices of the examples that enter λ's null: the tested ones, evenly thinned."""
    candidates = np.arange(n_examples) if tested is None else np.flatnonzero(np.asarray(tested, dtype=bool))
    if len(candidates) > max_examples:
        candidates = candidates[np.linspace(0, len(candidates) - 1, max_examples).round().astype(np.int64)]
    return candidates


def _sign_flip_orders(signs: np.ndarray) -> np.ndarray:
    """Row orders of the stacked runs (A's pairs, then B's) that swap A and B where a sign is -1."""
    n_pairs = signs.shape[1]
    pairs = np.arange(n_pairs)
    flipped = signs < 0
    return np.hstack([np.where(flipped, pairs + n_pairs, pairs), np.where(flipped, pairs, pairs + n_pairs)])


def _enumerate_deals(sizes: Sequence[int]) -> np.ndarray:
    """Every way to deal the runs out to groups of ``sizes``, as row orders (identity first)."""
    n_runs = sum(sizes)
    deals: list[list[int]] = [[]]
    remaining = [list(range(n_runs))]
    for size in sizes:
        next_deals, next_remaining = [], []
        for deal, left in zip(deals, remaining):
            for chosen in combinations(left, size):
                next_deals.append(deal + list(chosen))
                next_remaining.append([run for run in left if run not in chosen])
        deals, remaining = next_deals, next_remaining
    return np.asarray(deals, dtype=np.int64)


def _relabelled_lambdas(data: np.ndarray, orders: np.ndarray, sizes: Sequence[int], p_of_groups: GroupTest) -> np.ndarray:
    """λ of each relabelling (row of ``orders``: runs in group order, the groups of ``sizes``)."""
    n_runs, n_examples = data.shape
    block = max(1, _BLOCK_ELEMENTS // max(n_runs * n_examples, 1))
    bounds = np.cumsum(sizes)[:-1]
    lambdas = np.empty(len(orders))
    for start in range(0, len(orders), block):  # a loop over blocks of relabellings, not examples
        chunk = orders[start : start + block]
        gathered = data[chunk.T]  # (n_runs, relabelings, examples): row i of every relabelling first
        lambdas[start : start + len(chunk)] = genomic_control_lambdas(p_of_groups(np.split(gathered, bounds, axis=0)))
    return lambdas


def _summarise(lambdas: np.ndarray, exact: bool, n_examples: int) -> LambdaNull:
    """The observed λ (first) against the null: every λ when exact, the random draws otherwise."""
    observed = float(lambdas[0])
    null = lambdas if exact else lambdas[1:]
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        nan = float("nan")
        return LambdaNull(observed, {q: nan for q in LAMBDA_NULL_PERCENTILES}, nan, len(null), exact, n_examples)
    at_least = int(np.count_nonzero(null >= observed * (1.0 - _TIE_TOLERANCE)))
    p = at_least / len(null) if exact else (1.0 + at_least) / (1.0 + len(null))
    percentiles = dict(zip(LAMBDA_NULL_PERCENTILES, (float(v) for v in np.percentile(null, LAMBDA_NULL_PERCENTILES))))
    return LambdaNull(observed, percentiles, float(p), len(null), exact, n_examples)


# --------------------------------------------------------------------------------------------
# The global shift between architectures, tested on run means
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLevelTest:
    """The global shift of one score: run means over examples compared between architectures.

    Attributes
    ----------
    test : {"welch", "paired", "welch_anova"}
    difference : float
        Mean over B's runs of their mean score minus the same over A's (paired: mean of the pair
        differences); NaN for the one-way test.
    statistic, df : float
        t and its degrees of freedom (one-way: Welch's F and its denominator df).
    p : float
        Two-sided p (F: upper tail); NaN when the test could not be done (see ``errcode``).
    n_examples : int
        Examples averaged: those tested with a finite score in every run.
    errcode : str
        ``'.'`` when done, else why not (``CONST``: every run has the same mean, as after
        within-run normalisation).
    """

    test: str
    difference: float
    statistic: float
    df: float
    p: float
    n_examples: int
    errcode: str

    def significant(self, alpha: float) -> bool:
        return bool(self.p <= alpha)

    def describe(self) -> str:
        """One line, e.g. ``run means B - A = 0.0123 (Welch t 3.10, df 13.2, p 0.0078)``."""
        if self.errcode != ERRCODES[OK]:
            return f"run means: not tested ({self.errcode})"
        if self.test == "welch_anova":
            return f"run means: Welch's F {self.statistic:.3g} (df2 {self.df:.3g}, p {self.p:.3g})"
        name = "paired t" if self.test == "paired" else "Welch t"
        return f"run means B - A = {self.difference:.4g} ({name} {self.statistic:.3g}, df {self.df:.3g}, p {self.p:.3g})"


def run_means(groups: Sequence[np.ndarray], tested: np.ndarray | None = None) -> tuple[list[np.ndarray], int]:
    """Each run's mean score over the examples tested and finite in every run of every group."""
    matrices = [as_score_matrix(g, "scores") for g in groups]
    complete = np.all([np.isfinite(m).all(axis=0) for m in matrices], axis=0)
    if tested is not None:
        complete &= np.asarray(tested, dtype=bool)
    if not complete.any():
        return [np.full(m.shape[0], np.nan) for m in matrices], 0
    # mean(where=) averages the chosen columns without copying them (a million-column matrix).
    return [m.mean(axis=1, where=complete[None, :]) for m in matrices], int(complete.sum())


def run_level_test(
    values_a: np.ndarray, values_b: np.ndarray, *, paired: bool = False, tested: np.ndarray | None = None
) -> RunLevelTest:
    """Welch's t (paired t when ``paired``) of the runs' mean scores, B against A.

    Parameters
    ----------
    values_a, values_b : arrays (n_runs_a, n_examples), (n_runs_b, n_examples)
        Paired: row i of A and of B share a seed.
    paired : bool
    tested : bool array (n_examples,), optional
        Examples to average over (default: all); only those finite in every run are used, so that
        every run mean covers the same examples.

    Returns
    -------
    RunLevelTest
    """
    (means_a, means_b), n_examples = run_means([values_a, values_b], tested)
    test = "paired" if paired else "welch"
    result = two_sample_test(means_a, means_b, test)
    return RunLevelTest(
        test=test,
        difference=float(result.beta[0]),
        statistic=float(result.t_stat[0]),
        df=float(result.df[0]),
        p=float(result.p[0]),
        n_examples=n_examples,
        errcode=str(result.errcode[0]),
    )


def run_level_anova(groups: Sequence[np.ndarray], *, tested: np.ndarray | None = None) -> RunLevelTest:
    """Welch's ANOVA of the runs' mean scores across groups (see :func:`run_level_test`)."""
    means, n_examples = run_means(groups, tested)
    result = welch_anova(means)
    return RunLevelTest(
        test="welch_anova",
        difference=float("nan"),
        statistic=float(result.f_stat[0]),
        df=float(result.df_denom[0]),
        p=float(result.p[0]),
        n_examples=n_examples,
        errcode=str(result.errcode[0]),
    )
