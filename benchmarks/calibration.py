"""Calibration of the association defaults on simulations with the effects real runs have.

Prints two tables:

1. Scenarios with changed examples (:data:`gwas_models.analysis.calibration.SCENARIOS`: a global
   shift on a loss-like and on a confidence-like score, 400 of 2,000 examples moving one way,
   tied counts with and without a shift), for every normalisation under Welch's t (BH at
   --alpha) and for the permutation test on the tied counts (BH on EMP1 at 0.05, 10,000
   relabellings, whose smallest p lets BH reach 0.05): share of the changed examples found and
   false discovery proportion, pooled over --studies studies.
2. Complete nulls with run effects at 4 v 4, 5 v 5 and 10 v 10 runs, for every test x
   normalisation: family-wise error (Bonferroni) and false discovery rate (BH) at 0.05, over
   --null-studies studies each, with the upper end of a 95% binomial interval.

Usage: python benchmarks/calibration.py [--studies 3] [--null-studies 200] [--quick]
(--null-studies 0 prints the scenarios only.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from gwas_models.analysis.association import NORMALIZATIONS
from gwas_models.analysis.calibration import SCENARIOS, Discoveries, discoveries, null_scenario, simulate_scenario
from gwas_models.analysis.study import TESTS, AssociationSettings, associate, score_pvalues


def scenario_table(n_studies: int, alpha: float) -> pd.DataFrame:
    rows = []
    for name, scenario in SCENARIOS.items():
        settings = [(normalize, "welch", alpha) for normalize in NORMALIZATIONS]
        if scenario.link == "binomial":
            settings.append(("relative", "permutation", 0.05))
        for normalize, test, level in settings:
            total, skipped = Discoveries(0, 0, 0), ""
            for seed in range(n_studies):
                matrix, changed = simulate_scenario(np.random.default_rng(seed), scenario)
                try:
                    table = associate(
                        matrix, normalize=normalize, test=test, adjust="fdr_bh", n_permutations=10_000, rng=np.random.default_rng(seed)
                    ).pairs[0].sumstats
                except Exception as error:  # rank refuses tied counts: say so in the table
                    skipped = str(error).split(":")[0]
                    break
                total = total + discoveries(table["FDR_BH"].to_numpy(), changed, level)
            rows.append(
                {
                    "scenario": name,
                    "normalize": normalize,
                    "test": test,
                    "BH at": level,
                    "found": np.nan if skipped else round(total.power, 3),
                    "FDP": np.nan if skipped else round(total.fdp, 3),
                    "hits": np.nan if skipped else total.n_hits,
                }
            )
    return pd.DataFrame(rows)


def null_table(n_studies: int, alpha: float, link: str) -> pd.DataFrame:
    rows = []
    for runs in ((4, 4), (5, 5), (10, 10)):
        scenario = null_scenario(runs, link=link)
        studies = [simulate_scenario(np.random.default_rng(10_000 + seed), scenario)[0] for seed in range(n_studies)]
        for test in TESTS:
            for normalize in NORMALIZATIONS:
                if normalize == "rank" and link == "binomial":
                    continue  # refused for tied scores
                settings = AssociationSettings(test=test, normalize=normalize, adjust=("bonferroni", "fdr_bh"), alpha=alpha)
                family, discovery = 0, 0
                for seed, matrix in enumerate(studies):
                    adjusted = score_pvalues(matrix, settings, rng=np.random.default_rng(seed)).adjusted
                    family += bool((adjusted["bonferroni"] <= alpha).any())
                    discovery += bool((adjusted["fdr_bh"] <= alpha).any())
                rows.append(
                    {
                        "runs": f"{runs[0]}v{runs[1]}",
                        "test": test,
                        "normalize": normalize,
                        "FWER": family / n_studies,
                        "FWER_95_high": _upper(family, n_studies),
                        "FDR": discovery / n_studies,
                        "FDR_95_high": _upper(discovery, n_studies),
                    }
                )
    return pd.DataFrame(rows)


def _upper(successes: int, trials: int) -> float:
    return round(float(stats.beta.ppf(0.975, successes + 1, trials - successes)) if successes < trials else 1.0, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=3, help="studies pooled per scenario")
    parser.add_argument("--null-studies", type=int, default=200, help="null studies per test x normalisation x runs")
    parser.add_argument("--alpha", type=float, default=0.01, help="BH level of the scenario table")
    parser.add_argument("--quick", action="store_true", help="1 study per scenario, 40 null studies")
    args = parser.parse_args()
    if args.quick:
        args.studies, args.null_studies = 1, 40
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    start = time.perf_counter()
    print(f"Scenarios: 2,000 examples, 10 v 10 runs, run effects; found = share of changed examples called, FDP = false discovery proportion ({args.studies} studies pooled)")
    print(scenario_table(args.studies, args.alpha).to_string(index=False))
    for link in ("softplus", "binomial") if args.null_studies > 0 else ():
        kind = "loss-like" if link == "softplus" else "tied counts"
        print(f"\nComplete nulls, {kind}, 500 examples, run effects: FWER (Bonferroni) and FDR (BH) at 0.05 over {args.null_studies} studies")
        print(null_table(args.null_studies, 0.05, link).to_string(index=False))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
