"""Benchmark of the association path: one score, many examples, two architectures.

Measures, in one run:

* the library's full sumstats path, ``associate(ScoreMatrix) -> sumstats DataFrame`` (Welch's t
  for every example, -log10 p, five adjustments, λGC, the combined table), for N examples and
  R vs R runs (target: at most 2 s for 1,000,000 examples and 20 vs 20 runs);
* writing that table as TSV and Parquet (reported apart: it is I/O, not statistics);
* a per-example loop of ``statsmodels.stats.weightstats.ttest_ind(..., usevar="unequal")`` on a
  subset of the examples, and the per-example speed ratio of the loop to the library
  (target: at least 100 times), after checking that both give the same p-values.

Usage::

    python benchmarks/associate.py [--examples 1000000] [--runs 20] [--loop-examples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from statsmodels.stats.weightstats import ttest_ind as statsmodels_ttest_ind

from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.analysis.study import associate
from gwas_models.formats.sumstats import write_sumstats

PATH_TARGET_S = 2.0
RATIO_TARGET = 100.0


def best_of(repeats: int, function) -> tuple[float, object]:
    """Shortest wall time over ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def statsmodels_loop(values_a: np.ndarray, values_b: np.ndarray) -> np.ndarray:
    """The reference: one statsmodels Welch test per example (column)."""
    p = np.empty(values_a.shape[1])
    for example in range(values_a.shape[1]):
        p[example] = statsmodels_ttest_ind(values_b[:, example], values_a[:, example], usevar="unequal")[1]
    return p


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
    with tempfile.TemporaryDirectory() as directory:
        write_s, _ = best_of(1, lambda: write_sumstats(table, Path(directory) / "bench", "A", "B"))

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
    print(f"{'write TSV + Parquet (I/O, apart)':<44}{write_s:>10.3f}{1e6 * write_s / args.examples:>13.3f}")
    print(f"{f'statsmodels ttest_ind loop, {n_loop:,} examples':<44}{loop_s:>10.3f}{1e6 * per_example['statsmodels loop']:>13.3f}")
    print(f"rows in the table: {len(table):,}; p vs statsmodels loop: max relative difference {max_relative_difference:.1e}")
    print(
        f"full path {path_s:.3f} s (target <= {PATH_TARGET_S:g} s: {'met' if path_s <= PATH_TARGET_S else 'NOT met'}); "
        f"speed ratio per example {ratio_path:,.0f}x full path, {ratio_test:,.0f}x test alone "
        f"(target >= {RATIO_TARGET:g}x: {'met' if ratio_path >= RATIO_TARGET else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
