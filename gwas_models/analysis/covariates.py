"""Run covariates: each example's test becomes a linear model ``score ~ group + covariates``.

A covariate is a value per training run (its test accuracy, the batch it ran in, its GPU), the
same for every example of the run. When runs differ in it and the scores follow it, it adds
run-to-run noise to every example (or, when it differs between the architectures, a spurious
difference); adjusting for it in each example's test removes that. The design of a comparison
of A and B has one row per run: an intercept, the group (1 for the runs of B), then the
covariates; BETA is the group coefficient, the difference B - A at equal covariates.

Per example (vectorised over examples: one least-squares fit per pattern of missing runs, and a
single one when no score is missing):

``student``
    The ordinary least-squares t of the group coefficient, ``BETA / (sigma u)`` with ``u²`` the
    group entry of ``(X'X)^-1`` and residual df ``n - p``: limma's ordinary t of ``lmFit(y,
    model.matrix(~group + covariates))`` (``coef / stdev.unscaled / sigma``).
``moderated``
    That fit moderated by limma's ``eBayes`` (also with ``trend`` and ``robust``):
    :func:`~gwas_models.analysis.moderated.moderate` with ``unscaled_variance = u²``.
``welch``
    The group coefficient with the HC2 sandwich standard error (MacKinnon & White 1985) and
    Satterthwaite degrees of freedom in the manner of Bell & McCaffrey (2002), under a working
    model in which each group has its own residual variance. With ``e`` the residuals, ``h`` the
    leverages, ``w`` the weights of the group coefficient (``BETA = w'y``) and ``M = I - H``::

        SE² = Σ_i w_i² e_i² / (1 - h_i)
        B   = M diag(w² / (1 - h)) M
        ω_g = Σ_{i in g} e_i² / Σ_{i in g} (1 - h_i)       (group g's residual variance)
        DF  = (Σ_g ω_g tr(B D_g))² / Σ_{g,k} ω_g ω_k tr(B D_g B D_k)

    where ``D_g`` selects the runs of group g. Without covariates ``h_i = 1/n_g`` and these are
    exactly Welch's ``sqrt(s_A²/n_A + s_B²/n_B)`` and Welch-Satterthwaite df.

Examples that cannot be tested keep the error codes of
:func:`~gwas_models.analysis.association.two_sample_test` (CONST, FEW_RUNS, NAN); an example
whose finite runs leave no residual df, no estimable group coefficient, or (Welch) a run fitted
exactly (leverage 1), is FEW_RUNS; one whose standard error is rounding residue is CONST.

References
----------
J. G. MacKinnon, H. White (1985), "Some heteroskedasticity-consistent covariance matrix estimators
with improved finite sample properties", Journal of Econometrics 29, 305-325.
R. M. Bell, D. F. McCaffrey (2002), "Bias reduction in standard errors for linear regression with
multi-stage samples", Survey Methodology 28(2), 169-181.
G. W. Imbens, M. Kolesár (2016), "Robust standard errors in small samples: some practical
advice", Review of Economics and Statistics 98(4), 701-712.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from gwas_models.analysis._smoothing import independent_columns
from gwas_models.analysis.association import (
    CONST,
    FEW_RUNS,
    OK,
    GroupMoments,
    TwoSampleResult,
    as_score_matrix,
    finish_two_sample,
    two_sample_test,
)
from gwas_models.analysis.moderated import ModeratedResult, mean_over_runs, moderate
from gwas_models.errors import InputError

#: The tests that take covariates.
COVARIATE_TESTS: tuple[str, ...] = ("student", "welch")
#: Columns of a covariate table that name the run.
KEY_COLUMNS: tuple[str, str] = ("arch", "seed")
# A leverage this close to 1 means a run is fitted exactly (HC2 divides by 1 - h).
_LEVERAGE_ONE = 1e-10
# A standard error below this many ulps of the scores is rounding residue (as two_sample_test).
_CONSTANT_ULPS = 10.0


# --------------------------------------------------------------------------------------------
# The covariates of runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RunCovariates:
    """Covariates of training runs, keyed by (architecture, seed), encoded as design columns.

    Build it with :meth:`from_frame`; a file is read by
    :func:`gwas_models.formats.covariates_file.read_covariates`.

    Attributes
    ----------
    columns : tuple of str
        The covariates of the table, in order.
    names : tuple of str
        The design columns they become: a numeric covariate is one column of its name; a
        categorical one with levels L1 < L2 < ... (sorted, the first the reference, as R's
        ``factor``) one indicator column per other level, ``name[level]``.
    archs : str array (n_rows,)
    seeds : int array (n_rows,)
    values : float array (n_rows, len(names))
    """

    columns: tuple[str, ...]
    names: tuple[str, ...]
    archs: np.ndarray
    seeds: np.ndarray
    values: np.ndarray
    encodings: tuple[str, ...] = ()

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, where: str = "covariates") -> "RunCovariates":
        """Covariates from a table with columns ``arch``, ``seed`` and one or more covariates.

        Parameters
        ----------
        frame : DataFrame
            One row per run. A covariate column whose values are all numbers is numeric; one
            whose values are all non-numbers (e.g. ``b1``, ``b2``) is categorical (one-hot with
            its first level, sorted, as reference).
        where : str
            What the table is, for the messages (e.g. its file name).

        Raises
        ------
        InputError
            A missing ``arch`` or ``seed`` column, no covariate column, a seed that is not an
            integer, a run listed twice, a missing (NaN) or infinite value, or a column that
            mixes numbers and other values.
        """
        frame = pd.DataFrame(frame)
        frame.columns = [str(c).strip() for c in frame.columns]
        absent = [c for c in KEY_COLUMNS if c not in frame.columns]
        if absent:
            raise InputError(
                f"covariates ({where}) need columns arch and seed; missing: {', '.join(absent)} (columns: {', '.join(frame.columns)})",
                parameter="covariates",
            )
        columns = tuple(c for c in frame.columns if c not in KEY_COLUMNS)
        if not columns:
            raise InputError(f"covariates ({where}) have no covariate column besides arch and seed", parameter="covariates")
        if frame[list(KEY_COLUMNS)].isna().any().any():
            raise InputError(f"covariates ({where}): a row has no arch or seed", parameter="covariates")
        archs = frame["arch"].astype(str).str.strip().to_numpy()
        seeds = _integer_seeds(frame["seed"], where)
        keys = pd.Series(list(zip(archs, seeds.tolist())))
        if keys.duplicated().any():
            arch, seed = keys[keys.duplicated()].iloc[0]
            raise InputError(f"covariates ({where}) list run {arch} seed {seed} twice", parameter="covariates")
        names: list[str] = []
        encodings: list[str] = []
        blocks: list[np.ndarray] = []
        for column in columns:  # a loop over the covariates of the table
            encoded, column_names, encoding = _encode(frame[column], column, archs, seeds, where)
            names += column_names
            encodings.append(encoding)
            blocks.append(encoded)
        values = np.column_stack(blocks).astype(np.float64)
        return cls(columns=columns, names=tuple(names), archs=archs, seeds=seeds, values=values, encodings=tuple(encodings))

    def for_runs(self, arch: str, seeds: Sequence[int]) -> np.ndarray:
        """The design columns of the runs ``(arch, seed)``, shape (len(seeds), len(names)).

        Raises
        ------
        InputError
            A run without a row in the table.
        """
        index = {(a, int(s)): i for i, (a, s) in enumerate(zip(self.archs.tolist(), self.seeds.tolist()))}
        rows = [index.get((str(arch), int(seed)), -1) for seed in seeds]
        missing = [int(seed) for seed, row in zip(seeds, rows) if row < 0]
        if missing:
            listed = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise InputError(
                f"covariates have no row for {len(missing)} run(s) of {arch} used in the test: seed {listed}",
                parameter="covariates",
            )
        return self.values[np.asarray(rows, dtype=np.int64)]

    def describe(self) -> str:
        """The covariates in one line, e.g. ``accuracy, batch (categorical, reference b1)``."""
        return ", ".join(self.encodings or self.columns)


def _integer_seeds(column: pd.Series, where: str) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() | (numbers != np.round(numbers))
    if bad.any():
        raise InputError(
            f"covariates ({where}): seed must be an integer, got {str(column[bad].iloc[0])!r}", parameter="covariates"
        )
    return numbers.to_numpy().astype(np.int64)


def _encode(column: pd.Series, name: str, archs: np.ndarray, seeds: np.ndarray, where: str) -> tuple[np.ndarray, list[str], str]:
    """One covariate as design columns: numeric as it is, categorical one-hot (first level reference)."""

    def run_of(mask: np.ndarray) -> str:
        i = int(np.flatnonzero(mask)[0])
        return f"run {archs[i]} seed {seeds[i]}"

    missing = column.isna().to_numpy()
    if missing.any():
        raise InputError(f"covariates ({where}): {name!r} is missing (NaN) for {run_of(missing)}", parameter="covariates")
    if pd.api.types.is_bool_dtype(column):
        column = column.astype(str)
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    is_number = np.isfinite(numbers) | np.isinf(numbers)
    if is_number.all():
        infinite = ~np.isfinite(numbers)
        if infinite.any():
            raise InputError(f"covariates ({where}): {name!r} is infinite for {run_of(infinite)}", parameter="covariates")
        return numbers[:, None], [name], name
    if is_number.any():
        raise InputError(
            f"covariates ({where}): {name!r} mixes numbers and other values: {column[~is_number].iloc[0]!r} for "
            f"{run_of(~is_number)} is not a number",
            parameter="covariates",
        )
    labels = column.astype(str).str.strip().to_numpy()
    levels = sorted(set(labels.tolist()))
    encoded = np.column_stack([labels == level for level in levels[1:]]) if len(levels) > 1 else np.zeros((len(labels), 0))
    return encoded.astype(np.float64), [f"{name}[{level}]" for level in levels[1:]], f"{name} (categorical, reference {levels[0]})"


# --------------------------------------------------------------------------------------------
# The linear model per example
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CovariateFit:
    """The group coefficient of ``score ~ group + covariates``, per example.

    Attributes
    ----------
    result : TwoSampleResult
        ``test`` is ``"student"`` or ``"welch"``; ``beta`` the group coefficient, ``se``, ``t_stat``,
        ``df``, ``p`` its test, ``cohen_d`` = ``beta`` over the residual standard deviation;
        ``n_a``, ``n_b``, the means and standard deviations describe the groups as collected.
    unscaled_variance : float array (n_examples,)
        ``u²``, the group entry of ``(X'X)^-1`` of each example's design (limma's
        ``stdev.unscaled²``); NaN where no fit was made.
    """

    result: TwoSampleResult
    unscaled_variance: np.ndarray


def design_matrix(covariates_a: np.ndarray, covariates_b: np.ndarray) -> np.ndarray:
    """The design of runs A then B: intercept, group (1 for B), covariates; shape (n_a + n_b, 2 + q)."""
    covariates_a = np.atleast_2d(np.asarray(covariates_a, dtype=np.float64))
    covariates_b = np.atleast_2d(np.asarray(covariates_b, dtype=np.float64))
    n_a, n_b = covariates_a.shape[0], covariates_b.shape[0]
    group = np.r_[np.zeros(n_a), np.ones(n_b)]
    return np.column_stack([np.ones(n_a + n_b), group, np.vstack([covariates_a, covariates_b])])


def check_design(design: np.ndarray, names: Sequence[str], groups: tuple[str, str] = ("A", "B")) -> None:
    """Refuse a design whose covariates are constant or collinear with the group and each other.

    Raises
    ------
    InputError
        Naming the first covariate (in order) that adds nothing to the columns before it.
    """
    kept = independent_columns(design)
    dropped = sorted(set(range(design.shape[1])) - set(kept.tolist()))
    if not dropped:
        return
    column = dropped[0]
    if column < 2:  # cannot happen with two groups of runs, but say so plainly
        raise InputError(f"the design of {groups[0]} vs {groups[1]} has no group contrast", parameter="covariates")
    name = names[column - 2]
    values = design[:, column]
    if np.ptp(values) == 0:
        why = "is constant over the runs"
    elif column == 2:
        why = "is collinear with the group"
    else:
        why = "is collinear with the group and the covariates before it"
    raise InputError(
        f"covariates: {name!r} {why} of {groups[0]} and {groups[1]}: the design is singular, so the group effect "
        "cannot be separated from it; drop or change that covariate",
        parameter="covariates",
    )


def exactly_fitted_runs(design: np.ndarray) -> np.ndarray:
    """Rows of a (full-rank) design with leverage 1: runs the fit reproduces exactly whatever
    their score (e.g. the only run of a categorical level), where HC2 divides by ``1 - h = 0``."""
    q, _ = np.linalg.qr(design[:, independent_columns(design)])
    return np.flatnonzero(np.einsum("ij,ij->i", q, q) > 1.0 - _LEVERAGE_ONE)


def covariate_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    covariates_a: np.ndarray,
    covariates_b: np.ndarray,
    test: str = "student",
    *,
    names: tuple[str, str] = ("A", "B"),
    covariate_names: Sequence[str] | None = None,
) -> CovariateFit:
    """The group coefficient of ``score ~ group + covariates`` of every example (column).

    Parameters
    ----------
    values_a, values_b : arrays (n_runs_a, n_examples), (n_runs_b, n_examples)
        Scores of the runs of A and of B; non-finite scores are missing (each example is fitted
        on its finite runs).
    covariates_a, covariates_b : arrays (n_runs_a, q), (n_runs_b, q)
        Each run's covariates (design columns, e.g. :meth:`RunCovariates.for_runs`).
    test : {"student", "welch"}
        The ordinary least-squares t (what limma's ``lmFit`` gives, and what the moderated t
        moderates), or the HC2 / Bell-McCaffrey test (see the module's notes).
    names : (str, str)
        Group names used in messages.
    covariate_names : sequence of str, optional
        Names of the q covariate columns, for messages.

    Returns
    -------
    CovariateFit

    Raises
    ------
    InputError
        An unknown test, mismatched shapes, a group with fewer than two runs, covariates without a
        row per run or not finite, or a singular design (a covariate constant over the runs or
        collinear with the group).
    """
    if test not in COVARIATE_TESTS:
        raise InputError(f"test with covariates must be one of {', '.join(COVARIATE_TESTS)}, got {test!r}", parameter="test")
    values_a = as_score_matrix(values_a, f"scores of {names[0]}")
    values_b = as_score_matrix(values_b, f"scores of {names[1]}")
    base = two_sample_test(values_a, values_b, "student", names=names)
    covariates_a = np.asarray(covariates_a, dtype=np.float64).reshape(values_a.shape[0], -1)
    covariates_b = np.asarray(covariates_b, dtype=np.float64).reshape(values_b.shape[0], -1)
    if covariates_a.shape[1] != covariates_b.shape[1]:
        raise InputError("covariates of A and B have different numbers of columns", parameter="covariates")
    if not (np.isfinite(covariates_a).all() and np.isfinite(covariates_b).all()):
        raise InputError("covariates must be finite for every run", parameter="covariates")
    n_covariates = covariates_a.shape[1]
    covariate_names = list(covariate_names) if covariate_names is not None else [f"covariate {i + 1}" for i in range(n_covariates)]
    design = design_matrix(covariates_a, covariates_b)
    check_design(design, covariate_names, names)

    y = np.vstack([values_a, values_b])
    n_a, n_examples = values_a.shape[0], y.shape[1]
    in_b = np.r_[np.zeros(n_a, dtype=bool), np.ones(values_b.shape[0], dtype=bool)]
    beta = np.full(n_examples, np.nan)
    se = np.full(n_examples, np.nan)
    df = np.full(n_examples, np.nan)
    sigma = np.full(n_examples, np.nan)
    unscaled = np.full(n_examples, np.nan)
    error = base.error.copy()
    finite = np.isfinite(y)
    todo = np.flatnonzero(error == OK)
    if todo.size:
        patterns, which = _missingness_patterns(finite[:, todo])
        # A loop over the patterns of missing runs (one when no score is missing), each fitted
        # for all of its examples at once.
        for number, observed in enumerate(patterns):
            columns = todo[which == number]
            fit = _fit_pattern(design[observed], y[np.ix_(observed, columns)], in_b[observed], test)
            if fit is None:
                error[columns] = FEW_RUNS
                continue
            beta[columns], se[columns], df[columns], sigma[columns], unscaled[columns] = fit
    with np.errstate(invalid="ignore"):
        magnitude = np.nanmax(np.where(finite, np.abs(y), np.nan), axis=0, initial=0.0) if y.size else np.zeros(n_examples)
        rounding = ~(se >= _CONSTANT_ULPS * np.finfo(np.float64).eps * magnitude) | (sigma == 0)
    error[(error == OK) & rounding] = CONST
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t_stat = beta / se
        cohen_d = beta / sigma
    result = finish_two_sample(
        test,
        GroupMoments(n=base.n_a, mean=base.mean_a, var=base.sd_a**2),
        GroupMoments(n=base.n_b, mean=base.mean_b, var=base.sd_b**2),
        beta=np.where(np.isfinite(beta), beta, base.beta),
        se=np.where(np.isfinite(se), se, base.se),
        cohen_d=cohen_d,
        t_stat=t_stat,
        df=df,
        error=error,
    )
    unscaled[result.error != OK] = np.nan
    return CovariateFit(result=result, unscaled_variance=unscaled)


def _missingness_patterns(finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of a (runs, examples) mask, (n_patterns, runs), and each example's."""
    if finite.all():
        return np.ones((1, finite.shape[0]), dtype=bool), np.zeros(finite.shape[1], dtype=np.int64)
    packed = np.packbits(finite, axis=0)  # (bytes, examples): one small code per column
    codes = np.ascontiguousarray(packed.T).view(np.dtype((np.void, packed.shape[0]))).ravel()
    _, first, which = np.unique(codes, return_index=True, return_inverse=True)
    return finite[:, first].T, np.asarray(which).ravel()


def _fit_pattern(design: np.ndarray, y: np.ndarray, in_b: np.ndarray, test: str):
    """The group coefficient's fit for the examples (columns of ``y``) observed on the same runs.

    Returns ``(beta, se, df, sigma, u²)`` arrays, or None when the runs leave no residual df or
    no estimable group coefficient (or, for Welch, fit a run exactly).
    """
    kept = independent_columns(design)
    if len(kept) < 2 or kept[0] != 0 or kept[1] != 1:  # intercept or group not estimable
        return None
    x = design[:, kept]
    n_runs, rank = x.shape
    residual_df = n_runs - rank
    if residual_df < 1:
        return None
    q, r = np.linalg.qr(x)
    r_inverse = np.linalg.solve(r, np.eye(rank))
    weights = q @ r_inverse.T[:, 1]  # BETA = weights' y: row 1 of (X'X)^-1 X'
    unscaled = float(weights @ weights)  # the group entry of (X'X)^-1
    beta = weights @ y
    residuals = y - q @ (q.T @ y)
    rss = np.einsum("ij,ij->j", residuals, residuals)
    sigma = np.sqrt(rss / residual_df)
    if test == "student":
        se = sigma * np.sqrt(unscaled)
        df = np.full(y.shape[1], float(residual_df))
        return beta, se, df, sigma, np.full(y.shape[1], unscaled)
    leverage = np.einsum("ij,ij->i", q, q)
    if (leverage > 1.0 - _LEVERAGE_ONE).any():
        return None
    hc2 = weights**2 / (1.0 - leverage)
    se = np.sqrt(hc2 @ residuals**2)
    # Bell-McCaffrey: B = M diag(hc2) M, traces against each group's selector.
    annihilator = np.eye(n_runs) - q @ q.T
    b = annihilator @ (hc2[:, None] * annihilator)
    groups = (~in_b, in_b)
    trace = np.array([np.trace(b[np.ix_(g, g)]) for g in groups])
    cross = np.array([[np.sum(b[np.ix_(g, k)] ** 2) for k in groups] for g in groups])
    omega = np.vstack([(residuals[g] ** 2).sum(axis=0) / (1.0 - leverage[g]).sum() for g in groups])  # (2, n_examples)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (trace @ omega) ** 2 / np.einsum("ie,ij,je->e", omega, cross, omega)
    return beta, se, df, sigma, np.full(y.shape[1], unscaled)


def covariate_moderated_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    covariates_a: np.ndarray,
    covariates_b: np.ndarray,
    *,
    trend: bool = False,
    robust: bool = False,
    names: tuple[str, str] = ("A", "B"),
    covariate_names: Sequence[str] | None = None,
) -> ModeratedResult:
    """limma's ``eBayes(lmFit(y, model.matrix(~group + covariates)), trend, robust)`` of the
    group coefficient, every example: :func:`covariate_test` (Student) then
    :func:`~gwas_models.analysis.moderated.moderate` (``trend``'s covariate is the mean over all
    finite scores, limma's ``Amean``).

    Returns
    -------
    ModeratedResult
    """
    fit = covariate_test(values_a, values_b, covariates_a, covariates_b, "student", names=names, covariate_names=covariate_names)
    mean_score = mean_over_runs(values_a, values_b) if trend else None
    return moderate(fit.result, trend=trend, robust=robust, mean_score=mean_score, unscaled_variance=fit.unscaled_variance)
