"""Benchmark of the association path: one score, many examples, two architectures.

Measures, in one run:

* the library's full sumstats path, ``associate(ScoreMatrix) -> sumstats DataFrame`` (Welch's t
  for every example, -log10 p, five adjustments, λGC, the combined table), for N examples and
  R vs R runs (target: at most 2 s for 1,000,000 examples and 20 vs 20 runs);
* writing that table's files (one TSV per score and the Parquet long table; reported apart, it
  is I/O, not statistics), against the statistics' time in the same run (target: at most 1 s for
  1,000,000 examples);
* a per-example loop of ``statsmodels.stats.weightstats.ttest_ind(..., usevar="unequal")`` on a
  subset of the examples, and the per-example speed ratio of the loop to the library
  (target: at least 100 times), after checking that both give the same p-values;
* the moderated t (limma's eBayes) against Welch: its time on the same matrices, and its power and
  family-wise error on planted effects at 8 vs 8 runs under several variance structures.

Usage::

    python benchmarks/associate.py [--examples 1000000] [--runs 20] [--loop-examples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from statsmodels.stats.weightstats import ttest_ind as statsmodels_ttest_ind

from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.moderated import moderated_test
from gwas_models.analysis.multitest import adjust_pvalues
from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.analysis.study import associate
from gwas_models.formats.sumstats import write_sumstats

PATH_TARGET_S = 2.0
WRITE_TARGET_S = 1.0
RATIO_TARGET = 100.0


def best_of(repeats: int, function) -> tuple[float, object]:
    """Shortest wall time over ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def time_writes(table, repeats: int) -> tuple[float, float]:
    """Shortest wall time of writing ``table``'s files (``write_sumstats``), and their size in MB.

    Each repetition writes into a new directory, after ``os.sync()`` has flushed the files of the
    one before (and they were deleted), so that none pays for the disk's write-back of another.
    """
    times, written_mb = [], 0.0
    with tempfile.TemporaryDirectory() as directory:
        for repetition in range(repeats):
            folder = Path(directory) / str(repetition)
            os.sync()
            start = time.perf_counter()
            paths = write_sumstats(table, folder / "bench", "A", "B")
            times.append(time.perf_counter() - start)
            written_mb = sum(path.stat().st_size for path in paths.all()) / 1e6
            shutil.rmtree(folder)
    return min(times), written_mb


def statsmodels_loop(values_a: np.ndarray, values_b: np.ndarray) -> np.ndarray:
    """The reference: one statsmodels Welch test per example (column)."""
    p = np.empty(values_a.shape[1])
    for example in range(values_a.shape[1]):
        p[example] = statsmodels_ttest_ind(values_b[:, example], values_a[:, example], usevar="unequal")[1]
    return p


#: Per-example variances of the power simulation of the moderated t, by name: draws of sigma^2.
MODERATED_STRUCTURES = {
    "equal variances": lambda rng, n: np.ones(n),
    "log-normal, sd(log var) 0.5": lambda rng, n: np.exp(rng.normal(0.0, 0.5, n)),
    "log-normal, sd(log var) 1": lambda rng, n: np.exp(rng.normal(0.0, 1.0, n)),
    "inverse chi-square, d0 = 4": lambda rng, n: 4.0 / rng.chisquare(4.0, n),
}


def moderated_report(values_a: np.ndarray, values_b: np.ndarray, repeats: int, seed: int) -> list[str]:
    """The moderated t (limma eBayes) against Welch: time on the benchmark's matrices, then power
    and family-wise error at 8 vs 8 runs, 2,000 examples, 100 planted effects of 3 sd, Bonferroni
    alpha 0.01, over 200 simulated studies per variance structure."""
    welch_s, _ = best_of(repeats, lambda: two_sample_test(values_a, values_b, "welch"))
    moderated_s, _ = best_of(repeats, lambda: moderated_test(values_a, values_b))
    lines = [
        f"moderated t vs Welch, {values_a.shape[1]:,} examples, {values_a.shape[0]} vs {values_b.shape[0]} runs: "
        f"moderated {moderated_s:.3f} s, Welch {welch_s:.3f} s (ratio {moderated_s / welch_s:.2f})",
        "power at 8 vs 8 runs, 2,000 examples, 100 effects of 3 sd, Bonferroni alpha 0.01, 200 studies each:",
        f"  {'variances':<30}{'Welch power':>12}{'moderated':>11}{'Welch FWER':>12}{'moderated':>11}{'median d0':>11}",
    ]
    rng = np.random.default_rng(seed)
    n_examples, n_runs, n_effects, n_studies, alpha = 2000, 8, 100, 200, 0.01
    for name, draw in MODERATED_STRUCTURES.items():
        hits = {"welch": [], "moderated": []}
        false = {"welch": [], "moderated": []}
        prior_df = []
        for _ in range(n_studies):
            sd = np.sqrt(draw(rng, n_examples))
            planted = np.zeros(n_examples, dtype=bool)
            planted[rng.choice(n_examples, n_effects, replace=False)] = True
            a = sd * rng.normal(size=(n_runs, n_examples))
            b = sd * (rng.normal(size=(n_runs, n_examples)) + 3.0 * planted)
            moderated = moderated_test(a, b)
            prior_df.append(moderated.prior.df)
            for test, result in (("welch", two_sample_test(a, b, "welch")), ("moderated", moderated.result)):
                significant = adjust_pvalues(result.p, ("bonferroni",))["bonferroni"].to_numpy() <= alpha
                hits[test].append(significant[planted].mean())
                false[test].append(significant[~planted].any())
        lines.append(
            f"  {name:<30}{np.mean(hits['welch']):>12.3f}{np.mean(hits['moderated']):>11.3f}"
            f"{np.mean(false['welch']):>12.3f}{np.mean(false['moderated']):>11.3f}{np.median(prior_df):>11.3g}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000, help="training examples (columns)")
    parser.add_argument("--runs", type=int, default=20, help="runs per architecture")
    parser.add_argument("--loop-examples", type=int, default=2000, help="examples in the statsmodels loop")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    planted = rng.choice(args.examples, size=min(100, args.examples), replace=False)
    matrix = simulate_score_matrix(
        rng, args.examples, {"A": args.runs, "B": args.runs}, effect_examples=planted, effect_size=3.0
    )
    values_a, values_b = matrix.runs_of("A"), matrix.runs_of("B")

    path_s, study = best_of(args.repeats, lambda: associate(matrix))
    table = study.pairs[0].sumstats
    test_s, result = best_of(args.repeats, lambda: two_sample_test(values_a, values_b))
    write_s, written_mb = time_writes(table, args.repeats)

    subset = slice(0, min(args.loop_examples, args.examples))
    statsmodels_loop(values_a[:, :5], values_b[:, :5])  # warm-up: first calls pay lazy imports
    loop_s, loop_p = best_of(args.repeats, lambda: statsmodels_loop(values_a[:, subset], values_b[:, subset]))
    max_relative_difference = float(np.max(np.abs(loop_p / result.p[subset] - 1.0)))
    n_loop = loop_p.size
    per_example = {
        "statsmodels loop": loop_s / n_loop,
        "full sumstats path": path_s / args.examples,
        "two_sample_test only": test_s / args.examples,
    }
    ratio_path = per_example["statsmodels loop"] / per_example["full sumstats path"]
    ratio_test = per_example["statsmodels loop"] / per_example["two_sample_test only"]

    print(f"examples: {args.examples:,}; runs: {args.runs} vs {args.runs}; one score; best of {args.repeats}")
    print(f"{'step':<44}{'seconds':>10}{'us/example':>13}")
    print(f"{'full sumstats path (associate -> DataFrame)':<44}{path_s:>10.3f}{1e6 * per_example['full sumstats path']:>13.3f}")
    print(f"{'  of which two_sample_test alone':<44}{test_s:>10.3f}{1e6 * per_example['two_sample_test only']:>13.3f}")
    print(f"{'write TSV per score + Parquet (I/O, apart)':<44}{write_s:>10.3f}{1e6 * write_s / args.examples:>13.3f}")
    print(f"{f'statsmodels ttest_ind loop, {n_loop:,} examples':<44}{loop_s:>10.3f}{1e6 * per_example['statsmodels loop']:>13.3f}")
    print(f"rows in the table: {len(table):,}; p vs statsmodels loop: max relative difference {max_relative_difference:.1e}")
    print(
        f"write {write_s:.3f} s for {written_mb:,.0f} MB, {write_s / path_s:.2f}x the statistics' {path_s:.3f} s "
        f"(target <= {WRITE_TARGET_S:g} s: {'met' if write_s <= WRITE_TARGET_S else 'NOT met'})"
    )
    print(
        f"full path {path_s:.3f} s (target <= {PATH_TARGET_S:g} s: {'met' if path_s <= PATH_TARGET_S else 'NOT met'}); "
        f"speed ratio per example {ratio_path:,.0f}x full path, {ratio_test:,.0f}x test alone "
        f"(target >= {RATIO_TARGET:g}x: {'met' if ratio_path >= RATIO_TARGET else 'NOT met'})"
    )
    print("\n".join(moderated_report(values_a, values_b, args.repeats, args.seed)))


if __name__ == "__main__":
    main()
