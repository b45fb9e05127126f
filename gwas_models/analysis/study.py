"""An association study: score matrices in, summary statistics out (the work behind ``gwasm associate``).

For every pair of architectures (A, B) and every score, each training example is tested for a
difference between the runs of A and the runs of B (:func:`~gwas_models.analysis.association.two_sample_test`),
p-values are adjusted over the examples of that score (:mod:`~gwas_models.analysis.multitest`),
genomic control λGC is computed, and, with ``test="permutation"``, empirical p-values are added
(:mod:`~gwas_models.analysis.permutation`). With three or more architectures, every pair is
compared and Welch's one-way ANOVA across all of them is run per example as well.

Summary statistics tables
-------------------------
Pair table (one per pair, written as ``<prefix>.<A>_vs_<B>.sumstats.tsv``), one row per example and
score, columns :data:`PAIR_COLUMNS` (+ ``EMP1``, ``EMP2`` for permutation tests)::

    #CHROM POS ID LABEL SCORE A B N_A N_B MEAN_A MEAN_B SD_A SD_B BETA SE COHEN_D T_STAT DF P
    NEG_LOG10_P HARDER_IN <BONF HOLM SIDAK FDR_BH FDR_BY> [EMP1 EMP2] ERRCODE

``HARDER_IN`` names the architecture under which the example is harder, from the sign of BETA and
the score's direction ('.' when BETA is 0 or missing). ``SCORE=combined`` rows (written when more
than one score is tested) hold the combined evidence of the example: ``NEG_LOG10_P`` is the mean of
-log10 p over the scores it was tested on (= -log10 of the geometric mean of p, the paper's
summary) and ``P`` is that geometric mean; it is a ranking, not a p-value, so the adjustment
columns are missing. Their ``COHEN_D`` is the mean over scores of the difficulty-oriented d
(positive: harder in B), whose sign gives ``HARDER_IN``; ``N_A``/``N_B`` are the runs of A and B.

One-way table (three or more architectures, written as ``<prefix>.<A>_vs_<B>_vs_<C>....sumstats.tsv``),
columns :data:`ONEWAY_COLUMNS`::

    #CHROM POS ID LABEL SCORE N F_STAT DF1 DF2 P NEG_LOG10_P HARDEST_IN EASIEST_IN <adjusted> ERRCODE

with Welch's ANOVA per score, ``SCORE=combined`` rows (mean -log10 p of the ANOVA over scores) and
``SCORE=combined_pairs`` rows: the mean of -log10 p over every pair *and* score, the paper's
ranking of the examples most sensitive to the architecture (its Figure 1).

Missing values are NaN in numeric columns and '.' in text columns. ``ERRCODE`` is '.' when the test
was done, else CONST, FEW_RUNS or NAN (see :mod:`gwas_models.analysis.association`); a combined row
has '.' when at least one score was tested, otherwise the code its scores share, or MIXED.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from gwas_models.analysis.association import (
    CONST,
    ERRCODES,
    NORMALIZATIONS,
    OK,
    OnewayResult,
    TwoSampleResult,
    constant_within_runs,
    mean_neg_log10_p,
    normalize_within_runs,
    set_untested,
    two_sample_test,
    welch_anova,
)
from gwas_models.analysis.multitest import (
    ADJUST_COLUMNS,
    ADJUST_METHODS,
    LAMBDA_WARN_ABOVE,
    adjust_pvalues,
    check_alpha,
    count_significant,
    genomic_control_lambda,
    parse_adjust_list,
)
from gwas_models.analysis.permutation import PermutationResult, permutation_test
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix, format_seeds, within_class_positions

TESTS: tuple[str, ...] = ("welch", "student", "permutation")
COMBINED = "combined"
COMBINED_PAIRS = "combined_pairs"
MIXED = "MIXED"
#: Every ERRCODE value a table can hold.
ALL_ERRCODES: tuple[str, ...] = ERRCODES + (MIXED,)

KEY_COLUMNS: tuple[str, ...] = ("#CHROM", "POS", "ID", "LABEL", "SCORE")
PAIR_COLUMNS: tuple[str, ...] = KEY_COLUMNS + (
    "A", "B", "N_A", "N_B", "MEAN_A", "MEAN_B", "SD_A", "SD_B", "BETA", "SE", "COHEN_D",
    "T_STAT", "DF", "P", "NEG_LOG10_P", "HARDER_IN",
)  # fmt: skip
ONEWAY_COLUMNS: tuple[str, ...] = KEY_COLUMNS + (
    "N", "F_STAT", "DF1", "DF2", "P", "NEG_LOG10_P", "HARDEST_IN", "EASIEST_IN",
)  # fmt: skip
PERMUTATION_COLUMNS: tuple[str, ...] = ("EMP1", "EMP2")


# --------------------------------------------------------------------------------------------
# Settings and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssociationSettings:
    """How to test; validated on construction (:class:`InputError` for a bad value).

    Attributes
    ----------
    test : {"welch", "student", "permutation"}
        Welch's t (default), Student's t, or Welch's t with label permutations (adds EMP1, EMP2).
    adjust : tuple of str (or a comma-separated string)
        statsmodels ``multipletests`` methods (default: bonferroni, holm, sidak, fdr_bh, fdr_by).
    alpha : float
        Significance level for the counts of significant examples (default 0.01, the paper's
        Bonferroni threshold).
    normalize : {"none", "rank", "zscore"}
        Transformation of each run's scores across examples before testing.
    paired : bool
        Pair the runs of A and B that share a seed: paired t-test (permutations flip signs).
    n_permutations : int
        Relabellings for ``test="permutation"``.
    """

    test: str = "welch"
    adjust: tuple[str, ...] = ADJUST_METHODS
    alpha: float = 0.01
    normalize: str = "none"
    paired: bool = False
    n_permutations: int = 1000

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise InputError(f"unknown test {self.test!r}; choose one of {', '.join(TESTS)}")
        if self.normalize not in NORMALIZATIONS:
            raise InputError(f"unknown normalization {self.normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")
        object.__setattr__(self, "adjust", parse_adjust_list(self.adjust))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        if int(self.n_permutations) != self.n_permutations or self.n_permutations < 1:
            raise InputError(f"the number of permutations must be at least 1, got {self.n_permutations}")
        object.__setattr__(self, "n_permutations", int(self.n_permutations))

    @property
    def t_test(self) -> str:
        """The t-test behind P: ``paired`` when paired, else ``student`` or ``welch``."""
        if self.paired:
            return "paired"
        return "student" if self.test == "student" else "welch"

    @property
    def permutation(self) -> bool:
        return self.test == "permutation"

    def describe(self) -> str:
        parts = [f"test: {self.t_test} t-test, two-sided"]
        if self.permutation:
            parts.append(f"{'sign-flip' if self.paired else 'label'} permutations: {self.n_permutations} (EMP1, max-T EMP2)")
        parts += [f"normalize: {self.normalize}", f"alpha: {self.alpha:g}", f"adjust: {','.join(self.adjust)}"]
        return "; ".join(parts)


@dataclass(frozen=True)
class ScoreSummary:
    """What one comparison found for one score.

    Attributes
    ----------
    score : str
    n_examples, n_tested : int
        Examples, and those tested (ERRCODE '.').
    errcodes : dict
        Count of each error code among the untested examples.
    n_partial : int
        Tested examples that had non-finite scores in some runs (tested on the others).
    lambda_gc : float
    n_significant : dict
        Adjusted p at most alpha, by method; plus ``"EMP2"`` for permutation tests.
    smallest_p : float
        Smallest reachable permutation p (NaN without permutations).
    """

    score: str
    n_examples: int
    n_tested: int
    errcodes: dict[str, int]
    n_partial: int
    lambda_gc: float
    n_significant: dict[str, int]
    smallest_p: float = float("nan")


@dataclass(frozen=True)
class ComparisonResult:
    """One comparison: a pair of architectures (``kind="pair"``) or all of them (``"oneway"``).

    Attributes
    ----------
    kind : {"pair", "oneway"}
    archs : tuple of str
        (A, B) for a pair; every architecture for the one-way test.
    sumstats : DataFrame
        The summary statistics table (see the module docstring).
    scores : tuple of ScoreSummary
    warnings : tuple of str
    """

    kind: str
    archs: tuple[str, ...]
    sumstats: pd.DataFrame = field(repr=False)
    scores: tuple[ScoreSummary, ...]
    warnings: tuple[str, ...]

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
        """One row per score: examples tested, λGC and significant examples per method."""
        rows = []
        for item in self.scores:
            row = {"score": item.score, "tested": item.n_tested, "lambda_gc": item.lambda_gc}
            row.update({f"n_{method}": count for method, count in item.n_significant.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def top(self, n: int = 10, score: str | None = None) -> pd.DataFrame:
        """The ``n`` rows with the largest NEG_LOG10_P for one score (default: the combined rows
        when present, else the first score)."""
        table = self.sumstats
        names = list(dict.fromkeys(table["SCORE"].astype(str)))
        if score is None:
            score = COMBINED_PAIRS if COMBINED_PAIRS in names else COMBINED if COMBINED in names else names[0]
        rows = table[table["SCORE"].astype(str) == score]
        return rows.nlargest(n, "NEG_LOG10_P")


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


def _as_matrices(matrices: Mapping[str, ScoreMatrix] | Sequence[ScoreMatrix] | ScoreMatrix) -> dict[str, ScoreMatrix]:
    if isinstance(matrices, ScoreMatrix):
        matrices = [matrices]
    if not isinstance(matrices, Mapping):
        matrices = {m.score: m for m in matrices}
    matrices = dict(matrices)
    if not matrices:
        raise InputError("no score to test")
    first = next(iter(matrices.values()))
    for matrix in matrices.values():
        same_runs = np.array_equal(matrix.groups, first.groups) and np.array_equal(matrix.seeds, first.seeds)
        if not same_runs or not np.array_equal(matrix.example_id, first.example_id):
            raise InputError(f"score {matrix.score!r} covers other runs or examples than {first.score!r}")
    return matrices


def _resolve_archs(first: ScoreMatrix, archs: Sequence[str] | None) -> tuple[str, ...]:
    present = first.group_names()
    archs = tuple(present if archs is None else archs)
    duplicates = sorted({a for a in archs if archs.count(a) > 1})
    if duplicates:
        raise InputError(f"architecture {duplicates[0]!r} is named twice")
    missing = [a for a in archs if a not in present]
    if missing:
        raise InputError(f"no runs of {', '.join(map(repr, missing))}; architectures present: {', '.join(present) or 'none'}")
    if len(archs) < 2:
        raise InputError(f"an association needs at least two architectures, got {len(archs)} ({', '.join(archs) or 'none'})")
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


def associate(
    matrices: Mapping[str, ScoreMatrix] | Sequence[ScoreMatrix] | ScoreMatrix,
    archs: Sequence[str] | None = None,
    *,
    test: str = "welch",
    adjust: Sequence[str] = ADJUST_METHODS,
    alpha: float = 0.01,
    normalize: str = "none",
    paired: bool = False,
    n_permutations: int = 1000,
    rng: np.random.Generator | None = None,
    on_comparison: Callable[[AssociationStudy, ComparisonResult], None] | None = None,
    keep_tables: bool = True,
) -> AssociationStudy:
    """Test every example and score for a difference between architectures.

    Parameters
    ----------
    matrices : mapping score -> ScoreMatrix, sequence of ScoreMatrix, or one ScoreMatrix
        Scores of the same runs over the same examples (as :func:`load_score_matrices` returns).
    archs : sequence of str, optional
        Architectures to compare, in order (default: all present). Two give one pair; three or
        more give every pair plus Welch's one-way ANOVA.
    test, adjust, alpha, normalize, paired, n_permutations
        See :class:`AssociationSettings`.
    rng : numpy.random.Generator, optional
        Source of the permutations (only used with ``test="permutation"``).
    on_comparison : callable, optional
        Called as ``on_comparison(design, comparison)`` as soon as each comparison is done (e.g.
        to write it), where ``design`` is the study without results (settings, runs, scores).
    keep_tables : bool
        Keep every comparison's sumstats table in the result (default). With False, each table
        is dropped (left empty) once ``on_comparison`` has seen it: all pairs of many
        architectures over a large dataset do not fit in memory together.

    Returns
    -------
    AssociationStudy

    Raises
    ------
    InputError
        Bad settings, unknown or repeated architectures, fewer than two architectures, an
        architecture with fewer than two runs, or unmatched seeds for a paired test.
    """
    settings = AssociationSettings(
        test=test, adjust=parse_adjust_list(adjust), alpha=alpha, normalize=normalize, paired=paired, n_permutations=n_permutations
    )
    matrices = _as_matrices(matrices)
    first = next(iter(matrices.values()))
    archs = _resolve_archs(first, archs)
    pairs = list(combinations(archs, 2))
    if settings.paired:
        for a, b in pairs:
            _check_paired_seeds(first, a, b)
    if settings.permutation and rng is None:
        rng = np.random.default_rng()

    rows = {arch: _seed_order(first, arch) for arch in archs}
    # Normalising within runs only involves each run's own scores, so it can be done per block.
    blocks = {
        name: {arch: normalize_within_runs(_take_rows(m.values, rows[arch]), settings.normalize) for arch in archs}
        for name, m in matrices.items()
    }
    # Zero variance is judged on the scores as collected: ranking turns an example that is constant
    # within each group (e.g. forgetting 1,1,1,1 vs 0,0,0,0) into ranks that differ by tie-block
    # sizes, a tiny but non-zero variance that a t-test would call overwhelmingly significant.
    raw_constant = (
        {name: {arch: constant_within_runs(_take_rows(m.values, rows[arch])) for arch in archs} for name, m in matrices.items()}
        if settings.normalize != "none"
        else None
    )
    layout = _Layout.of(first, list(matrices))
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
        result, evidence, errors = _compare_pair(blocks, matrices, a, b, settings, rng, layout, raw_constant)
        pair_results.append(finished(result))
        pair_evidence.append(evidence)
        pair_errors.append(errors)
    oneway = None
    if len(archs) >= 3:
        oneway = finished(
            _compare_all(
                blocks, matrices, archs, settings, layout, np.vstack(pair_evidence), np.vstack(pair_errors), raw_constant
            )
        )
    return replace(design, pairs=tuple(pair_results), oneway=oneway)


@dataclass(frozen=True)
class _Layout:
    """What every table block shares: the example key columns and the categories of text columns."""

    chrom_codes: np.ndarray
    chrom_names: tuple[str, ...]
    positions: np.ndarray
    example_id: np.ndarray
    labels: np.ndarray
    score_names: tuple[str, ...]

    @classmethod
    def of(cls, first: ScoreMatrix, scores: Sequence[str]) -> "_Layout":
        names = list(dict.fromkeys(first.class_names))
        lookup = {name: i for i, name in enumerate(names)}
        # Class names are normally distinct, so the code is the label; duplicates share a code.
        codes = np.asarray([lookup[name] for name in first.class_names], dtype=np.int64)[first.labels]
        return cls(
            chrom_codes=codes,
            chrom_names=tuple(names),
            positions=_positions(first.labels, first.example_id),
            example_id=first.example_id,
            labels=first.labels,
            score_names=tuple(scores) + (COMBINED, COMBINED_PAIRS),
        )

    @property
    def n_examples(self) -> int:
        return len(self.example_id)

    def key_columns(self, score: str) -> dict[str, object]:
        n = self.n_examples
        return {
            "#CHROM": _CodedColumn(self.chrom_codes, self.chrom_names),
            "POS": self.positions,
            "ID": self.example_id,
            "LABEL": self.labels,
            "SCORE": _CodedColumn(np.full(n, self.score_names.index(score)), self.score_names),
        }


def _positions(labels: np.ndarray, example_id: np.ndarray) -> np.ndarray:
    """POS: 1-based order of each example inside its class, by example id.

    Same as :func:`within_class_positions`; when the ids are already increasing (the store's
    order) a stable integer sort of the labels gives the order without a lexsort.
    """
    if len(example_id) < 2 or not np.all(example_id[1:] > example_id[:-1]):
        return within_class_positions(labels, example_id)
    small = labels.astype(np.int16) if len(labels) and 0 <= labels.min() and labels.max() < 2**15 else labels
    order = np.argsort(small, kind="stable")  # a radix sort for 16-bit integers
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    positions = np.empty(len(labels), dtype=np.int64)
    positions[order] = np.arange(len(labels)) - starts + 1
    return positions


class _CodedColumn:
    """A categorical column under construction: integer codes into fixed categories."""

    def __init__(self, codes: np.ndarray, categories: Sequence[str]):
        self.codes = np.asarray(codes, dtype=np.int32)
        self.categories = tuple(categories)


def _assemble(blocks: list[dict[str, object]], columns: Sequence[str]) -> pd.DataFrame:
    """Stack column blocks into one DataFrame; text columns become categoricals (fast, compact)."""
    data = {}
    for name in columns:
        parts = [block[name] for block in blocks]
        if isinstance(parts[0], _CodedColumn):
            codes = parts[0].codes if len(parts) == 1 else np.concatenate([part.codes for part in parts])
            data[name] = pd.Categorical.from_codes(codes, categories=list(parts[0].categories), validate=False)
        else:
            data[name] = np.asarray(parts[0]) if len(parts) == 1 else np.concatenate([np.asarray(part) for part in parts])
    return pd.DataFrame(data, copy=False)


def _direction_codes(oriented: np.ndarray) -> np.ndarray:
    """0 ('.') where undefined or zero, 1 (A) where easier in B, 2 (B) where harder in B."""
    codes = np.zeros(len(oriented), dtype=np.int32)
    codes[oriented < 0] = 1
    codes[oriented > 0] = 2
    return codes


def _combined_errcodes(errors: np.ndarray, count: np.ndarray) -> np.ndarray:
    """ERRCODE of combined rows: '.' if any score was tested, else the shared code, else MIXED."""
    errors = np.atleast_2d(errors)
    shared = (errors == errors[0]).all(axis=0)
    codes = np.where(shared, errors[0], ALL_ERRCODES.index(MIXED))
    return np.where(count > 0, OK, codes).astype(np.int32)


def _error_counts(error: np.ndarray) -> dict[str, int]:
    counts = np.bincount(error, minlength=len(ERRCODES))
    return {ERRCODES[code]: int(counts[code]) for code in range(1, len(ERRCODES)) if counts[code]}


def _lambda_warning(summaries: Sequence[ScoreSummary], label: str) -> list[str]:
    """One warning for all the scores of a comparison whose λGC is inflated."""
    inflated = [f"{s.score} {s.lambda_gc:.2f}" for s in summaries if s.lambda_gc > LAMBDA_WARN_ABOVE]
    if not inflated:
        return []
    return [
        f"lambda_GC > {LAMBDA_WARN_ABOVE} ({label}) for {', '.join(inflated)}: a global shift between the "
        "architectures (one harder or easier overall, the analogue of population stratification) inflates "
        "every test; consider --normalize rank"
    ]


def _compare_pair(
    blocks: dict[str, dict[str, np.ndarray]],
    matrices: Mapping[str, ScoreMatrix],
    a: str,
    b: str,
    settings: AssociationSettings,
    rng: np.random.Generator | None,
    layout: _Layout,
    raw_constant: dict[str, dict[str, np.ndarray]] | None = None,
) -> tuple[ComparisonResult, np.ndarray, np.ndarray]:
    """Test one pair for every score; return the result, and the per-score -log10 p and error
    codes, shape (n_scores, n_examples), for the one-way table's combined_pairs rows."""
    label = f"{a} vs {b}"
    table_blocks, summaries, warnings = [], [], []
    evidence, oriented_d, errors = [], [], []
    for name, matrix in matrices.items():
        values_a, values_b = blocks[name][a], blocks[name][b]
        result = two_sample_test(values_a, values_b, settings.t_test, names=(a, b))
        if raw_constant is not None:
            result = set_untested(result, raw_constant[name][a] & raw_constant[name][b], CONST)
        permutation = None
        if settings.permutation:
            permutation = permutation_test(
                values_a, values_b, settings.n_permutations, rng, paired=settings.paired, tested=result.tested
            )
        adjusted = adjust_pvalues(result.p, settings.adjust, settings.alpha)
        summary = _pair_summary(name, result, adjusted, permutation, settings, values_a.shape[0], values_b.shape[0])
        summaries.append(summary)
        warnings += _permutation_warning(summary, name, label, settings.alpha)
        if summary.n_partial:
            warnings.append(
                f"{name} ({label}): {summary.n_partial} examples have non-finite scores in some runs; "
                "they were tested on their finite runs (see N_A, N_B)"
            )
        table_blocks.append(_pair_block(layout, name, matrix.sign, result, adjusted, permutation, a, b))
        evidence.append(result.neg_log10_p)
        oriented_d.append(matrix.sign * result.cohen_d)
        errors.append(result.error)
    warnings = _lambda_warning(summaries, label) + warnings
    if len(matrices) > 1:
        table_blocks.append(
            _pair_combined_block(layout, np.vstack(evidence), np.vstack(oriented_d), np.vstack(errors), a, b, blocks, settings)
        )
    columns = PAIR_COLUMNS + tuple(ADJUST_COLUMNS[m] for m in settings.adjust)
    columns += PERMUTATION_COLUMNS if settings.permutation else ()
    columns += ("ERRCODE",)
    comparison = ComparisonResult(
        kind="pair",
        archs=(a, b),
        sumstats=_assemble(table_blocks, columns),
        scores=tuple(summaries),
        warnings=tuple(warnings),
    )
    return comparison, np.vstack(evidence), np.vstack(errors)


def _pair_summary(
    name: str,
    result: TwoSampleResult,
    adjusted: pd.DataFrame,
    permutation: PermutationResult | None,
    settings: AssociationSettings,
    n_runs_a: int,
    n_runs_b: int,
) -> ScoreSummary:
    tested = result.tested
    n_significant = {m: count_significant(adjusted[m].to_numpy(), settings.alpha) for m in settings.adjust}
    if permutation is not None:
        n_significant["EMP2"] = count_significant(permutation.emp2, settings.alpha)
    partial = tested & ((result.n_a < n_runs_a) | (result.n_b < n_runs_b))
    return ScoreSummary(
        score=name,
        n_examples=result.n_examples,
        n_tested=int(tested.sum()),
        errcodes=_error_counts(result.error),
        n_partial=int(partial.sum()),
        lambda_gc=genomic_control_lambda(result.p),
        n_significant=n_significant,
        smallest_p=permutation.smallest_p if permutation is not None else float("nan"),
    )


def _permutation_warning(summary: ScoreSummary, name: str, label: str, alpha: float) -> list[str]:
    if not np.isfinite(summary.smallest_p) or summary.n_tested == 0:
        return []
    threshold = alpha / summary.n_tested
    if summary.smallest_p <= threshold:
        return []
    return [
        f"{name} ({label}): the smallest permutation p these runs and permutations allow is "
        f"{summary.smallest_p:.3g}, above the Bonferroni threshold alpha/n_tests = {threshold:.3g}: "
        "no EMP1 can pass it; add runs (or permutations) for a permutation test to find anything"
    ]


def _pair_block(
    layout: _Layout,
    name: str,
    sign: int,
    result: TwoSampleResult,
    adjusted: pd.DataFrame,
    permutation: PermutationResult | None,
    a: str,
    b: str,
) -> dict[str, object]:
    n = layout.n_examples
    block = layout.key_columns(name)
    block.update(
        {
            "A": _CodedColumn(np.zeros(n), (a,)),
            "B": _CodedColumn(np.zeros(n), (b,)),
            "N_A": result.n_a,
            "N_B": result.n_b,
            "MEAN_A": result.mean_a,
            "MEAN_B": result.mean_b,
            "SD_A": result.sd_a,
            "SD_B": result.sd_b,
            "BETA": result.beta,
            "SE": result.se,
            "COHEN_D": result.cohen_d,
            "T_STAT": result.t_stat,
            "DF": result.df,
            "P": result.p,
            "NEG_LOG10_P": result.neg_log10_p,
            "HARDER_IN": _CodedColumn(_direction_codes(sign * result.beta), (".", a, b)),
            "ERRCODE": _CodedColumn(result.error, ALL_ERRCODES),
        }
    )
    for method, column in ADJUST_COLUMNS.items():
        if method in adjusted:
            block[column] = adjusted[method].to_numpy()
    if permutation is not None:
        block["EMP1"], block["EMP2"] = permutation.emp1, permutation.emp2
    return block


def _pair_combined_block(
    layout: _Layout,
    evidence: np.ndarray,
    oriented_d: np.ndarray,
    errors: np.ndarray,
    a: str,
    b: str,
    blocks: dict[str, dict[str, np.ndarray]],
    settings: AssociationSettings,
) -> dict[str, object]:
    n = layout.n_examples
    mean_evidence, count = mean_neg_log10_p(evidence)
    mean_d, _ = _nanmean_rows(oriented_d)
    any_score = next(iter(blocks.values()))
    missing = np.full(n, np.nan)
    block = layout.key_columns(COMBINED)
    block.update(
        {
            "A": _CodedColumn(np.zeros(n), (a,)),
            "B": _CodedColumn(np.zeros(n), (b,)),
            "N_A": np.full(n, any_score[a].shape[0], dtype=np.int64),
            "N_B": np.full(n, any_score[b].shape[0], dtype=np.int64),
            "COHEN_D": mean_d,
            "P": 10.0 ** (-mean_evidence),
            "NEG_LOG10_P": mean_evidence,
            "HARDER_IN": _CodedColumn(_direction_codes(mean_d), (".", a, b)),
            "ERRCODE": _CodedColumn(_combined_errcodes(errors, count), ALL_ERRCODES),
            "EMP1": missing,
            "EMP2": missing,
        }
    )
    for column in ("MEAN_A", "MEAN_B", "SD_A", "SD_B", "BETA", "SE", "T_STAT", "DF"):
        block[column] = missing
    for method in settings.adjust:
        block[ADJUST_COLUMNS[method]] = missing
    return block


def _nanmean_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, values, 0.0).sum(axis=0) / count
    return np.where(count > 0, mean, np.nan), count


def _compare_all(
    blocks: dict[str, dict[str, np.ndarray]],
    matrices: Mapping[str, ScoreMatrix],
    archs: tuple[str, ...],
    settings: AssociationSettings,
    layout: _Layout,
    pair_evidence: np.ndarray,
    pair_errors: np.ndarray,
    raw_constant: dict[str, dict[str, np.ndarray]] | None = None,
) -> ComparisonResult:
    """Welch's ANOVA per score across all architectures, plus the combined rows."""
    n = layout.n_examples
    table_blocks, summaries, warnings, evidence, errors = [], [], [], [], []
    runs_per_arch = np.array([[next(iter(blocks.values()))[arch].shape[0]] for arch in archs])
    for name, matrix in matrices.items():
        result = welch_anova([blocks[name][arch] for arch in archs], archs)
        if raw_constant is not None:  # as for pairs: zero variance is judged on the raw scores
            result = set_untested(result, np.any([raw_constant[name][arch] for arch in archs], axis=0), CONST)
        adjusted = adjust_pvalues(result.p, settings.adjust, settings.alpha)
        partial = result.tested & (result.n < runs_per_arch).any(axis=0)
        summary = ScoreSummary(
            score=name,
            n_examples=n,
            n_tested=int(result.tested.sum()),
            errcodes=_error_counts(result.error),
            n_partial=int(partial.sum()),
            lambda_gc=genomic_control_lambda(result.p),
            n_significant={m: count_significant(adjusted[m].to_numpy(), settings.alpha) for m in settings.adjust},
        )
        summaries.append(summary)
        table_blocks.append(_oneway_block(layout, name, matrix.sign, result, adjusted, archs))
        evidence.append(result.neg_log10_p)
        errors.append(result.error)
    n_runs = int(runs_per_arch.sum())
    if len(matrices) > 1:
        table_blocks.append(_oneway_combined_block(layout, COMBINED, np.vstack(evidence), np.vstack(errors), n_runs, settings, archs))
    table_blocks.append(_oneway_combined_block(layout, COMBINED_PAIRS, pair_evidence, pair_errors, n_runs, settings, archs))
    columns = ONEWAY_COLUMNS + tuple(ADJUST_COLUMNS[m] for m in settings.adjust) + ("ERRCODE",)
    return ComparisonResult(
        kind="oneway",
        archs=archs,
        sumstats=_assemble(table_blocks, columns),
        scores=tuple(summaries),
        warnings=tuple(_lambda_warning(summaries, f"one-way across {len(archs)} architectures") + warnings),
    )


def _oneway_block(
    layout: _Layout,
    name: str,
    sign: int,
    result: OnewayResult,
    adjusted: pd.DataFrame,
    archs: tuple[str, ...],
) -> dict[str, object]:
    oriented = sign * result.mean
    defined = np.isfinite(oriented).any(axis=0)
    hardest = np.where(defined, np.argmax(np.where(np.isfinite(oriented), oriented, -np.inf), axis=0) + 1, 0)
    easiest = np.where(defined, np.argmin(np.where(np.isfinite(oriented), oriented, np.inf), axis=0) + 1, 0)
    block = layout.key_columns(name)
    block.update(
        {
            "N": result.n.sum(axis=0),
            "F_STAT": result.f_stat,
            "DF1": result.df_num,
            "DF2": result.df_denom,
            "P": result.p,
            "NEG_LOG10_P": result.neg_log10_p,
            "HARDEST_IN": _CodedColumn(hardest, (".",) + archs),
            "EASIEST_IN": _CodedColumn(easiest, (".",) + archs),
            "ERRCODE": _CodedColumn(result.error, ALL_ERRCODES),
        }
    )
    for method in adjusted:
        block[ADJUST_COLUMNS[method]] = adjusted[method].to_numpy()
    return block


def _oneway_combined_block(
    layout: _Layout,
    score: str,
    evidence: np.ndarray,
    errors: np.ndarray,
    n_runs: int,
    settings: AssociationSettings,
    archs: tuple[str, ...],
) -> dict[str, object]:
    n = layout.n_examples
    mean_evidence, count = mean_neg_log10_p(evidence)
    missing = np.full(n, np.nan)
    block = layout.key_columns(score)
    block.update(
        {
            "N": np.full(n, n_runs, dtype=np.int64),
            "F_STAT": missing,
            "DF1": missing,
            "DF2": missing,
            "P": 10.0 ** (-mean_evidence),
            "NEG_LOG10_P": mean_evidence,
            "HARDEST_IN": _CodedColumn(np.zeros(n), (".",) + archs),
            "EASIEST_IN": _CodedColumn(np.zeros(n), (".",) + archs),
            "ERRCODE": _CodedColumn(_combined_errcodes(errors, count), ALL_ERRCODES),
        }
    )
    for method in settings.adjust:
        block[ADJUST_COLUMNS[method]] = missing
    return block


# --------------------------------------------------------------------------------------------
# Text: the log and the console summary
# --------------------------------------------------------------------------------------------


def format_log(
    study: AssociationStudy,
    comparison: ComparisonResult,
    header: Mapping[str, str] | None = None,
    n_top: int = 10,
) -> str:
    """The ``.log`` text of one comparison: inputs, runs used, λGC, counts, warnings, top examples.

    Parameters
    ----------
    study : AssociationStudy
    comparison : ComparisonResult
        One of ``study.pairs`` or ``study.oneway``.
    header : mapping, optional
        Extra ``key: value`` lines printed first (command, store, date...).
    n_top : int
        Examples listed at the end.
    """
    settings = study.settings
    lines = ["# gwasm associate"]
    for key, value in (header or {}).items():
        lines.append(f"{key}: {value}")
    lines.append(f"dataset: {study.dataset}")
    lines.append(f"scores: {', '.join(study.scores)}")
    if comparison.kind == "pair":
        lines.append(f"comparison: {comparison.a} (A) vs {comparison.b} (B); BETA = mean(B) - mean(A)")
    else:
        lines.append(
            f"comparison: Welch's one-way ANOVA across {', '.join(comparison.archs)} "
            "(always Welch's ANOVA, whatever the two-sample test)"
        )
    lines.append(settings.describe())
    lines.append(f"examples: {study.n_examples}")
    lines.append("runs used:")
    for arch in comparison.archs:
        seeds = study.runs[arch]
        lines.append(f"  {arch}: {len(seeds)} runs, seeds {format_seeds(seeds) or 'none'}")
    lines.append("")
    methods = list(settings.adjust) + (["EMP2"] if settings.permutation and comparison.kind == "pair" else [])
    lines.append(f"per score (significant = adjusted p <= {settings.alpha:g}):")
    head = ["score", "tested", "untested", "lambda_GC"] + [ADJUST_COLUMNS.get(m, m) for m in methods]
    rows = [head]
    for item in comparison.scores:
        untested = ",".join(f"{code}={count}" for code, count in item.errcodes.items()) or "0"
        rows.append(
            [item.score, str(item.n_tested), untested, f"{item.lambda_gc:.4f}"]
            + [str(item.n_significant.get(m, "")) for m in methods]
        )
    lines += _aligned(rows, indent="  ")
    if settings.permutation and comparison.kind == "pair":
        item = comparison.scores[0]
        lines.append(
            f"smallest reachable permutation p: {item.smallest_p:.3g} "
            f"(runs allow {_labelings_text(study, comparison)} distinct labelings; {settings.n_permutations} permutations)"
        )
    lines.append("")
    if len(study.scores) > 1 or comparison.kind == "oneway":
        lines.append(
            "combined rows: SCORE=combined holds the mean over scores of -log10 p (-log10 of the geometric mean p); "
            "not a p-value, so not adjusted"
        )
        if comparison.kind == "oneway":
            lines.append("SCORE=combined_pairs holds the mean of -log10 p over every pair of architectures and every score")
    lines.append(
        "ERRCODE: CONST zero variance; FEW_RUNS fewer than 2 finite runs in a group; NAN no finite score in a group "
        "(or a non-finite statistic); such examples have no p and are left out of adjustment, lambda_GC and combined rows "
        "(a combined row is '.' when any score was tested, else its scores' shared code, or MIXED)"
    )
    lines.append("")
    lines.append("warnings:" if comparison.warnings else "warnings: none")
    lines += [f"  - {w}" for w in comparison.warnings]
    lines.append("")
    lines.append(f"top {n_top} examples:")
    lines += _aligned(_top_rows(comparison, n_top), indent="  ")
    return "\n".join(lines) + "\n"


def _labelings_text(study: AssociationStudy, comparison: ComparisonResult) -> str:
    from gwas_models.analysis.permutation import count_labelings

    n_a, n_b = len(study.runs[comparison.a]), len(study.runs[comparison.b])
    return str(count_labelings(n_a, n_b, study.settings.paired))


def _top_rows(comparison: ComparisonResult, n_top: int) -> list[list[str]]:
    top = comparison.top(n_top)
    direction = "HARDER_IN" if "HARDER_IN" in top else "HARDEST_IN"
    rows = [["#CHROM", "POS", "ID", "SCORE", "NEG_LOG10_P", direction]]
    for record in top.itertuples(index=False):
        values = dict(zip(top.columns, record))
        rows.append(
            [
                str(values["#CHROM"]),
                str(values["POS"]),
                str(values["ID"]),
                str(values["SCORE"]),
                f"{values['NEG_LOG10_P']:.3f}",
                str(values[direction]),
            ]
        )
    return rows


def _aligned(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def format_comparison_summary(settings: AssociationSettings, comparison: ComparisonResult, n_top: int = 5) -> str:
    """Short console summary of one comparison: λGC and significant examples per score, top examples."""
    method = "bonferroni" if "bonferroni" in settings.adjust else settings.adjust[0]
    title = comparison.label if comparison.kind == "pair" else f"one-way ({comparison.label})"
    lines = [f"{title}:"]
    rows = [["score", "tested", "lambda_GC", f"{ADJUST_COLUMNS[method]}<={settings.alpha:g}"]]
    for item in comparison.scores:
        rows.append([item.score, str(item.n_tested), f"{item.lambda_gc:.3f}", str(item.n_significant[method])])
    lines += _aligned(rows, indent="  ")
    if n_top > 0 and len(comparison.sumstats):
        lines.append("  top examples:")
        lines += _aligned(_top_rows(comparison, n_top), indent="    ")
    return "\n".join(lines)


def format_summary(study: AssociationStudy, n_top: int = 5) -> str:
    """Short console summary of every comparison of a study."""
    return "\n".join(format_comparison_summary(study.settings, c, n_top) for c in study.comparisons)
