"""An association study: score matrices in, summary statistics out (the work behind ``gwasm associate``).

For every pair of architectures (A, B) and every score, each training example is tested for a
difference between the runs of A and the runs of B (:func:`~gwas_models.analysis.association.two_sample_test`),
p-values are adjusted over the examples of that score (:mod:`~gwas_models.analysis.multitest`),
genomic control λGC is computed and judged against its distribution under relabelling of the runs,
the global shift is tested on the runs' mean scores (:mod:`~gwas_models.analysis.genomic_control`;
warnings come only from these two, and from the floor of a permutation p), and, with
``test="permutation"``, the permutation p (:mod:`~gwas_models.analysis.permutation`) becomes the
p of the table, adjusted and counted (λGC stays of Welch's t; see
:mod:`gwas_models.formats.sumstats_schema`). The scores of each example are combined by the Cauchy
combination test, with the paper's mean -log10 p kept as the ranking
(:mod:`~gwas_models.analysis.combine`). With three or more architectures, every pair is compared
and Welch's one-way ANOVA across all of them is run per example as well.

Each comparison gives a summary statistics table: a pair table per pair, a one-way table across
all architectures; their columns, combined rows and error codes are defined in
:mod:`gwas_models.formats.sumstats_schema` and built by :mod:`gwas_models.analysis.sumstats_table`.
The text of a study (its ``.log``, the console summary) is in :mod:`gwas_models.analysis.association_log`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from gwas_models.analysis.association import (
    CONST,
    NAN,
    SEPARATED,
    DEFAULT_NORMALIZATION,
    NORMALIZATIONS,
    OnewayResult,
    TwoSampleResult,
    constant_level,
    constant_within_runs,
    normalize_within_runs,
    set_oneway_separated,
    set_separated,
    set_untested,
    two_sample_test,
    welch_anova,
)
from gwas_models.analysis.combine import CombinedEvidence, combine_evidence
from gwas_models.analysis.genomic_control import (
    LAMBDA_NULL_ALPHA,
    LAMBDA_NULL_EXAMPLES,
    LAMBDA_NULL_MAX_RELABELINGS,
    LAMBDA_NULL_MAX_RELABELINGS_MODERATED,
    LAMBDA_NULL_SEED,
    LambdaNull,
    RunLevelTest,
    lambda_null,
    lambda_null_oneway,
    run_level_anova,
    run_level_test,
)
from gwas_models.analysis.multitest import (
    ADJUST_METHODS,
    adjust_neg_log10_p,
    adjust_pvalues,
    check_alpha,
    count_significant,
    genomic_control_lambda,
    parse_adjust_list,
)
from gwas_models.analysis.covariates import RunCovariates, check_design, covariate_test, design_matrix, exactly_fitted_runs
from gwas_models.analysis.moderated import VariancePrior, mean_over_runs, moderate
from gwas_models.analysis.relative import center_on_level_trend, is_heavily_tied
from gwas_models.analysis.permutation import EXACT_LIMIT, PermutationResult, check_n_permutations, permutation_test
from gwas_models.analysis.sumstats_table import (
    TableLayout,
    assemble,
    oneway_block,
    oneway_combined_block,
    pair_block,
    pair_combined_block,
)
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import (
    ADJUST_COLUMNS,
    COMBINED,
    COMBINED_PAIRS,
    ERRCODES,
    oneway_columns,
    pair_columns,
    ranking_column,
    ranking_score,
)
from gwas_models.matrix import ScoreMatrix, check_same_runs

TESTS: tuple[str, ...] = ("welch", "student", "permutation", "moderated")


# --------------------------------------------------------------------------------------------
# Settings and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssociationSettings:
    """How to test; validated on construction (:class:`InputError` for a bad value).

    Names are taken case-insensitively and without surrounding spaces.

    Attributes
    ----------
    test : {"welch", "student", "permutation", "moderated"}
        Welch's t (default), Student's t, Welch's t with label permutations (adds EMP1, EMP2; P is
        EMP1, so the adjustments, counts and plots use the permutation p; λGC stays of Welch's t), or
        limma's empirical-Bayes moderated t (:mod:`~gwas_models.analysis.moderated`; with
        ``paired``, of the paired differences).
    adjust : tuple of str (or a comma-separated string)
        statsmodels ``multipletests`` methods (default: bonferroni, holm, sidak, fdr_bh, fdr_by).
    alpha : float
        Significance level for the counts of significant examples (default 0.01, the paper's
        Bonferroni threshold).
    normalize : {"relative", "none", "rank", "zscore", "center_class"}
        The reference each example is tested against. ``relative`` (default) answers "which
        examples change difficulty relative to their architecture": normal scores within each run,
        then each architecture centred on the robust level trend of its difference from the other
        (:mod:`~gwas_models.analysis.relative`); one architecture being better overall is then not
        a per-example finding but the run-level test's (``ScoreSummary.run_shift``). ``none`` tests
        the scores as collected (the paper's setting: a global shift makes every example differ).
        The others transform each run's scores only
        (:func:`~gwas_models.analysis.association.normalize_within_runs`): ``rank`` and ``zscore``
        remove a run's global shift, ``center_class`` its shift within each class. ``rank`` is
        refused for heavily tied scores (accuracy, forgetting), whose ranks create differences
        from the ties.
    paired : bool
        Pair the runs of A and B that share a seed: paired t-test (permutations flip signs).
    n_permutations : int
        Random relabellings for ``test="permutation"`` when the runs allow more than
        :data:`~gwas_models.analysis.permutation.EXACT_LIMIT` distinct ones; below that every one
        is enumerated (exact p) and this is not used.
    trend : bool
        With ``test="moderated"`` only: limma's ``eBayes(trend=TRUE)``, the prior variance a
        smooth function (natural spline) of each example's mean score, for scores whose variance
        depends on their level (counts, accuracies).
    robust : bool
        With ``test="moderated"`` only: limma's ``eBayes(robust=TRUE)``, the prior fitted robustly,
        so that examples with outlying variances neither distort it nor borrow from it as much.
    covariates : RunCovariates, optional
        Covariates of the runs (:class:`~gwas_models.analysis.covariates.RunCovariates`, keyed by
        architecture and seed): each example's test becomes the group coefficient of ``score ~
        group + covariates`` (:mod:`~gwas_models.analysis.covariates`; BETA is the difference at
        equal covariates). With test ``welch``, ``student`` or ``moderated``, two architectures,
        not paired.
    """

    test: str = "welch"
    adjust: tuple[str, ...] = ADJUST_METHODS
    alpha: float = 0.01
    normalize: str = DEFAULT_NORMALIZATION
    paired: bool = False
    n_permutations: int = 1000
    trend: bool = False
    robust: bool = False
    covariates: RunCovariates | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", _choice("test", self.test, TESTS))
        object.__setattr__(self, "normalize", _choice("normalize", self.normalize, NORMALIZATIONS))
        object.__setattr__(self, "adjust", parse_adjust_list(self.adjust, parameter="adjust"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "n_permutations", check_n_permutations(self.n_permutations))
        for option in ("trend", "robust"):
            if getattr(self, option) and self.test != "moderated":
                raise InputError(
                    f"{option} applies to the moderated test only (limma's eBayes {option}=TRUE); test is {self.test!r}",
                    parameter=option,
                )
        if self.covariates is not None:
            if not isinstance(self.covariates, RunCovariates):
                raise InputError("covariates must be RunCovariates (e.g. RunCovariates.from_frame(table))", parameter="covariates")
            if self.permutation:
                raise InputError(
                    "covariates cannot be used with the permutation test (relabelling runs would not keep the "
                    "covariate adjustment valid): use Welch's, Student's or the moderated t",
                    parameter="covariates",
                )
            if self.paired:
                raise InputError(
                    "covariates cannot be used with a paired test (each pair already shares its seed's conditions)",
                    parameter="covariates",
                )

    @property
    def t_test(self) -> str:
        """The t-test run per example: ``paired`` when paired, else ``student`` or ``welch``
        (``student`` for the moderated t, which moderates the pooled variance)."""
        if self.paired:
            return "paired"
        return "student" if self.test in ("student", "moderated") else "welch"

    @property
    def relative(self) -> bool:
        """Each example is tested relative to its architecture (the default reference)."""
        return self.normalize == "relative"

    @property
    def moderated(self) -> bool:
        return self.test == "moderated"

    @property
    def permutation(self) -> bool:
        return self.test == "permutation"

    def describe(self) -> str:
        """One line of the settings, as the ``.log`` shows them."""
        parts = [f"test: {self.t_test} t-test, two-sided"]
        if self.moderated:
            parts[0] = (
                f"test: moderated {'paired ' if self.paired else ''}t (limma eBayes, Smyth 2004: "
                "variances shrunk to a prior fitted across examples), two-sided"
            )
        if self.permutation:
            parts.append(
                f"{'sign-flip' if self.paired else 'label'} permutations (P = EMP1, adjusted; max-T EMP2): every distinct one "
                f"when there are at most {EXACT_LIMIT}, else {self.n_permutations} random"
            )
        if self.trend or self.robust:
            options = [name for name in ("trend", "robust") if getattr(self, name)]
            parts.append(f"eBayes: {'+'.join(options)} (limma {', '.join(f'{o}=TRUE' for o in options)})")
        if self.covariates is not None:
            how = "HC2 standard error, Bell-McCaffrey df" if self.t_test == "welch" else "ordinary least squares"
            if self.moderated:
                how = "lmFit + eBayes"
            parts.append(
                f"covariates: {self.covariates.describe()} (per example score ~ group + covariates, {how}; "
                "BETA is the group coefficient)"
            )
        parts += [f"normalize: {self.normalize}", f"alpha: {self.alpha:g}", f"adjust: {','.join(self.adjust)}"]
        return "; ".join(parts)


def _choice(parameter: str, value: str, choices: Sequence[str]) -> str:
    name = str(value).strip().lower()
    if name not in choices:
        raise InputError(f"{parameter} must be one of {', '.join(choices)}, got {value!r}", parameter=parameter)
    return name


@dataclass(frozen=True)
class ScoreSummary:
    """What one comparison found for one score.

    Attributes
    ----------
    score : str
    n_examples, n_tested : int
        Examples, and those tested (ERRCODE '.' or SEPARATED: those with a p).
    errcodes : dict
        Count of each error code among the untested examples (SEPARATED ones are tested: see
        ``n_separated``).
    n_partial : int
        Tested examples that had non-finite scores in some runs (tested on the others).
    lambda_gc : float
    n_significant : dict
        Adjusted p at most alpha, by method; plus ``"EMP2"`` for permutation tests.
    smallest_p : float
        Smallest reachable permutation p (NaN without permutations).
    variance_prior : VariancePrior or None
        The prior (d0, s0²) of the moderated t, fitted over the score's tested examples (None
        for the other tests).
    lambda_null : LambdaNull or None
        λGC against its distribution under relabelling of the runs: its percentiles and
        relabelling p (:func:`~gwas_models.analysis.genomic_control.lambda_null`); None for a
        combined row.
    run_shift : RunLevelTest or None
        The global shift tested on run means, on the scores as collected
        (:func:`~gwas_models.analysis.genomic_control.run_level_test`); None for a combined row.
    higher_is_harder : bool or None
        The score's direction, to say which architecture its global shift makes harder (None for
        a combined row).
    n_separated : int
        Tested examples that are perfect separations (ERRCODE SEPARATED: an exact permutation p,
        no t statistic, so not in λGC).
    """

    score: str
    n_examples: int
    n_tested: int
    errcodes: dict[str, int]
    n_partial: int
    lambda_gc: float
    n_significant: dict[str, int]
    smallest_p: float = float("nan")
    variance_prior: VariancePrior | None = None
    lambda_null: LambdaNull | None = None
    run_shift: RunLevelTest | None = None
    higher_is_harder: bool | None = None
    n_separated: int = 0

    def harder_overall(self, archs: Sequence[str], alpha: float) -> str | None:
        """The architecture whose runs find this score harder on average, when the run-level
        test says so at ``alpha`` (a pair: ``archs`` = (A, B)); else None."""
        shift = self.run_shift
        if shift is None or self.higher_is_harder is None or not shift.significant(alpha) or len(archs) != 2:
            return None
        b_higher = shift.difference > 0
        return archs[1] if b_higher == self.higher_is_harder else archs[0]


@dataclass(frozen=True)
class ComparisonResult:
    """One comparison: a pair of architectures (``kind="pair"``) or all of them (``"oneway"``).

    Attributes
    ----------
    kind : {"pair", "oneway"}
    archs : tuple of str
        (A, B) for a pair; every architecture for the one-way test.
    sumstats : DataFrame
        The summary statistics table (see :mod:`gwas_models.formats.sumstats_schema`).
    scores : tuple of ScoreSummary
    warnings : tuple of str
    combined : tuple of ScoreSummary
        The ``combined`` (and one-way ``combined_pairs``) rows: examples tested and significant
        by their Cauchy combination p (no λ, no run-level test).
    """

    kind: str
    archs: tuple[str, ...]
    sumstats: pd.DataFrame = field(repr=False)
    scores: tuple[ScoreSummary, ...]
    warnings: tuple[str, ...]
    combined: tuple[ScoreSummary, ...] = ()

    @property
    def a(self) -> str:
        return self.archs[0]

    @property
    def b(self) -> str:
        return self.archs[1]

    @property
    def label(self) -> str:
        return " vs ".join(self.archs)

    def summary(self) -> pd.DataFrame:
        """One row per score (then the combined rows): examples tested, λGC with the 2.5th and
        97.5th percentiles and p of its relabelling null, the interval of that p (``lambda_p_low``,
        ``lambda_p_high``: Monte Carlo, or p itself when exact) and λ's verdict (``lambda_verdict``:
        :attr:`~gwas_models.analysis.genomic_control.LambdaNull.verdict_code`, empty for combined
        rows), the run-level test of the global shift (mean difference, statistic, p), and
        significant examples per method."""
        rows = []
        for item in self.scores + self.combined:
            null, shift = item.lambda_null, item.run_shift
            row = {
                "score": item.score,
                "tested": item.n_tested,
                "lambda_gc": item.lambda_gc,
                "lambda_null_low": null.low if null else np.nan,
                "lambda_null_high": null.high if null else np.nan,
                "lambda_p": null.p if null else np.nan,
                "lambda_p_low": null.p_low if null else np.nan,
                "lambda_p_high": null.p_high if null else np.nan,
                "lambda_verdict": null.verdict_code if null else "",
                "shift": shift.difference if shift else np.nan,
                "shift_stat": shift.statistic if shift else np.nan,
                "shift_p": shift.p if shift else np.nan,
            }
            row.update({f"n_{method}": count for method, count in item.n_significant.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def top(self, n: int = 10, score: str | None = None) -> pd.DataFrame:
        """The ``n`` best rows of one score (default: the paper's ranking,
        :func:`~gwas_models.formats.sumstats_schema.ranking_score`, else the first score), by its
        ranking column (:func:`~gwas_models.formats.sumstats_schema.ranking_column`): the mean
        -log10 p for the combined scores, NEG_LOG10_P otherwise."""
        table = self.sumstats
        names = list(dict.fromkeys(table["SCORE"].astype(str)))
        if score is None:
            score = ranking_score(names) or names[0]
        rows = table[table["SCORE"].astype(str) == score]
        return rows.nlargest(n, ranking_column(score))


@dataclass(frozen=True)
class AssociationStudy:
    """Every comparison of one ``associate`` call.

    Attributes
    ----------
    settings : AssociationSettings
    dataset : str
    archs, scores : tuple of str
    runs : dict
        Seeds of the runs used, by architecture.
    n_examples : int
    pairs : tuple of ComparisonResult
        One per pair of architectures, in the order of ``itertools.combinations(archs, 2)``.
    oneway : ComparisonResult or None
        Welch's ANOVA across all architectures (three or more).
    """

    settings: AssociationSettings
    dataset: str
    archs: tuple[str, ...]
    scores: tuple[str, ...]
    runs: dict[str, tuple[int, ...]]
    n_examples: int
    pairs: tuple[ComparisonResult, ...] = ()
    oneway: ComparisonResult | None = None

    @property
    def comparisons(self) -> tuple[ComparisonResult, ...]:
        return self.pairs + ((self.oneway,) if self.oneway is not None else ())

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for c in self.comparisons for w in c.warnings)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def check_archs(archs: Sequence[str], present: Sequence[str], where: str = "") -> tuple[str, ...]:
    """The architectures of an association, checked against those that have runs.

    Parameters
    ----------
    archs : sequence of str
        Architectures asked for, in order.
    present : sequence of str
        Architectures that have runs.
    where : str
        Where the runs are, for the messages (e.g. ``" for dataset 'cifar10'"``).

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        An architecture named twice, one without runs, or fewer than two.
    """
    archs = tuple(str(a) for a in archs)
    duplicates = sorted({a for a in archs if archs.count(a) > 1})
    if duplicates:
        raise InputError(f"architecture {duplicates[0]!r} is named twice")
    missing = [a for a in archs if a not in present]
    if missing:
        raise InputError(f"no runs of {missing[0]!r}{where}; architectures there: {', '.join(present) or 'none'}")
    if len(archs) < 2:
        raise InputError(f"an association needs at least two architectures, got {len(archs)} ({', '.join(archs) or 'none'})")
    return archs


def _as_matrices(matrices: Mapping[str, ScoreMatrix] | Sequence[ScoreMatrix] | ScoreMatrix) -> dict[str, ScoreMatrix]:
    if isinstance(matrices, ScoreMatrix):
        matrices = [matrices]
    if not isinstance(matrices, Mapping):
        matrices = {m.score: m for m in matrices}
    matrices = dict(matrices)
    if not matrices:
        raise InputError("no score to test")
    check_same_runs(matrices)
    return matrices


def _resolve_archs(first: ScoreMatrix, archs: Sequence[str] | None) -> tuple[str, ...]:
    present = first.group_names()
    archs = check_archs(present if archs is None else archs, present)
    for arch in archs:
        n_runs = int(np.count_nonzero(first.groups == arch))
        if n_runs < 2:
            raise InputError(f"architecture {arch!r} has {n_runs} run; a test needs at least 2 runs per architecture")
    return archs


def _take_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, as a view (no copy of a large matrix) when the rows are consecutive."""
    if len(rows) and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        return values[rows[0] : rows[0] + len(rows)]
    return values[rows]


def _seed_order(first: ScoreMatrix, arch: str) -> np.ndarray:
    """Row indices of an architecture's runs, sorted by seed."""
    rows = np.flatnonzero(first.groups == arch)
    return rows[np.argsort(first.seeds[rows], kind="stable")]


def _run_covariates(
    settings: AssociationSettings,
    first: ScoreMatrix,
    archs: tuple[str, ...],
    rows: dict[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
) -> dict[str, np.ndarray] | None:
    """Each architecture's runs' covariates (design columns, runs in seed order), every pair's
    design checked before anything is tested; None without covariates."""
    covariates = settings.covariates
    if covariates is None:
        return None
    if len(archs) > 2:
        raise InputError(
            f"covariates adjust the comparison of two architectures, got {len(archs)} ({', '.join(archs)}): Welch's "
            "one-way ANOVA across them has no covariate adjustment; compare them two at a time",
            parameter="covariates",
        )
    by_arch = {arch: covariates.for_runs(arch, first.seeds[rows[arch]]) for arch in archs}
    for a, b in pairs:
        design = design_matrix(by_arch[a], by_arch[b])
        check_design(design, covariates.names, (a, b))
        exact = exactly_fitted_runs(design)
        if settings.t_test == "welch" and exact.size:
            run = int(exact[0])
            arch, seed = (a, first.seeds[rows[a]][run]) if run < len(rows[a]) else (b, first.seeds[rows[b]][run - len(rows[a])])
            raise InputError(
                f"covariates fit run {arch} seed {int(seed)} exactly (leverage 1, e.g. the only run of a level), so "
                "Welch's HC2 standard error is undefined: use Student's or the moderated t, or change the covariates",
                parameter="covariates",
            )
    return by_arch


def _check_paired_seeds(first: ScoreMatrix, a: str, b: str) -> None:
    seeds_a = set(first.seeds[first.groups == a].tolist())
    seeds_b = set(first.seeds[first.groups == b].tolist())
    if seeds_a != seeds_b:
        only_a = ",".join(map(str, sorted(seeds_a - seeds_b))) or "none"
        only_b = ",".join(map(str, sorted(seeds_b - seeds_a))) or "none"
        raise InputError(
            f"paired test needs the same seeds for {a} and {b}: seeds only in {a}: {only_a}; only in {b}: {only_b}"
        )


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------

#: Called with the study's design (no results yet) and each comparison as soon as it is done.
OnComparison = Callable[[AssociationStudy, ComparisonResult], None]


def associate(
    matrices: Mapping[str, ScoreMatrix] | Sequence[ScoreMatrix] | ScoreMatrix,
    archs: Sequence[str] | None = None,
    *,
    settings: AssociationSettings | None = None,
    rng: np.random.Generator | None = None,
    on_comparison: OnComparison | None = None,
    keep_tables: bool = True,
    **options: Any,
) -> AssociationStudy:
    """Test every example and score for a difference between architectures.

    Parameters
    ----------
    matrices : mapping score -> ScoreMatrix, sequence of ScoreMatrix, or one ScoreMatrix
        Scores of the same runs over the same examples (as
        :func:`~gwas_models.formats.store.load_score_matrices` returns).
    archs : sequence of str, optional
        Architectures to compare, in order (default: all present). Two give one pair; three or
        more give every pair plus Welch's one-way ANOVA.
    settings : AssociationSettings, optional
        How to test (default: ``AssociationSettings(**options)``).
    rng : numpy.random.Generator, optional
        Source of the permutations (``test="permutation"``) and, through a generator spawned from
        it (so that the permutations stay the same), of the random relabellings of λ's null when
        the runs allow more than
        :data:`~gwas_models.analysis.genomic_control.LAMBDA_NULL_EXACT_LIMIT` distinct ones (drawn
        until the relabelling p is decided, at most
        :data:`~gwas_models.analysis.genomic_control.LAMBDA_NULL_MAX_RELABELINGS`, or
        :data:`~gwas_models.analysis.genomic_control.LAMBDA_NULL_MAX_RELABELINGS_MODERATED` for the
        moderated t). Without it, those
        relabellings come from a generator seeded with
        :data:`~gwas_models.analysis.genomic_control.LAMBDA_NULL_SEED`: the same study gives the
        same λ null each time.
    on_comparison : callable, optional
        Called as ``on_comparison(design, comparison)`` as soon as each comparison is done (e.g.
        to write it), where ``design`` is the study without results (settings, runs, scores).
    keep_tables : bool
        Keep every comparison's sumstats table in the result (default). With False, each table
        is dropped (left empty) once ``on_comparison`` has seen it: all pairs of many
        architectures over a large dataset do not fit in memory together.
    **options
        Fields of :class:`AssociationSettings` (``test``, ``adjust``, ``alpha``, ``normalize``,
        ``paired``, ``n_permutations``), a shorthand for ``settings``; not both.

    Returns
    -------
    AssociationStudy

    Raises
    ------
    InputError
        Bad settings, unknown or repeated architectures, fewer than two architectures, an
        architecture with fewer than two runs, or unmatched seeds for a paired test; with
        ``test="moderated"``, a score none of whose examples can be tested (no variance to fit
        the prior on); ``normalize="rank"`` of a heavily tied score (see
        :func:`~gwas_models.analysis.association.rank_ties_reason`).
    """
    if settings is None:
        settings = AssociationSettings(**options)
    elif options:
        raise TypeError(f"associate() takes settings or its fields ({', '.join(options)}), not both")
    matrices = _as_matrices(matrices)
    first = next(iter(matrices.values()))
    archs = _resolve_archs(first, archs)
    pairs = list(combinations(archs, 2))
    if settings.paired:
        for a, b in pairs:
            _check_paired_seeds(first, a, b)
    if settings.permutation and rng is None:
        rng = np.random.default_rng()
    # λ's null draws from its own stream, so that it leaves the permutations of a seeded rng as they were.
    null_rng = rng.spawn(1)[0] if rng is not None else np.random.default_rng(LAMBDA_NULL_SEED)

    rows = {arch: _seed_order(first, arch) for arch in archs}
    run_covariates = _run_covariates(settings, first, archs, rows, pairs)
    raw_blocks, blocks, raw_constant, tied = _prepared_blocks(matrices, archs, rows, settings)
    layout = TableLayout.of(first, list(matrices))
    design = AssociationStudy(
        settings=settings,
        dataset=first.dataset,
        archs=archs,
        scores=tuple(matrices),
        runs={arch: tuple(int(s) for s in first.seeds[rows[arch]]) for arch in archs},
        n_examples=first.n_examples,
    )

    def finished(comparison: ComparisonResult) -> ComparisonResult:
        if on_comparison is not None:
            on_comparison(design, comparison)
        return comparison if keep_tables else replace(comparison, sumstats=comparison.sumstats.iloc[:0])

    pair_results, pair_evidence, pair_errors = [], [], []
    for a, b in pairs:
        result, evidence, errors = _compare_pair(
            blocks,
            matrices,
            a,
            b,
            settings,
            rng,
            layout,
            raw_constant,
            raw_blocks=raw_blocks,
            null_rng=null_rng,
            tied=tied,
            run_covariates=run_covariates,
        )
        pair_results.append(finished(result))
        pair_evidence.append(evidence)
        pair_errors.append(errors)
    oneway = None
    if len(archs) >= 3:
        oneway = finished(
            _compare_all(
                blocks,
                matrices,
                archs,
                settings,
                layout,
                np.vstack(pair_evidence),
                np.vstack(pair_errors),
                raw_constant,
                raw_blocks=raw_blocks,
                null_rng=null_rng,
                tied=tied,
            )
        )
    return replace(design, pairs=tuple(pair_results), oneway=oneway)


def _prepared_blocks(
    matrices: Mapping[str, ScoreMatrix], archs: Sequence[str], rows: Mapping[str, np.ndarray], settings: AssociationSettings
) -> tuple[
    dict[str, dict[str, np.ndarray]],
    dict[str, dict[str, np.ndarray]],
    dict[str, dict[str, np.ndarray]] | None,
    dict[str, dict[str, bool]],
]:
    """Each score's runs of each architecture as collected, normalised within runs, (when
    normalising) which examples are constant over each architecture's runs as collected, and
    (under ``relative``) whether the architecture's runs of the score are heavily tied."""
    first = next(iter(matrices.values()))
    # Normalising within runs only involves each run's own scores, so it can be done per block.
    raw_blocks = {name: {arch: _take_rows(m.values, rows[arch]) for arch in archs} for name, m in matrices.items()}
    blocks = {
        name: {
            arch: normalize_within_runs(
                raw_blocks[name][arch],
                settings.normalize,
                labels=m.labels,
                run_names=[f"run {arch} seed {int(seed)}" for seed in first.seeds[rows[arch]]],
                parameter="normalize",  # refusals (rank of tied scores) name the study's parameter
                what=f"score {name!r}",
            )
            for arch in archs
        }
        for name, m in matrices.items()
    }
    # Zero variance is judged on the scores as collected: ranking turns an example that is constant
    # within each group (e.g. forgetting 1,1,1,1 vs 0,0,0,0) into ranks that differ by tie-block
    # sizes, a tiny but non-zero variance that a t-test would call overwhelmingly significant.
    raw_constant = (
        {name: {arch: constant_within_runs(raw_blocks[name][arch]) for arch in archs} for name in matrices}
        if settings.normalize != "none"
        else None
    )
    # The relative reference bins heavily tied scores more finely: judged once per architecture.
    tied = {name: {arch: settings.relative and is_heavily_tied([raw_blocks[name][arch]]) for arch in archs} for name in matrices}
    return raw_blocks, blocks, raw_constant, tied


# --------------------------------------------------------------------------------------------
# One score of one pair
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreTest:
    """The per-example test of one score between two architectures, before λ and the run-level test.

    Attributes
    ----------
    values : (array, array)
        The scores that were tested, (n_runs_a, n_examples) and (n_runs_b, n_examples):
        normalised within runs and, under ``normalize="relative"``, centred on the level trend.
    result : TwoSampleResult
        The test, with its error codes; with ``test="permutation"`` its p is EMP1.
    prior : VariancePrior or None
        The moderated t's prior.
    permutation : PermutationResult or None
    adjusted, adjusted_log : DataFrame
        p adjusted by every method of the settings, and the same as -log10 computed in log space.
    statistic_p : float array
        The p of the t statistic (Welch's, Student's, paired or moderated) where there is one: what λ is of.
    covariates : (array, array) or None
        Each architecture's runs' covariates, when the test had them.
    """

    values: tuple[np.ndarray, np.ndarray] = field(repr=False)
    result: TwoSampleResult = field(repr=False)
    prior: VariancePrior | None
    permutation: PermutationResult | None = field(repr=False)
    adjusted: pd.DataFrame = field(repr=False)
    adjusted_log: pd.DataFrame = field(repr=False)
    statistic_p: np.ndarray = field(repr=False)
    covariates: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def _test_score(
    values: tuple[np.ndarray, np.ndarray],
    raw: tuple[np.ndarray, np.ndarray],
    raw_constant: tuple[np.ndarray, np.ndarray] | None,
    settings: AssociationSettings,
    rng: np.random.Generator | None,
    *,
    name: str,
    archs: tuple[str, str],
    tied: bool = False,
    covariates: tuple[np.ndarray, np.ndarray] | None = None,
) -> ScoreTest:
    """Test one score of one pair: centre (``relative``), test, set aside, moderate, permute, adjust."""
    a, b = archs
    label = f"{a} vs {b}"
    values_a, values_b = values
    if settings.relative:
        values_a, values_b = center_on_level_trend(
            (values_a, values_b), tested=_trend_examples(raw, raw_constant), tied=tied
        )
    unscaled_variance = None
    if covariates is not None:
        fit = covariate_test(values_a, values_b, *covariates, settings.t_test, names=(a, b), covariate_names=settings.covariates.names)
        result, unscaled_variance = fit.result, fit.unscaled_variance
    else:
        result = two_sample_test(values_a, values_b, settings.t_test, names=(a, b))
    if raw_constant is not None:
        result = _raw_constant_codes(result, raw[0], raw[1], raw_constant[0] & raw_constant[1])
    prior = None
    if settings.moderated:  # after the set-asides, which take no part in the prior
        result, prior = _moderated(result, name, label, settings, (values_a, values_b), unscaled_variance=unscaled_variance)
    # λ is of the t statistics (Welch's, Student's, paired or moderated), whatever p is reported.
    statistic_p = np.where(result.has_statistic, result.p, np.nan)
    permutation = None
    if settings.permutation:
        permutation = _permutation(result, values_a, values_b, raw[0], raw[1], settings, rng)
        result = _with_permutation_p(result, permutation)
    adjusted, adjusted_log = _adjust(result.p, result.neg_log10_p, settings)
    return ScoreTest(
        values=(values_a, values_b),
        result=result,
        prior=prior,
        permutation=permutation,
        adjusted=adjusted,
        adjusted_log=adjusted_log,
        statistic_p=statistic_p,
        covariates=covariates,
    )


def score_pvalues(
    matrix: ScoreMatrix,
    settings: AssociationSettings | None = None,
    *,
    archs: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    **options: Any,
) -> ScoreTest:
    """The per-example test of one score between two architectures, as :func:`associate` does it,
    without λ's relabelling null and the run-level test (for calibration over many studies).

    Parameters
    ----------
    matrix : ScoreMatrix
    settings : AssociationSettings, optional
        Default ``AssociationSettings(**options)``. Run covariates are not supported here.
    archs : (str, str), optional
        The pair (default: the two architectures of ``matrix``).
    rng : numpy.random.Generator, optional
        Source of the permutations (a fresh generator when omitted).

    Returns
    -------
    ScoreTest
    """
    if settings is None:
        settings = AssociationSettings(**options)
    elif options:
        raise TypeError(f"score_pvalues() takes settings or its fields ({', '.join(options)}), not both")
    if settings.covariates is not None:
        raise InputError("score_pvalues() takes no run covariates; use associate()", parameter="covariates")
    archs = _resolve_archs(matrix, archs)
    if len(archs) != 2:
        raise InputError(f"score_pvalues() tests one pair of architectures, got {len(archs)}", parameter="archs")
    if settings.paired:
        _check_paired_seeds(matrix, *archs)
    rows = {arch: _seed_order(matrix, arch) for arch in archs}
    raw_blocks, blocks, raw_constant, tied = _prepared_blocks({matrix.score: matrix}, archs, rows, settings)
    name = matrix.score
    a, b = archs
    return _test_score(
        (blocks[name][a], blocks[name][b]),
        (raw_blocks[name][a], raw_blocks[name][b]),
        (raw_constant[name][a], raw_constant[name][b]) if raw_constant is not None else None,
        settings,
        rng if rng is not None else np.random.default_rng(),
        name=name,
        archs=(a, b),
        tied=tied[name][a] or tied[name][b],
    )


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def _compare_pair(
    blocks: dict[str, dict[str, np.ndarray]],
    matrices: Mapping[str, ScoreMatrix],
    a: str,
    b: str,
    settings: AssociationSettings,
    rng: np.random.Generator | None,
    layout: TableLayout,
    raw_constant: dict[str, dict[str, np.ndarray]] | None = None,
    *,
    raw_blocks: dict[str, dict[str, np.ndarray]],
    null_rng: np.random.Generator,
    tied: dict[str, dict[str, bool]],
    run_covariates: dict[str, np.ndarray] | None = None,
) -> tuple[ComparisonResult, np.ndarray, np.ndarray]:
    """Test one pair for every score; return the result, and the per-score -log10 p and error
    codes, shape (n_scores, n_examples), for the one-way table's combined_pairs rows.

    ``raw_blocks`` are the scores as collected (for the run-level test of the global shift),
    ``null_rng`` draws the relabellings of λ's null, ``tied`` says which architectures' runs of
    each score are heavily tied, ``run_covariates`` are each architecture's runs' covariates (then
    every test is a linear model with them)."""
    label = f"{a} vs {b}"
    any_score = next(iter(blocks.values()))
    n_runs = (any_score[a].shape[0], any_score[b].shape[0])
    table_blocks, summaries, warnings = [], [], []
    evidence, oriented_d, errors = [], [], []
    for name, matrix in matrices.items():
        tested_score = _test_score(
            (blocks[name][a], blocks[name][b]),
            (raw_blocks[name][a], raw_blocks[name][b]),
            (raw_constant[name][a], raw_constant[name][b]) if raw_constant is not None else None,
            settings,
            rng,
            name=name,
            archs=(a, b),
            tied=tied[name][a] or tied[name][b],
            covariates=(run_covariates[a], run_covariates[b]) if run_covariates is not None else None,
        )
        (values_a, values_b), result, prior = tested_score.values, tested_score.result, tested_score.prior
        permutation, covariates, statistic_p = tested_score.permutation, tested_score.covariates, tested_score.statistic_p
        adjusted, adjusted_log = tested_score.adjusted, tested_score.adjusted_log
        summary = _pair_summary(name, result, adjusted, permutation, settings, n_runs, statistic_p)
        if prior is not None:
            summary = replace(summary, variance_prior=prior)
        summary = replace(
            summary,
            lambda_null=_pair_lambda_null(values_a, values_b, settings, result.has_statistic, null_rng, covariates),
            run_shift=run_level_test(raw_blocks[name][a], raw_blocks[name][b], paired=settings.paired, tested=result.tested),
            higher_is_harder=matrix.higher_is_harder,
        )
        summaries.append(summary)
        warnings += _permutation_warning(summary, permutation, name, label, settings)
        if summary.n_partial:
            warnings.append(
                f"{name} ({label}): {summary.n_partial} examples have non-finite scores in some runs; "
                "they were tested on their finite runs (see N_A, N_B)"
            )
        table_blocks.append(pair_block(layout, name, matrix.sign, result, adjusted, adjusted_log, permutation, a, b))
        evidence.append(result.neg_log10_p)
        oriented_d.append(matrix.sign * result.cohen_d)
        errors.append(result.error)
    warnings = _global_difference_warnings(summaries, label, settings) + warnings
    combined_summaries = []
    if len(matrices) > 1:
        combined, adjusted, adjusted_log = _combine(np.vstack(evidence), settings)
        combined_summaries.append(_combined_summary(COMBINED, combined, adjusted, settings))
        table_blocks.append(
            pair_combined_block(layout, combined, adjusted, adjusted_log, np.vstack(oriented_d), np.vstack(errors), a, b, n_runs)
        )
    comparison = ComparisonResult(
        kind="pair",
        archs=(a, b),
        sumstats=assemble(table_blocks, pair_columns(settings.adjust, settings.permutation)),
        scores=tuple(summaries),
        warnings=tuple(warnings),
        combined=tuple(combined_summaries),
    )
    return comparison, np.vstack(evidence), np.vstack(errors)


def _raw_constant_codes(result: TwoSampleResult, raw_a: np.ndarray, raw_b: np.ndarray, both: np.ndarray) -> TwoSampleResult:
    """Codes of examples constant in both groups as collected (``both``): ``CONST`` at one level,
    ``SEPARATED`` (their exact permutation p) at two; the normalised scores of such an example
    differ only by tie-block sizes or run levels, which must not make a t statistic."""
    if not both.any():
        return result
    columns = np.flatnonzero(both)
    level_a, level_b = constant_level(raw_a[:, columns]), constant_level(raw_b[:, columns])
    equal, apart = np.zeros(len(both), dtype=bool), np.zeros(len(both), dtype=bool)
    equal[columns], apart[columns] = level_a == level_b, level_a != level_b
    return set_untested(set_separated(result, apart), equal, CONST)


def _permutation(
    result: TwoSampleResult,
    values_a: np.ndarray,
    values_b: np.ndarray,
    raw_a: np.ndarray,
    raw_b: np.ndarray,
    settings: AssociationSettings,
    rng: np.random.Generator | None,
) -> PermutationResult:
    """The permutation test of the tested examples. A separated example is permuted on its scores
    as collected (two levels), so that its EMP1 is the exact p of its separation, not that of
    normalised scores that differ only by run levels or tie blocks."""
    separated = result.error == SEPARATED
    if separated.any() and settings.normalize != "none":
        values_a = np.where(separated, raw_a, values_a)
        values_b = np.where(separated, raw_b, values_b)
    return permutation_test(values_a, values_b, settings.n_permutations, rng, paired=settings.paired, tested=result.tested)


def _with_permutation_p(result: TwoSampleResult, permutation: PermutationResult) -> TwoSampleResult:
    """``result`` with the permutation p as its p, all the way through (adjustments, counts,
    combined evidence, plots): P = EMP1, NEG_LOG10_P = -log10 EMP1. A tested example without an
    EMP1 (its statistic undefined through the permutation arithmetic) becomes ``NAN``."""
    emp1 = permutation.emp1
    with np.errstate(divide="ignore", invalid="ignore"):
        result = replace(result, p=emp1.copy(), neg_log10_p=0.0 - np.log10(emp1))
    return set_untested(result, result.tested & np.isnan(emp1), NAN)


def _adjust(p: np.ndarray, neg_log10_p: np.ndarray, settings: AssociationSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The p of one family adjusted by every method asked for, and the same in -log10 computed in
    log space (the exact adjusted p where float64 underflows), which the tables carry."""
    return (
        adjust_pvalues(p, settings.adjust, settings.alpha),
        adjust_neg_log10_p(np.where(np.isnan(p), np.nan, neg_log10_p), settings.adjust),
    )


def _trend_examples(raw: Sequence[np.ndarray], raw_constant: Sequence[np.ndarray] | None) -> np.ndarray:
    """Examples the level trend of ``normalize="relative"`` is fitted on: with finite scores in
    every group, and not constant in every group as collected (their normal scores move only with
    tie-block sizes)."""
    finite = np.all([np.isfinite(group).any(axis=0) for group in raw], axis=0)
    if raw_constant is None:
        return finite
    return finite & ~np.all(raw_constant, axis=0)


def _moderated(
    result: TwoSampleResult,
    name: str,
    label: str,
    settings: AssociationSettings,
    values: tuple[np.ndarray, np.ndarray],
    *,
    unscaled_variance: np.ndarray | None = None,
) -> tuple[TwoSampleResult, VariancePrior | None]:
    """limma's moderated t of one score's ordinary (Student, paired, or covariate-adjusted)
    result, and its prior; with the settings' ``trend`` (whose covariate is the mean of
    ``values`` over all runs) and ``robust``.

    A score none of whose examples could be tested (every one constant or short of runs, e.g.
    ``forgetting`` of runs that never forget) has no variance to fit a prior on: its examples keep
    their ERRCODE, as under the other tests, and the study goes on with the other scores.
    """
    if not result.has_statistic.any():  # nothing to fit a prior on (SEPARATED examples keep their p)
        return result, None
    try:
        moderated = _moderate(result, settings, values, unscaled_variance)
    except InputError as error:  # say which score of which pair had nothing to fit a prior on
        raise InputError(f"score {name!r} ({label}): {error.message}") from error
    return moderated.result, moderated.prior


def _moderate(
    ordinary: TwoSampleResult,
    settings: AssociationSettings,
    values: tuple[np.ndarray, np.ndarray],
    unscaled_variance: np.ndarray | None = None,
):
    """limma's moderated t of an ordinary result with the settings' trend (whose covariate is the
    mean of ``values`` over all runs) and robust options."""
    mean_score = mean_over_runs(*values) if settings.trend else None
    return moderate(ordinary, trend=settings.trend, robust=settings.robust, mean_score=mean_score, unscaled_variance=unscaled_variance)


def _moderated_p(settings: AssociationSettings):
    """The per-example p of the moderated t under each relabelling (a
    :data:`~gwas_models.analysis.genomic_control.GroupTest`): its prior is fitted per relabelling,
    as for the observed labelling (with the same trend and robust options), so λ's null is that of
    the test reported."""

    def p_of_groups(groups: Sequence[np.ndarray]) -> np.ndarray:
        group_a, group_b = groups
        rows = []
        for k in range(group_a.shape[1]):  # a loop over relabellings, each over every example
            ordinary = two_sample_test(group_a[:, k], group_b[:, k], settings.t_test)
            try:
                rows.append(_moderate(ordinary, settings, (group_a[:, k], group_b[:, k])).result.p)
            except InputError:  # nothing to fit a prior on under this relabelling: no λ from it
                rows.append(np.full(ordinary.n_examples, np.nan))
        return np.vstack(rows)

    return p_of_groups


def _pair_lambda_null(
    values_a: np.ndarray,
    values_b: np.ndarray,
    settings: AssociationSettings,
    tested: np.ndarray,
    rng: np.random.Generator,
    covariates: tuple[np.ndarray, np.ndarray] | None,
) -> LambdaNull:
    """λ of a pair against relabellings of its runs, by the test reported (moderated, with covariates).

    With covariates, each run keeps its own covariates while the group labels are dealt out
    again. :func:`~gwas_models.analysis.genomic_control.lambda_null` hands its
    :data:`~gwas_models.analysis.genomic_control.GroupTest` only the relabelled scores, so each
    run's index travels as one more column of scores (the examples that enter the null are chosen
    here, as ``lambda_null`` would choose them), and the test looks its covariates up by it.
    """
    # The moderated t and the covariate fits run once per relabelling, in a loop: a lower cap.
    looped = settings.moderated or covariates is not None
    cap = LAMBDA_NULL_MAX_RELABELINGS_MODERATED if looped else LAMBDA_NULL_MAX_RELABELINGS
    if covariates is None:
        p_of_groups = _moderated_p(settings) if settings.moderated else None
        return lambda_null(
            values_a, values_b, settings.t_test, rng=rng, tested=tested, p_of_groups=p_of_groups, max_relabelings=cap
        )
    columns = np.flatnonzero(tested)
    if len(columns) > LAMBDA_NULL_EXAMPLES:  # evenly thinned, as lambda_null thins
        columns = columns[np.linspace(0, len(columns) - 1, LAMBDA_NULL_EXAMPLES).round().astype(np.int64)]
    n_a, n_b = values_a.shape[0], values_b.shape[0]
    with_runs_a = np.column_stack([values_a[:, columns], np.arange(n_a, dtype=np.float64)])
    with_runs_b = np.column_stack([values_b[:, columns], np.arange(n_a, n_a + n_b, dtype=np.float64)])
    run_covariates = np.vstack(covariates)

    def p_of_groups(groups: Sequence[np.ndarray]) -> np.ndarray:
        group_a, group_b = groups
        rows = []
        for k in range(group_a.shape[1]):  # a loop over relabellings, each over every example
            runs_a, runs_b = group_a[:, k, -1].astype(np.int64), group_b[:, k, -1].astype(np.int64)
            scores_a, scores_b = group_a[:, k, :-1], group_b[:, k, :-1]
            try:
                fit = covariate_test(scores_a, scores_b, run_covariates[runs_a], run_covariates[runs_b], settings.t_test)
                if settings.moderated:
                    p = _moderate(fit.result, settings, (scores_a, scores_b), fit.unscaled_variance).result.p
                else:
                    p = fit.result.p
            except InputError:  # a relabelling whose design is singular, or nothing to fit a prior on
                p = np.full(scores_a.shape[1], np.nan)
            rows.append(p)
        return np.vstack(rows)

    return lambda_null(
        with_runs_a,
        with_runs_b,
        settings.t_test,
        rng=rng,
        max_examples=len(columns) + 1,
        p_of_groups=p_of_groups,
        max_relabelings=cap,
    )


def _combine(evidence: np.ndarray, settings: AssociationSettings) -> tuple[CombinedEvidence, pd.DataFrame, pd.DataFrame]:
    """Cauchy combination and mean -log10 p of tests, (n_tests, n_examples), and the combination
    p adjusted over the examples (as p and as -log10 p)."""
    combined = combine_evidence(evidence)
    return (combined, *_adjust(combined.p, combined.neg_log10_p, settings))


def _combined_summary(score: str, combined: CombinedEvidence, adjusted: pd.DataFrame, settings: AssociationSettings) -> ScoreSummary:
    """Examples combined and significant by their Cauchy combination p (no λ: not one test)."""
    tested = np.isfinite(combined.neg_log10_p)
    return ScoreSummary(
        score=score,
        n_examples=len(tested),
        n_tested=int(tested.sum()),
        errcodes={},
        n_partial=0,
        lambda_gc=float("nan"),
        n_significant={m: count_significant(adjusted[m].to_numpy(), settings.alpha) for m in settings.adjust},
    )


def _pair_summary(
    name: str,
    result: TwoSampleResult,
    adjusted: pd.DataFrame,
    permutation: PermutationResult | None,
    settings: AssociationSettings,
    n_runs: tuple[int, int],
    statistic_p: np.ndarray,
) -> ScoreSummary:
    """What one score of a pair found; ``statistic_p`` is the p of the t statistics (NaN where
    there is none, e.g. SEPARATED), which λGC is computed from."""
    tested = result.tested
    n_significant = {m: count_significant(adjusted[m].to_numpy(), settings.alpha) for m in settings.adjust}
    if permutation is not None:
        n_significant["EMP2"] = count_significant(permutation.emp2, settings.alpha)
    partial = tested & ((result.n_a < n_runs[0]) | (result.n_b < n_runs[1]))
    return ScoreSummary(
        score=name,
        n_examples=result.n_examples,
        n_tested=int(tested.sum()),
        errcodes=_error_counts(result.error),
        n_partial=int(partial.sum()),
        lambda_gc=genomic_control_lambda(statistic_p),
        n_significant=n_significant,
        smallest_p=permutation.smallest_p if permutation is not None else float("nan"),
        n_separated=int(np.count_nonzero(result.error == SEPARATED)),
    )


def _compare_all(
    blocks: dict[str, dict[str, np.ndarray]],
    matrices: Mapping[str, ScoreMatrix],
    archs: tuple[str, ...],
    settings: AssociationSettings,
    layout: TableLayout,
    pair_evidence: np.ndarray,
    pair_errors: np.ndarray,
    raw_constant: dict[str, dict[str, np.ndarray]] | None = None,
    *,
    raw_blocks: dict[str, dict[str, np.ndarray]],
    null_rng: np.random.Generator,
    tied: dict[str, dict[str, bool]],
) -> ComparisonResult:
    """Welch's ANOVA per score across all architectures, plus the combined rows (λ's null and the
    run-level test as for pairs: see :func:`_compare_pair`)."""
    n = layout.n_examples
    table_blocks, summaries, evidence, errors = [], [], [], []
    runs_per_arch = np.array([[next(iter(blocks.values()))[arch].shape[0]] for arch in archs])
    for name, matrix in matrices.items():
        groups = [blocks[name][arch] for arch in archs]
        constant = [raw_constant[name][arch] for arch in archs] if raw_constant is not None else None
        if settings.relative:
            raw_groups = [raw_blocks[name][arch] for arch in archs]
            any_tied = any(tied[name][arch] for arch in archs)
            groups = center_on_level_trend(groups, tested=_trend_examples(raw_groups, constant), tied=any_tied)
        result = welch_anova(groups, archs)
        if constant is not None:  # as for pairs: zero variance is judged on the raw scores
            every = np.all(constant, axis=0)
            if every.any():  # every group constant as collected: SEPARATED at several levels, else CONST
                levels = np.full((len(archs), n), np.nan)
                levels[:, every] = [constant_level(raw_blocks[name][arch][:, every]) for arch in archs]
                result = set_oneway_separated(result, every, levels)
            result = set_untested(result, np.any(constant, axis=0), CONST)
        adjusted, adjusted_log = _adjust(result.p, result.neg_log10_p, settings)
        summary = _oneway_summary(name, n, result, adjusted, settings, runs_per_arch)
        summaries.append(
            replace(
                summary,
                lambda_null=lambda_null_oneway(groups, rng=null_rng, tested=result.has_statistic),
                run_shift=run_level_anova([raw_blocks[name][arch] for arch in archs], tested=result.tested),
                higher_is_harder=matrix.higher_is_harder,
            )
        )
        table_blocks.append(oneway_block(layout, name, matrix.sign, result, adjusted, adjusted_log, archs))
        evidence.append(result.neg_log10_p)
        errors.append(result.error)
    n_runs = int(runs_per_arch.sum())
    combined_summaries = []
    combinations_of = ((COMBINED, np.vstack(evidence), np.vstack(errors)),) if len(matrices) > 1 else ()
    # combined_pairs: ACAT over every pair x score p is as valid as over scores (any dependence).
    for score, tests, codes in combinations_of + ((COMBINED_PAIRS, pair_evidence, pair_errors),):
        combined, adjusted, adjusted_log = _combine(tests, settings)
        combined_summaries.append(_combined_summary(score, combined, adjusted, settings))
        table_blocks.append(oneway_combined_block(layout, score, combined, adjusted, adjusted_log, codes, n_runs, archs))
    return ComparisonResult(
        kind="oneway",
        archs=archs,
        sumstats=assemble(table_blocks, oneway_columns(settings.adjust)),
        scores=tuple(summaries),
        warnings=tuple(_global_difference_warnings(summaries, f"one-way across {len(archs)} architectures", settings)),
        combined=tuple(combined_summaries),
    )


def _oneway_summary(
    name: str,
    n_examples: int,
    result: OnewayResult,
    adjusted: pd.DataFrame,
    settings: AssociationSettings,
    runs_per_arch: np.ndarray,
) -> ScoreSummary:
    partial = result.tested & (result.n < runs_per_arch).any(axis=0)
    return ScoreSummary(
        score=name,
        n_examples=n_examples,
        n_tested=int(result.tested.sum()),
        errcodes=_error_counts(result.error),
        n_partial=int(partial.sum()),
        lambda_gc=genomic_control_lambda(np.where(result.has_statistic, result.p, np.nan)),
        n_significant={m: count_significant(adjusted[m].to_numpy(), settings.alpha) for m in settings.adjust},
        n_separated=int(np.count_nonzero(result.error == SEPARATED)),
    )


# --------------------------------------------------------------------------------------------
# Counts and warnings
# --------------------------------------------------------------------------------------------


def _error_counts(error: np.ndarray) -> dict[str, int]:
    """Count of each code of the untested examples (SEPARATED examples were tested)."""
    counts = np.bincount(error, minlength=len(ERRCODES))
    return {ERRCODES[code]: int(counts[code]) for code in range(1, len(ERRCODES)) if counts[code] and code != SEPARATED}


def _global_difference_warnings(summaries: Sequence[ScoreSummary], label: str, settings: AssociationSettings) -> list[str]:
    """Warnings of a global difference between the architectures, only where a test says so.

    λGC alone says nothing here (with replicate runs it swings widely between studies without
    any difference); a warning needs λ beyond its relabelling null
    (:data:`~gwas_models.analysis.genomic_control.LAMBDA_NULL_ALPHA`, the whole Monte Carlo interval
    of the relabelling p at most it: no warning when undecided or when the runs allow no verdict),
    or the run-level test of
    the raw scores significant at ``alpha`` while the per-example tests see the shift (no
    normalisation). Each score is judged at these levels on its own.
    """
    warnings = []
    beyond = [s for s in summaries if s.lambda_null is not None and s.lambda_null.beyond]
    if beyond:
        listed = "; ".join(
            f"{s.score} {s.lambda_null.lambda_gc:.2f} (95th percentile {s.lambda_null.upper:.2f}, "
            f"p {s.lambda_null.p:.3g}, {s.lambda_null.interval()})"
            for s in beyond
        )
        # Each score is judged at 5% on its own: with many scores say how many such findings chance gives.
        chance = (
            f" ({len(beyond)} of {len(summaries)} scores, each judged at {LAMBDA_NULL_ALPHA:g}: about "
            f"{LAMBDA_NULL_ALPHA * len(summaries):.1g} expected by chance when nothing differs)"
            if len(summaries) > 1
            else ""
        )
        meaning = (
            # Relative to each architecture's level a global shift is gone: what is left is that the
            # architectures order the examples differently, widely (the run-level test has the shift).
            "many examples change relative to their architecture, more than run-to-run noise explains: the "
            "architectures order the examples differently, not only one better overall"
            if settings.relative
            else "more examples differ than run-to-run noise explains, a real global difference between the "
            "architectures that every per-example p includes"
        )
        warnings.append(f"lambda_GC ({label}) is beyond its null under relabelling of the runs for {listed}{chance}: {meaning}")
    if settings.normalize == "none":
        shifted = [s for s in summaries if s.run_shift is not None and s.run_shift.significant(settings.alpha)]
        if shifted:
            listed = "; ".join(f"{s.score}: {s.run_shift.describe()}" for s in shifted)
            warnings.append(
                f"global shift ({label}): the runs' mean scores differ between the architectures at alpha "
                f"{settings.alpha:g} for {listed}; one architecture is better or worse overall, which moves "
                "every example's test; the default relative reference tests each example against its architecture's level"
            )
    return warnings


#: How the warnings name each adjustment (words, then the column).
_ADJUSTMENT_WORDS: dict[str, str] = {
    "bonferroni": "Bonferroni",
    "holm": "Holm",
    "sidak": "Sidak",
    "fdr_bh": "Benjamini-Hochberg",
    "fdr_by": "Benjamini-Yekutieli",
}


def floor_reach(smallest_p: float, n_tests: int, alpha: float, methods: Sequence[str]) -> dict[str, int]:
    """How many examples would need the smallest reachable p for each adjustment to reach ``alpha``.

    With every p at least ``smallest_p`` (a permutation test's floor), over ``n_tests`` tests:
    Bonferroni and Holm reach alpha only if ``smallest_p * n_tests <= alpha`` (Holm's smallest
    adjusted p is Bonferroni's), Šidák if ``1 - (1 - smallest_p)**n_tests <= alpha``: one example
    at the floor, or none can. Benjamini-Hochberg's smallest q with k examples at the floor is
    ``smallest_p * n_tests / k`` (Benjamini-Yekutieli: times sum 1/i): it needs
    ``k >= smallest_p * n_tests / alpha`` of them.

    Returns
    -------
    dict method -> int
        The smallest number of examples at the floor with which the method can pass ``alpha``
        (1: one strong example suffices); 0 where no number of examples suffices.
    """
    reach = {}
    for method in methods:
        if method in ("bonferroni", "holm"):
            needed = 1 if smallest_p * n_tests <= alpha else 0
        elif method == "sidak":
            needed = 1 if -np.expm1(n_tests * np.log1p(-smallest_p)) <= alpha else 0
        else:
            factor = float(np.sum(1.0 / np.arange(1, n_tests + 1))) if method == "fdr_by" else 1.0
            count = int(np.ceil(smallest_p * n_tests * factor / alpha * (1.0 - 1e-12)))
            needed = max(count, 1) if count <= n_tests else 0
        reach[method] = needed
    return reach


def _permutation_warning(
    summary: ScoreSummary, permutation: PermutationResult | None, name: str, label: str, settings: AssociationSettings
) -> list[str]:
    """One line per score when the permutation p's floor keeps adjustments from reaching alpha:
    which ones no example can pass, and how many examples at the floor the others need."""
    if permutation is None or summary.n_tested == 0:
        return []
    floor, n_tests, alpha = permutation.smallest_p, summary.n_tested, settings.alpha
    reach = floor_reach(floor, n_tests, alpha, settings.adjust)
    never = [f"{_ADJUSTMENT_WORDS[m]} ({ADJUST_COLUMNS[m]})" for m, needed in reach.items() if needed == 0]
    if floor > alpha:
        never.append("the max-T family-wise p (EMP2)")
    several = [
        f"{_ADJUSTMENT_WORDS[m]} ({ADJUST_COLUMNS[m]}) only if at least {needed:,} of them have that smallest p"
        for m, needed in reach.items()
        if needed > 1
    ]
    if not never and not several:
        return []
    how = "every relabelling enumerated" if permutation.exact else f"{permutation.n_permutations:,} random relabellings"
    parts = []
    if never:
        listed = ", ".join(never[:-1]) + (" or " if len(never) > 1 else "") + never[-1]
        parts.append(f"no example can reach alpha {alpha:g} by {listed}")
    if several:
        parts.append(("and " if never else f"alpha {alpha:g} is reached by ") + "; ".join(several))
    return [
        f"{name} ({label}): the smallest permutation p these runs allow is {floor:.3g} ({how}); over {n_tests:,} "
        f"tested examples {', '.join(parts)}; more runs (or, when relabellings are drawn at random, more "
        "permutations) lower that floor"
    ]
