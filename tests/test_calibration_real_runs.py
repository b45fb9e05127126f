"""A same-architecture split of real collected runs: no architecture, so no association.

Eight MLP runs on the digits are divided into two groups of four in several ways. Tests of
every score should then be calibrated: λGC near 1 and essentially no Bonferroni hits.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from gwas_models.analysis.study import associate
from gwas_models.formats.store import load_score_matrices, recorded_scores
from gwas_models.training.collect import collect, plan_collection
from gwas_models.training.train import preset

SPLITS = ((0, 2, 4, 6), (0, 1, 2, 3), (0, 1, 6, 7), (1, 2, 5, 6))


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory):
    threads = torch.get_num_threads()
    store = tmp_path_factory.mktemp("store")
    plan, data = plan_collection("mlp", range(8), preset("digits", epochs=4), store=store, device="cpu", threads=1)
    collect(plan, data)
    torch.set_num_threads(threads)
    return load_score_matrices(store, "digits", recorded_scores(store, "digits"), ["mlp"])


def _split_study(matrices, split, normalize):
    relabelled = {name: replace(m, groups=np.where(np.isin(m.seeds, split), "first", "second")) for name, m in matrices.items()}
    return associate(relabelled, ["first", "second"], normalize=normalize).pairs[0].summary()


@pytest.mark.parametrize("normalize, max_hits", [("none", 1), ("rank", 3)])
def test_same_architecture_split_is_calibrated(mlp_runs, normalize, max_hits):
    summaries = [_split_study(mlp_runs, split, normalize) for split in SPLITS]
    lambdas = np.concatenate([s["lambda_gc"].to_numpy() for s in summaries])
    hits = sum(int(s["n_bonferroni"].sum()) for s in summaries)
    assert len(lambdas) == len(SPLITS) * len(mlp_runs)
    # One split's λ per score is noisy with 4 vs 4 runs (runs share run-level effects across
    # examples); over scores and splits it must centre on 1.
    assert 0.8 <= np.median(lambdas) <= 1.2
    # 4 splits x 11 scores at a family-wise 1% each: about 0.4 false hits expected in all.
    assert hits <= max_hits
