"""How ``tests/data/fingerprint_v1*.json`` were made: kept for the record, not to be rerun.

Run once from the repository root with the fingerprint code of commit 2bbacae, which computed
predictions by hand, before the fingerprint became a scikit-learn pipeline. The expected outputs
in ``fingerprint_v1_expected.json`` are that code's; regenerating them with later code would make
the compatibility test compare the new code with itself.
"""
import json, numpy as np
from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.analysis.fingerprint import fit_fingerprint, identify
from gwas_models.formats.fingerprint_file import save_fingerprint
from gwas_models.matrix import ScoreMatrix

def effects(matrix, eff):
    values = matrix.values.copy()
    for arch, e in eff.items():
        values[matrix.groups == arch] += e
    return ScoreMatrix(score=matrix.score, values=values, groups=matrix.groups, seeds=matrix.seeds, example_id=matrix.example_id,
                       labels=matrix.labels, class_names=matrix.class_names, dataset=matrix.dataset, higher_is_harder=matrix.higher_is_harder)

expected = {"generated_by": "gwas-models fingerprint code at commit 2bbacae (before the scikit-learn rebuild)", "cases": {}}
for name, archs, n_runs in (("fingerprint_v1.json", ["A", "B"], 8), ("fingerprint_v1_three.json", ["A", "B", "C"], 8)):
    rng = np.random.default_rng(11)
    m = simulate_score_matrix(rng, 60, {a: n_runs for a in archs}, dataset="sim")
    eff = {}
    for i, a in enumerate(archs[1:]):
        e = rng.normal(0.0, 0.3, 60); e[i * 5:(i + 1) * 5] += 1.5; eff[a] = e
    m = effects(m, eff)
    train = np.concatenate([np.flatnonzero(m.groups == a)[:5] for a in archs])
    heldout = np.setdiff1d(np.arange(len(m.groups)), train)
    fitted = fit_fingerprint(m.subset_runs(np.isin(np.arange(len(m.groups)), train)), archs, 4, provenance={"store": "/simulated"})
    save_fingerprint(fitted, f"tests/data/{name}")
    values = m.values[heldout]
    table = identify(fitted, m.example_id, values, [f"{a} seed {s}" for a, s in zip(m.groups[heldout], m.seeds[heldout])])
    feats = fitted.marker_features(m.example_id, values)
    expected["cases"][name] = {
        "example_id": m.example_id.tolist(),
        "values": values.tolist(),
        "run_names": table["RUN"].tolist(),
        "predicted": table["PREDICTED"].tolist(),
        "probabilities": fitted.predict_proba(feats).tolist(),
        "decision_function": fitted.decision_function(feats).tolist(),
    }
    print(name, table["PREDICTED"].tolist(), list(m.groups[heldout]))
with open("tests/data/fingerprint_v1_expected.json", "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
