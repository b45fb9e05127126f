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
examples included. The relabelling p of λ is the share of relabellings whose λ is at least the
observed one; λ is "beyond its null" when that p is at most :data:`LAMBDA_NULL_ALPHA`, i.e. λ
exceeds the null's 95th percentile: a difference between the architectures that reaches many
examples at once, more than run-to-run noise explains.

Every relabelling is used when the runs allow at most :data:`LAMBDA_NULL_EXACT_LIMIT` distinct ones
(exact: the p is the relabelling p itself). Otherwise random ones are drawn from a passed-in
generator, sequentially: :data:`LAMBDA_NULL_RELABELINGS` first, then as many again (the draws
double) until the Clopper–Pearson interval (:data:`LAMBDA_NULL_CONFIDENCE`) of the relabelling p,
from the b of m draws with λ at least the observed one, lies entirely on one side of
:data:`LAMBDA_NULL_ALPHA`, or :data:`LAMBDA_NULL_MAX_RELABELINGS` draws are reached. The p reported
is (1 + b) / (1 + m) (a valid p-value, the identity counted), its interval the Clopper–Pearson one.
So the verdict does not flip with the generator's seed: a λ near the line is drawn for until the
draws say on which side it lies, and one too near it to tell within the cap is reported as such.
The verdict (:attr:`LambdaNull.verdict_code`) is one of four:

* ``beyond``: the interval lies at or below alpha (exact: p <= alpha);
* ``within``: the interval lies above alpha;
* ``undecided``: the interval still straddles alpha after the cap of draws;
* ``no_verdict``: the runs allow too few distinct relabellings for any p to reach alpha (2 v 2
  runs: 3 partitions, smallest p 1/3), or no null could be formed.

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
observed one. Welch's, Student's and the paired t of complete scores take a faster road to the same
λ (to rounding): the group sums of every relabelling as matrix products, and the t distribution
evaluated only for the examples whose p can be the median (:func:`_lambdas_of_t`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from math import factorial, prod
from typing import Callable, Sequence

import numpy as np
from scipy import special

from gwas_models.analysis.association import OK, as_score_matrix, two_sample_test, welch_anova
from gwas_models.analysis.multitest import CHI2_1DF_MEDIAN
from gwas_models.analysis.permutation import (
    count_distinct_labelings,
    draw_labelings,
    draw_sign_flips,
    enumerate_labelings,
    enumerate_sign_flips,
)
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import ERRCODES

#: Random relabellings of λ's null drawn first (Monte Carlo); more are drawn, doubling the total,
#: while the relabelling p's interval straddles :data:`LAMBDA_NULL_ALPHA`. A λ far from its
#: null's 95th percentile is decided by these (p about 0.11 or more, or no draw reaching λ).
LAMBDA_NULL_RELABELINGS = 200
#: Most random relabellings drawn for λ's null (the cap of the sequential draws; see the module's
#: docstring): 200, 400, ..., 6,400. The cost is one test of every example per relabelling, paid
#: only by a λ near the line: at the cap, on 1,437 examples of 10 v 10 runs, 2.0-3.0 s of CPU per
#: score with Welch's t (measured on a busy 2-core machine; a clear λ: 0.1-0.4 s). A λ whose exact
#: relabelling p lies within about 0.009 of alpha ends undecided.
LAMBDA_NULL_MAX_RELABELINGS = 6400
#: The cap for the moderated t (and a test with run covariates), whose fit runs once per
#: relabelling in a loop (2.9 ms per relabelling against 0.35 for Welch's t at 1,437 examples):
#: 4.6 s of CPU per score at the cap, measured as above; undecided within about 0.02 of alpha.
LAMBDA_NULL_MAX_RELABELINGS_MODERATED = 1600
#: Every distinct relabelling is used (exact p, no Monte Carlo error) when the runs allow at most
#: this many and no more than the cap (6 v 6 runs: 462 partitions; 7 v 7: 1,716, drawn).
LAMBDA_NULL_EXACT_LIMIT = 1000
#: Confidence of the Clopper–Pearson interval of a Monte Carlo relabelling p: the verdict is
#: taken when it lies on one side of :data:`LAMBDA_NULL_ALPHA` (high, since the interval is looked
#: at after each block of draws: a verdict on the wrong side of the exact p is then rare).
LAMBDA_NULL_CONFIDENCE = 0.999
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
#: The verdicts of λ against its null (:attr:`LambdaNull.verdict_code`).
LAMBDA_VERDICTS = ("beyond", "within", "undecided", "no_verdict")
#: Percentiles of λ's null that are reported.
LAMBDA_NULL_PERCENTILES = (2.5, 50.0, 95.0, 97.5)

# Relative tolerance for "λ at least as large": relabellings equivalent to the observed one (the
# identity, the A/B mirror) must count even when the order of summation changes the last bits.
_TIE_TOLERANCE = 1e-9
# Scores gathered per block of relabellings (32 MB of float64).
_BLOCK_ELEMENTS = 4_000_000
# Relabellings x examples per block of the matrix-product path: 512 kB per float64 array, which
# stay in cache (arrays of megabytes cost several times more per element, newly mapped memory).
_FAST_BLOCK_ELEMENTS = 65_536
# A sum of squared deviations within this many ulps of the example's total sum of squares (times
# the runs) is rounding residue of sum(x**2) - sum(x)**2 / n: no spread (as in permutation.py).
_ZERO_SPREAD_ULPS = 16.0
# Relative margin of the |t| bounds outside which an example's p is surely away from its row's
# middle p (:func:`_lambdas_of_t`): far above the rounding of the t distribution's inverse.
_BRACKET_MARGIN = 1e-6
# R's t.test rule, as in association.py: a standard error below this many ulps of the larger
# |mean| is no spread.
_CONSTANT_ULPS = 10.0

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
    # The statistic falls as p rises: its median is that of the middle p (the mean of the two
    # middle ones' statistics for an even count), found by sorting p, NaN last, row by row at once.
    ordered = np.sort(p, axis=1)
    count = np.count_nonzero(np.isfinite(ordered), axis=1)
    middle = np.stack([np.maximum(count - 1, 0) // 2, count // 2], axis=1)
    middle = np.minimum(middle, max(p.shape[1] - 1, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        statistics = special.ndtri(np.take_along_axis(ordered, middle, axis=1) / 2.0) ** 2  # chi2.isf(p, 1), accurate for tiny p
        lambdas = (statistics[:, 0] + statistics[:, 1]) / 2.0 / CHI2_1DF_MEDIAN
    return np.where(count > 0, lambdas, np.nan)


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
        Relabelling p: share of relabellings with λ at least the observed one (exact), or
        (1 + b) / (1 + m) of m random ones of which b reach it (Monte Carlo).
    n_relabelings : int
        Relabellings in the null (exact: every distinct one, the observed included; Monte Carlo:
        the random ones that gave a λ).
    exact : bool
        Every distinct relabelling was used (else random ones were drawn).
    n_examples : int
        Examples used.
    p_low, p_high : float
        Interval of the exact relabelling p: Clopper–Pearson at :data:`LAMBDA_NULL_CONFIDENCE`
        from the random draws (Monte Carlo), ``p`` itself when exact.
    smallest_p : float
        The smallest relabelling p the runs allow (1 / distinct relabellings, a relabelling and its
        A/B mirror counted once): above :data:`LAMBDA_NULL_ALPHA`, no verdict is possible.
    """

    lambda_gc: float
    percentiles: dict[float, float]
    p: float
    n_relabelings: int
    exact: bool
    n_examples: int
    p_low: float
    p_high: float
    smallest_p: float

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
    def verdict_code(self) -> str:
        """The verdict for programs, one of :data:`LAMBDA_VERDICTS`: ``beyond`` (the interval of
        the relabelling p at most :data:`LAMBDA_NULL_ALPHA`), ``within`` (above it), ``undecided``
        (straddling it after the cap of draws), ``no_verdict`` (too few distinct relabellings to
        reach alpha, or no null)."""
        if not np.isfinite(self.p) or self.smallest_p > LAMBDA_NULL_ALPHA:
            return "no_verdict"
        if self.p_high <= LAMBDA_NULL_ALPHA:
            return "beyond"
        if self.p_low > LAMBDA_NULL_ALPHA:
            return "within"
        return "undecided"

    @property
    def beyond(self) -> bool:
        """λ exceeds its null: the relabelling p (its whole Monte Carlo interval) at most
        :data:`LAMBDA_NULL_ALPHA`."""
        return self.verdict_code == "beyond"

    def interval(self) -> str:
        """The relabelling p's interval in words: ``exact``, or e.g. ``99.9% MC interval 0.0310-0.0720``."""
        if self.exact:
            return "exact"
        return f"{LAMBDA_NULL_CONFIDENCE:.1%} MC interval {self.p_low:.4f}-{self.p_high:.4f}".replace(".0%", "%")

    def verdict(self) -> str:
        """What λ says, in words."""
        code = self.verdict_code
        if not np.isfinite(self.p):
            return "no null (no tested example, or no relabelling gave a λ)"
        if code == "no_verdict":
            return (
                f"no verdict: these runs allow no relabelling p below {self.smallest_p:.3g}, above "
                f"{LAMBDA_NULL_ALPHA:g} (too few runs to tell λ from run-to-run noise)"
            )
        if code == "beyond":
            return "beyond it: a real global difference between the architectures"
        if code == "within":
            return "consistent with run-to-run noise"
        return (
            f"undecided: the relabelling p's interval straddles {LAMBDA_NULL_ALPHA:g} after "
            f"{self.n_relabelings} random relabellings (λ too near its null's 95th percentile to tell)"
        )

    def describe(self) -> str:
        """One line for the ``.log``, e.g. ``λ = 2.90, 95th percentile under relabelling 4.10 (null
        2.5-97.5%: 0.62-4.80; p 0.31, exact; all 35 relabellings, 400 examples): consistent with
        run-to-run noise``."""
        if not np.isfinite(self.p):
            return f"λ = {self.lambda_gc:.2f}: {self.verdict()}"
        how = f"all {self.n_relabelings}" if self.exact else f"{self.n_relabelings} random"
        return (
            f"λ = {self.lambda_gc:.2f}, 95th percentile under relabelling {self.upper:.2f} "
            f"(null 2.5-97.5%: {self.low:.2f}-{self.high:.2f}; p {self.p:.3g}, {self.interval()}; {how} "
            f"relabellings, {self.n_examples} examples): {self.verdict()}"
        )


def lambda_null(
    values_a: np.ndarray,
    values_b: np.ndarray,
    test: str = "welch",
    *,
    rng: np.random.Generator | None = None,
    tested: np.ndarray | None = None,
    max_relabelings: int = LAMBDA_NULL_MAX_RELABELINGS,
    max_examples: int = LAMBDA_NULL_EXAMPLES,
    p_of_groups: GroupTest | None = None,
    exact_limit: int = LAMBDA_NULL_EXACT_LIMIT,
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
        Source of the random relabellings, when they are drawn (a fresh unseeded generator when
        omitted).
    tested : bool array (n_examples,), optional
        The examples tested under the observed labelling (default: all); the others are left out.
    max_relabelings : int
        Most random relabellings drawn (the cap of the sequential draws; the first block is
        :data:`LAMBDA_NULL_RELABELINGS`, or this when fewer).
    max_examples : int
        At most this many tested examples, evenly spaced, enter the null.
    p_of_groups : callable, optional
        The per-example p of relabelled groups (see :data:`GroupTest`); default
        :func:`two_sample_p` of ``test``. For a test that is not ``two_sample_test`` (e.g. a
        moderated t), so that the null is that of the test reported.
    exact_limit : int
        Every distinct relabelling is used when the runs allow at most this many and at most
        ``max_relabelings``.

    Returns
    -------
    LambdaNull

    Raises
    ------
    InputError
        A paired test of groups of different sizes, or ``max_relabelings`` below 1.
    """
    values_a = as_score_matrix(values_a, "scores of A")
    values_b = as_score_matrix(values_b, "scores of B")
    max_relabelings = _check_cap(max_relabelings)
    paired = test == "paired"
    n_a, n_b = values_a.shape[0], values_b.shape[0]
    if paired and values_a.shape != values_b.shape:
        raise InputError(f"a paired test needs the same runs in both groups ({n_a} vs {n_b})")
    columns = _null_examples(values_a.shape[1], tested, max_examples)
    data = np.vstack([values_a[:, columns], values_b[:, columns]])
    # A relabelling and its A/B mirror (paired: every sign flipped) give the same λ: count them once.
    n_distinct = 2 ** (n_a - 1) if paired else count_distinct_labelings(n_a, n_b)
    if len(columns) == 0:  # no tested example: no λ, and nothing to relabel
        return _no_null(float("nan"), 0, True, 0, 1.0 / n_distinct)
    group_test = p_of_groups or two_sample_p(test)
    # Welch's, Student's or the paired t of complete scores: from matrix products of the
    # relabellings with the scores (a few times faster than gathering every relabelling's runs).
    fast = _TwoSampleSums.of(data, n_a, test) if p_of_groups is None and np.isfinite(data).all() else None

    def lambdas_of(patterns: np.ndarray) -> np.ndarray:
        if fast is not None:
            return fast.lambdas(patterns)
        orders = _sign_flip_orders(patterns) if paired else np.argsort(patterns, axis=1, kind="stable")
        return _relabelled_lambdas(data, orders, (n_a, n_b), group_test)

    if count_distinct_labelings(n_a, n_b, paired) <= min(exact_limit, max_relabelings):
        patterns = enumerate_sign_flips(n_a) if paired else enumerate_labelings(n_a, n_b)
        return _exact_summary(lambdas_of(patterns), len(columns), 1.0 / n_distinct)
    rng = rng if rng is not None else np.random.default_rng()
    identity = np.ones(n_a) if paired else np.r_[np.zeros(n_a), np.ones(n_b)]

    def draw(n_draws: int) -> np.ndarray:
        return draw_sign_flips(rng, n_a, n_draws) if paired else draw_labelings(rng, n_a, n_b, n_draws)

    observed, null = _sequential_lambdas(lambdas_of, identity, draw, max_relabelings, 1.0 / n_distinct)
    return _monte_carlo_summary(observed, null, len(columns), 1.0 / n_distinct)


def lambda_null_oneway(
    groups: Sequence[np.ndarray],
    *,
    rng: np.random.Generator | None = None,
    tested: np.ndarray | None = None,
    max_relabelings: int = LAMBDA_NULL_MAX_RELABELINGS,
    max_examples: int = LAMBDA_NULL_EXAMPLES,
    exact_limit: int = LAMBDA_NULL_EXACT_LIMIT,
) -> LambdaNull:
    """λGC of a Welch's ANOVA across groups against its distribution under relabelling of the runs.

    As :func:`lambda_null`, for three or more groups: a relabelling deals the runs out to groups
    of the observed sizes; all of them when the runs allow at most ``exact_limit`` and
    ``max_relabelings`` (the identity among them), else random ones, drawn sequentially.

    Parameters
    ----------
    groups : sequence of arrays (n_runs_g, n_examples)
    rng, tested, max_relabelings, max_examples, exact_limit
        As for :func:`lambda_null`.

    Returns
    -------
    LambdaNull
    """
    matrices = [as_score_matrix(g, "scores") for g in groups]
    max_relabelings = _check_cap(max_relabelings)
    sizes = tuple(m.shape[0] for m in matrices)
    columns = _null_examples(matrices[0].shape[1], tested, max_examples)
    data = np.vstack([m[:, columns] for m in matrices])
    n_runs = data.shape[0]
    n_deals = factorial(n_runs) // prod(factorial(size) for size in sizes)
    # Groups of the same size swapped give the same F: such deals count once.
    n_same_size = prod(factorial(count) for count in Counter(sizes).values())
    smallest_p = n_same_size / n_deals

    def anova_p(relabelled: Sequence[np.ndarray]) -> np.ndarray:
        shape = relabelled[0].shape[1:]
        return welch_anova([g.reshape(g.shape[0], -1) for g in relabelled]).p.reshape(shape)

    def lambdas_of(orders: np.ndarray) -> np.ndarray:
        return _relabelled_lambdas(data, orders, sizes, anova_p)

    if n_deals <= min(exact_limit, max_relabelings):
        return _exact_summary(lambdas_of(_enumerate_deals(sizes)), len(columns), smallest_p)
    rng = rng if rng is not None else np.random.default_rng()

    def draw(n_draws: int) -> np.ndarray:
        return rng.permuted(np.tile(np.arange(n_runs), (n_draws, 1)), axis=1)

    observed, null = _sequential_lambdas(lambdas_of, np.arange(n_runs), draw, max_relabelings, smallest_p)
    return _monte_carlo_summary(observed, null, len(columns), smallest_p)


def relabelling_p_interval(at_least: np.ndarray | int, n_draws: np.ndarray | int, confidence: float = LAMBDA_NULL_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson interval of a relabelling p from ``at_least`` of ``n_draws`` random
    relabellings whose λ reaches the observed one.

    Parameters
    ----------
    at_least, n_draws : int or int arrays of the same shape
    confidence : float
        Two-sided coverage, in (0, 1).

    Returns
    -------
    p_low, p_high : float arrays (0-d for scalar input); (0, 1) where ``n_draws`` is 0.

    Examples
    --------
    >>> low, high = relabelling_p_interval(0, 200)
    >>> float(low), round(float(high), 4)
    (0.0, 0.0373)
    """
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}", parameter="confidence")
    b = np.asarray(at_least, dtype=np.float64)
    m = np.asarray(n_draws, dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(b > 0, special.betaincinv(np.maximum(b, 1e-300), m - b + 1.0, tail), 0.0)
        high = np.where(b < m, special.betaincinv(b + 1.0, np.maximum(m - b, 1e-300), 1.0 - tail), 1.0)
    return low, high


def two_sample_p(test: str) -> GroupTest:
    """The :data:`GroupTest` of :func:`~gwas_models.analysis.association.two_sample_test`: one call
    over every relabelling's examples side by side."""

    def p_of_groups(groups: Sequence[np.ndarray]) -> np.ndarray:
        group_a, group_b = groups
        shape = group_a.shape[1:]
        result = two_sample_test(group_a.reshape(group_a.shape[0], -1), group_b.reshape(group_b.shape[0], -1), test)
        # λ is of t statistics: an example tested without one (e.g. by an exact p) takes no part.
        return np.where(np.isfinite(result.t_stat), result.p, np.nan).reshape(shape)

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


@dataclass(frozen=True)
class _TwoSampleSums:
    """Complete scores prepared for the t of many relabellings at once, by matrix products.

    Unpaired: each example centred on its mean over every run (a relabelling moves no run's
    score, so sums over a group are products of the 0/1 labelling with the centred scores);
    paired: the differences B - A of the seed pairs, whose squares no sign flip changes. The
    error rules follow :func:`~gwas_models.analysis.association.two_sample_test`: no p (so no part
    in λ) where both groups have no spread (paired: the differences), where the standard error is
    rounding residue of the scores' magnitude, or where t or p is not finite. A sum of squared
    deviations within :data:`_ZERO_SPREAD_ULPS` ulps of the example's total (times the runs) is
    rounding residue of the one-pass formula: it counts as none.
    """

    test: str
    n_a: int
    n_b: int
    centred: np.ndarray  # (n_runs, n_examples); paired: the differences (n_pairs, n_examples)
    squares: np.ndarray  # (n_runs, n_examples) of the centred scores; paired: (n_examples,) total
    total: np.ndarray  # sum over runs of the centred scores (n_examples,)
    zero: np.ndarray  # sums of squared deviations at most this are none (n_examples,)
    magnitude: np.ndarray  # largest |score| of the example, for the essentially-constant rule
    centre: np.ndarray  # the example's mean over every run (unpaired)

    @classmethod
    def of(cls, data: np.ndarray, n_a: int, test: str) -> "_TwoSampleSums":
        n_runs = data.shape[0]
        magnitude = np.max(np.abs(data), axis=0)
        if test == "paired":
            differences = data[n_a:] - data[:n_a]
            squares = np.einsum("ij,ij->j", differences, differences)
            zero = _ZERO_SPREAD_ULPS * n_runs * np.finfo(np.float64).eps * squares
            return cls(test, n_a, n_a, differences, squares, differences.sum(axis=0), zero, magnitude, np.zeros(data.shape[1]))
        centre = data.mean(axis=0)
        centred = data - centre
        squares = centred * centred
        total_squares = squares.sum(axis=0)
        zero = _ZERO_SPREAD_ULPS * n_runs * np.finfo(np.float64).eps * total_squares
        return cls(test, n_a, n_runs - n_a, centred, squares, centred.sum(axis=0), zero, magnitude, centre)

    def lambdas(self, patterns: np.ndarray) -> np.ndarray:
        """λ of each relabelling: a row of 0/1 (1: the run goes to B) or, paired, of ±1 signs."""
        n_examples = self.centred.shape[1]
        block = max(1, _FAST_BLOCK_ELEMENTS // max(n_examples, 1))
        return np.concatenate([_lambdas_of_t(*self._t(patterns[start : start + block])) for start in range(0, len(patterns), block)])

    def _t(self, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """|t| and df of every example under each relabelling, (n_relabelings, n_examples) each;
        NaN where the test has no statistic."""
        eps = np.finfo(np.float64).eps
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if self.test == "paired":
                n = float(self.n_a)
                mean = _products(patterns, self.centred) / n
                deviations = np.maximum(self.squares - n * mean * mean, 0.0)
                deviations[deviations <= self.zero] = 0.0
                sd = np.sqrt(deviations / (n - 1.0))
                t_abs = np.abs(mean) / (sd / np.sqrt(n))
                df = np.full_like(t_abs, n - 1.0)
                undefined = sd <= 8.0 * eps * self.magnitude  # no spread of the differences beyond rounding
            else:
                n_a, n_b = float(self.n_a), float(self.n_b)
                sum_b = _products(patterns, self.centred)
                sum_a = self.total - sum_b
                squares_b = _products(patterns, self.squares)
                squares_a = self.squares.sum(axis=0) - squares_b
                mean_a, mean_b = sum_a / n_a, sum_b / n_b
                deviations_a = np.maximum(squares_a - sum_a * mean_a, 0.0)
                deviations_b = np.maximum(squares_b - sum_b * mean_b, 0.0)
                deviations_a[deviations_a <= self.zero] = 0.0
                deviations_b[deviations_b <= self.zero] = 0.0
                var_a, var_b = deviations_a / (n_a - 1.0), deviations_b / (n_b - 1.0)
                if self.test == "welch":
                    share_a, share_b = var_a / n_a, var_b / n_b
                    se = np.sqrt(share_a + share_b)
                    df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1.0) + share_b**2 / (n_b - 1.0))
                else:
                    pooled = (deviations_a + deviations_b) / (n_a + n_b - 2.0)
                    se = np.sqrt(pooled * (1.0 / n_a + 1.0 / n_b))
                    df = np.full_like(se, n_a + n_b - 2.0)
                t_abs = np.abs(mean_b - mean_a) / se
                largest = np.maximum(np.abs(mean_a + self.centre), np.abs(mean_b + self.centre))
                undefined = ((var_a == 0) & (var_b == 0)) | (se < _CONSTANT_ULPS * eps * largest)
        undefined |= ~(np.isfinite(t_abs) & np.isfinite(df))
        t_abs[undefined] = np.nan
        df[undefined] = np.nan
        return t_abs, df


def _products(patterns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``patterns @ values`` by einsum's own loops: a product this small (a few dozen runs) spends
    more on BLAS's threads than on arithmetic, and on a busy machine far more (measured: 24 ms
    threaded against 0.5 ms for 45 relabellings x 20 runs x 1,437 examples)."""
    return np.einsum("rk,ke->re", patterns, values)


def _t_p(t_abs: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of |t| with df, as :func:`~gwas_models.analysis.association.two_sample_test` computes it."""
    with np.errstate(invalid="ignore"):
        return np.minimum(2.0 * special.stdtr(df, -t_abs), 1.0)


def _lambdas_of_t(t_abs: np.ndarray, df: np.ndarray) -> np.ndarray:
    """λ of each row of t statistics (NaN: no test), the t distribution evaluated near the median only.

    λ needs the row's middle p, not every p. The two-sided p falls as |t| or df rises (the t
    distributions grow lighter-tailed with df), so with a row's smallest and largest df the middle
    order statistics of p are bracketed by those of p at a common df, which follow |t|'s order: one
    t tail each. Examples whose p is surely below (or above) the bracket keep only their side;
    only those inside it get their p (most rows: a few percent of the examples; with one df, as
    Student's or the paired t, the ties at the middle). Rows where a placeholder would be picked
    (which the bracket rules out) are computed in full.
    """
    n_rows, n_examples = t_abs.shape
    finite = np.isfinite(t_abs)
    count = finite.sum(axis=1)
    rows = np.arange(n_rows)
    middle = np.minimum(np.stack([np.maximum(count - 1, 0) // 2, count // 2], axis=1), max(n_examples - 1, 0))
    by_p = -np.sort(np.where(finite, -t_abs, np.inf), axis=1)  # |t| falling: p rising, no test last
    t_low, t_high = by_p[rows, middle[:, 0]], by_p[rows, middle[:, 1]]
    df_low = np.min(np.where(finite, df, np.inf), axis=1)
    df_high = np.max(np.where(finite, df, -np.inf), axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        p_floor = _t_p(t_low, df_high)  # the lower middle p is at least this
        p_ceiling = _t_p(t_high, df_low)  # the upper middle p is at most this
        # p(|t|, df_low) < p_floor for |t| above t_above: surely below the middle; p(|t|, df_high) >
        # p_ceiling for |t| below t_below: surely above it (margins against the inverse's rounding).
        t_above = -special.stdtrit(df_low, p_floor / 2.0) * (1.0 + _BRACKET_MARGIN)
        t_below = -special.stdtrit(df_high, p_ceiling / 2.0) * (1.0 - _BRACKET_MARGIN)
    below = finite & (t_abs > np.where(np.isfinite(t_above), t_above, np.inf)[:, None])
    above = finite & (t_abs < np.where(np.isfinite(t_below), t_below, -np.inf)[:, None])
    inside = finite & ~below & ~above
    p = np.full(t_abs.shape, np.nan)
    p[below], p[above] = -1.0, 2.0
    p[inside] = _t_p(t_abs[inside], df[inside])
    ordered = np.sort(p, axis=1)
    chosen = np.take_along_axis(ordered, middle, axis=1)
    wrong = (count > 0) & ((chosen < 0.0) | (chosen > 1.0)).any(axis=1)
    if wrong.any():  # never expected: the bracket is exact up to its margin
        full = np.where(finite[wrong], _t_p(t_abs[wrong], df[wrong]), np.nan)
        chosen[wrong] = np.take_along_axis(np.sort(full, axis=1), middle[wrong], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        statistics = special.ndtri(chosen / 2.0) ** 2
        lambdas = (statistics[:, 0] + statistics[:, 1]) / 2.0 / CHI2_1DF_MEDIAN
    return np.where(count > 0, lambdas, np.nan)


def _check_cap(max_relabelings: int) -> int:
    """``max_relabelings`` as an int; :class:`InputError` unless whole and at least 1."""
    if int(max_relabelings) != max_relabelings or max_relabelings < 1:
        raise InputError(f"max_relabelings must be at least 1 and whole, got {max_relabelings}", parameter="max_relabelings")
    return int(max_relabelings)


def _at_least(null: np.ndarray, observed: float) -> int:
    """Relabellings whose λ is at least the observed one (within :data:`_TIE_TOLERANCE`)."""
    return int(np.count_nonzero(null >= observed * (1.0 - _TIE_TOLERANCE)))


def _decided(null: np.ndarray, observed: float) -> bool:
    """The interval of the relabelling p from the finite λ of ``null`` lies on one side of alpha."""
    finite = null[np.isfinite(null)]
    if len(finite) == 0:
        return False
    low, high = relabelling_p_interval(_at_least(finite, observed), len(finite))
    return bool(high <= LAMBDA_NULL_ALPHA or low > LAMBDA_NULL_ALPHA)


def _sequential_lambdas(
    lambdas_of: Callable[[np.ndarray], np.ndarray],
    identity: np.ndarray,
    draw: Callable[[int], np.ndarray],
    max_relabelings: int,
    smallest_p: float,
) -> tuple[float, np.ndarray]:
    """The observed λ and the λ of random relabellings, drawn in blocks that double the draws
    (:data:`LAMBDA_NULL_RELABELINGS` first) until the relabelling p is decided, or the cap.

    ``lambdas_of(patterns)`` gives λ per row of relabellings, ``draw(n)`` n random ones, and
    ``identity`` the observed labelling (computed with the first block, through the same
    arithmetic). Nothing more is drawn when no verdict is possible (``smallest_p`` above alpha)
    or no λ was observed."""
    first = min(LAMBDA_NULL_RELABELINGS, max_relabelings)
    lambdas = lambdas_of(np.vstack([identity[None, :], draw(first)]))
    observed, blocks = float(lambdas[0]), [lambdas[1:]]
    n_drawn = first
    if not np.isfinite(observed) or smallest_p > LAMBDA_NULL_ALPHA:
        return observed, blocks[0]
    while n_drawn < max_relabelings and not _decided(np.concatenate(blocks), observed):
        more = min(n_drawn, max_relabelings - n_drawn)
        blocks.append(lambdas_of(draw(more)))
        n_drawn += more
    return observed, np.concatenate(blocks)


def _percentiles(null: np.ndarray) -> dict[float, float]:
    return dict(zip(LAMBDA_NULL_PERCENTILES, (float(v) for v in np.percentile(null, LAMBDA_NULL_PERCENTILES))))


def _no_null(observed: float, n_relabelings: int, exact: bool, n_examples: int, smallest_p: float) -> LambdaNull:
    nan = float("nan")
    return LambdaNull(observed, {q: nan for q in LAMBDA_NULL_PERCENTILES}, nan, n_relabelings, exact, n_examples, nan, nan, smallest_p)


def _exact_summary(lambdas: np.ndarray, n_examples: int, smallest_p: float) -> LambdaNull:
    """The observed λ (first) against every relabelling's: p exact, a zero-width interval."""
    observed = float(lambdas[0])
    null = lambdas[np.isfinite(lambdas)]
    if not np.isfinite(observed) or len(null) == 0:
        return _no_null(observed, len(null), True, n_examples, smallest_p)
    p = _at_least(null, observed) / len(null)
    return LambdaNull(observed, _percentiles(null), float(p), len(null), True, n_examples, float(p), float(p), smallest_p)


def _monte_carlo_summary(observed: float, null: np.ndarray, n_examples: int, smallest_p: float) -> LambdaNull:
    """The observed λ against random relabellings': p = (1 + b) / (1 + m), and the Clopper–Pearson
    interval of the exact relabelling p from b of m."""
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        return _no_null(observed, len(null), False, n_examples, smallest_p)
    at_least = _at_least(null, observed)
    low, high = relabelling_p_interval(at_least, len(null))
    p = (1.0 + at_least) / (1.0 + len(null))
    return LambdaNull(observed, _percentiles(null), float(p), len(null), False, n_examples, float(low), float(high), smallest_p)


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
