"""`gwasm fingerprint` and `gwasm identify` on a tiny run store.

The store holds dataset ``tiny`` (200 examples; architectures A and B with 6 runs each, B harder
on examples 0-9, and C with only 2 runs) and dataset ``small`` (150 examples) so that a
fingerprint can be pointed at the wrong dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_models.formats.fingerprint_file import PROCEDURE_CHOSEN, PROCEDURE_GIVEN, SCORE_CHOSEN_PER_SPLIT, SUMMARY_COLUMNS
from gwas_models.workflows.fingerprint import load_fingerprint
from gwas_models.formats.store import RunKey, load_score_matrices, run_table, write_dataset_info, write_run

N_EXAMPLES = 200
SCORES = ("loss", "aum")


def _write_dataset(store: Path, dataset: str, n_examples: int, runs: dict[str, int], rng: np.random.Generator) -> None:
    example_id = np.arange(n_examples)
    labels = example_id % 4
    write_dataset_info(store, dataset, {"n_examples": n_examples, "class_names": ["a", "b", "c", "d"], "source": {}})
    difficulty = rng.normal(size=n_examples)
    for arch, n_runs in runs.items():
        effect = np.zeros(n_examples)
        if arch == "B":
            effect[:10] = 8.0  # strong enough that 3 + 3 training runs pick them whatever the split
        for seed in range(n_runs):
            scores = {name: difficulty + effect + rng.normal(size=n_examples) for name in SCORES}
            write_run(store, RunKey(dataset, arch, seed), run_table(example_id, labels, scores), {"test_accuracy": 0.9, "n_parameters": 100})


@pytest.fixture(scope="module", autouse=True)
def command_history(tmp_path_factory):
    """Successful commands append to a history in $GWASM_RESULTS: keep it out of the checkout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GWASM_RESULTS", str(tmp_path_factory.mktemp("history")))
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fingerprint") / "store"
    rng = np.random.default_rng(0)
    _write_dataset(path, "tiny", N_EXAMPLES, {"A": 6, "B": 6, "C": 2}, rng)
    _write_dataset(path, "small", 150, {"A": 3, "B": 3}, rng)
    return path


FAST = ("--splits", "3", "--random-draws", "3")


@pytest.fixture(scope="module")
def saved(store, tmp_path_factory) -> Path:
    """A fingerprint of the loss score, A v B on 4 markers, saved by the command line."""
    from gwasm_cli.main import main

    path = tmp_path_factory.mktemp("saved") / "fp.json"
    out = tmp_path_factory.mktemp("saved_out") / "tiny.fp"
    code = main(["fingerprint", "A", "B", "--store", str(store), "--dataset", "tiny", "--score", "loss", "--markers", "4",
                 "--save", str(path), "--out", str(out), *FAST])
    assert code == 0
    return path


def _assert_one_error(code: int, err: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwasm: error:"), err


# ------------------------------------------------------------------------------------------
# fingerprint
# ------------------------------------------------------------------------------------------


def test_fingerprint_writes_table_and_chart_and_prints_the_table(run_gwasm, store, tmp_path):
    prefix = tmp_path / "results" / "tiny.fingerprint"
    code, out, err = run_gwasm("fingerprint", "A", "B", "--store", store, "--dataset", "tiny", "--out", prefix, *FAST)
    assert code == 0, err
    table = pd.read_csv(f"{prefix}.tsv", sep="\t")
    assert tuple(table.columns) == SUMMARY_COLUMNS
    # --score all: the score chosen inside each split (issue 20), then every recorded score.
    assert list(table["SCORE"].unique()) == [SCORE_CHOSEN_PER_SPLIT, *SCORES]
    assert table["CHOSEN"].iloc[0] in ("loss:3", "aum:3", "loss:2,aum:1", "aum:2,loss:1") and table["CHOSEN"].iloc[1:].isna().all()
    assert sorted(table["SELECT"].unique()) == ["bottom", "random", "top"]
    assert (table["N_TRAIN_RUNS"] == 6).all() and (table["N_HELDOUT_RUNS"] == 6).all()
    assert (table.loc[table["SELECT"] == "top", "MEAN_ACCURACY"] == 1.0).all()
    assert Path(f"{prefix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["tiny.fingerprint.png", "tiny.fingerprint.tsv"]
    assert "MEAN_ACCURACY" in out and "random" in out
    assert "score chosen inside each split (nested cross-validation" in out and "The per-score rows are descriptive" in out


def test_default_prefix_is_under_gwasm_results(run_gwasm, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gwasm("fingerprint", "A", "B", "--store", store, "--dataset", "tiny", "--score", "aum", "--select", "top", *FAST)
    assert code == 0, err
    written = {p.name for p in (tmp_path / "gwasm-results").iterdir()}
    assert {"tiny.fingerprint.png", "tiny.fingerprint.tsv"} <= written


def test_save_with_all_scores_chooses_by_cross_validation_and_records_the_nested_accuracy(run_gwasm, store, tmp_path):
    """Changed with issue 20: the score was the one with the best per-score held-out accuracy, and
    that accuracy, chosen and scored on the same splits, was recorded."""
    path = tmp_path / "best.json"
    code, out, err = run_gwasm("fingerprint", "A", "B", "--store", store, "--dataset", "tiny", "--save", path, "--out", tmp_path / "p", *FAST)
    assert code == 0, err
    fitted = load_fingerprint(path)
    assert fitted.score in SCORES and f"saved the {fitted.score} (score chosen by cross-validation over the runs)" in out
    assert fitted.n_markers == 8 and fitted.classes == ("A", "B")
    heldout = fitted.heldout_accuracy
    assert heldout["procedure"] == PROCEDURE_CHOSEN and heldout["scores_considered"] == list(SCORES)
    assert sum(heldout["chosen_in_splits"].values()) == 3 and heldout["inner_splits"] == 5
    table = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert heldout["mean"] == table.loc[table["SCORE"] == SCORE_CHOSEN_PER_SPLIT, "MEAN_ACCURACY"].iloc[0]


def test_runs_too_few_to_choose_inside_each_split_save_a_fingerprint_without_accuracy(run_gwasm, store, tmp_path):
    """At train fraction 0.4 a split leaves 2 of the 6 runs of each architecture to fit: too few to
    split again. The per-score table is written, the score is still chosen on all runs, and no
    accuracy is claimed for it."""
    path = tmp_path / "fp.json"
    code, out, err = run_gwasm("fingerprint", "A", "B", "--store", store, "--dataset", "tiny", "--train-fraction", "0.4",
                               "--save", path, "--out", tmp_path / "p", *FAST)  # fmt: skip
    assert code == 0, err
    assert "no held-out accuracy for a score chosen among 2: architecture 'A' has 6 run(s)" in out and "name one score" in out
    fitted = load_fingerprint(path)
    assert fitted.heldout_accuracy is None and "too few to split again" in fitted.provenance["heldout_accuracy_missing"]
    assert "(no held-out accuracy; training accuracy" in out
    assert SCORE_CHOSEN_PER_SPLIT not in set(pd.read_csv(tmp_path / "p.tsv", sep="\t")["SCORE"])


def test_saved_fingerprint_describes_the_runs(saved, store):
    fitted = load_fingerprint(saved)
    assert (fitted.dataset, fitted.n_examples, fitted.score) == ("tiny", N_EXAMPLES, "loss")
    assert set(fitted.marker_ids.tolist()) <= set(range(10))
    assert fitted.provenance["runs"] == {"A": list(range(6)), "B": list(range(6))}
    assert fitted.provenance["seed"] == 0 and fitted.provenance["store"] == str(store.resolve())
    assert json.loads(saved.read_text())["format_version"] == 3
    # The evaluation computed just before it, of this score's top-4 markers: the accuracy identify shows.
    heldout = fitted.heldout_accuracy
    assert heldout["score"] == "loss" and heldout["selection"] == "top" and heldout["k"] == 4
    assert heldout["procedure"] == PROCEDURE_GIVEN and heldout["scores_considered"] == ["loss"]
    assert heldout["mean"] == 1.0 and heldout["low"] <= heldout["mean"] <= heldout["high"]
    assert (heldout["n_splits"], heldout["n_train_runs"], heldout["n_heldout_runs"]) == (3, 6, 6)
    assert fitted.reference is not None and len(fitted.reference.reference_distance_) == 12
    assert fitted.penalty < float("inf") and fitted.provenance["penalty"]["folds"] == 5


# ------------------------------------------------------------------------------------------
# identify
# ------------------------------------------------------------------------------------------


def _parse(out: str) -> pd.DataFrame:
    from io import StringIO

    return pd.read_csv(StringIO(out), sep="\t")


IDENTIFY_COLUMNS = ["RUN", "PREDICTED", "P(A)", "P(B)", "DIST(A)", "DIST(B)", "THRESHOLD", "AS_FAR", "OOD_P", "USED_IN_FIT"]


def test_identify_every_run_of_an_arch_matches_the_loaded_fingerprint(run_gwasm, saved, store):
    """Changed with issue 14: the table gained the distance columns and USED_IN_FIT (it had only
    RUN, PREDICTED and P(<class>)), and stderr now says the held-out accuracy and that these runs
    were used to fit the fingerprint."""
    code, out, err = run_gwasm("identify", saved, "--arch", "B", "--store", store)
    assert code == 0, err
    table = _parse(out)
    assert list(table.columns) == IDENTIFY_COLUMNS
    assert table["RUN"].tolist() == [f"B seed {s}" for s in range(6)]
    assert (table["PREDICTED"] == "B").all()
    assert (table["USED_IN_FIT"] == "yes").all()
    fitted = load_fingerprint(saved)
    matrix = load_score_matrices(store, "tiny", ["loss"], ["B"])["loss"]
    expected = fitted.predict_proba(fitted.marker_features(matrix.example_id, matrix.values))
    np.testing.assert_allclose(table[["P(A)", "P(B)"]].to_numpy(), expected, atol=5e-6)  # printed to 6 significant digits
    lines = err.strip().splitlines()
    assert lines[0].startswith("fingerprint of A vs B on 4 loss markers: held-out accuracy 1.00 (95% of 3 splits within 1.00-1.00")
    assert "'none of these' beyond the 0.99 bound of 12 training runs' left-out distances" in lines[0]
    assert lines[1].startswith("note: 6 of these runs (B seed 0, B seed 1, B seed 2 and 3 more) were used to fit the fingerprint")
    assert len(lines) == 2


def test_identify_runs_the_fingerprint_did_not_see(run_gwasm, saved, store):
    code, out, err = run_gwasm("identify", saved, "--arch", "C", "--store", store, "--ood-quantile", "0.95")
    assert code == 0, err
    table = _parse(out)
    assert (table["USED_IN_FIT"] == "no").all() and (table["PREDICTED"] == "A").all()  # C is A without B's effect
    assert "were used to fit" not in err and "the 0.95 bound" in err
    assert (table["THRESHOLD"] == table["THRESHOLD"].iloc[0]).all() and (table["OOD_P"] > 0.05).all()


def test_identify_with_a_version_1_fingerprint_says_what_it_lacks(run_gwasm, saved, tmp_path):
    """An old file: no penalty, reference or held-out accuracy; it loads, names every run, and says so."""
    document = json.loads(saved.read_text())
    document["format_version"] = 1
    del document["reference"], document["logistic"]["C"], document["provenance"]["heldout_accuracy"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    np.save(tmp_path / "run.npy", np.zeros(N_EXAMPLES))
    code, out, err = run_gwasm("identify", old, "--scores", tmp_path / "run.npy")
    assert code == 0, err
    table = _parse(out)
    assert table["USED_IN_FIT"].tolist() == ["unknown"] and table["PREDICTED"].tolist() == ["A"]
    assert table[["DIST(A)", "DIST(B)", "THRESHOLD", "AS_FAR", "OOD_P"]].isna().all().all()
    assert "NA" in out.splitlines()[1].split("\t")
    assert "no held-out accuracy recorded; no out-of-distribution reference" in err
    assert "note: this fingerprint has no held-out accuracy or out-of-distribution reference recorded; refit it with `gwasm fingerprint --save`" in err


def test_identify_one_seed(run_gwasm, saved, store):
    code, out, err = run_gwasm("identify", saved, "--arch", "A", "--seed", "3", "--store", store)
    assert code == 0, err
    table = _parse(out)
    assert table["RUN"].tolist() == ["A seed 3"] and table["PREDICTED"].tolist() == ["A"]


def test_identify_from_csv_and_npy_files(run_gwasm, saved, store, tmp_path):
    matrix = load_score_matrices(store, "tiny", ["loss"], ["B"])["loss"]
    np.save(tmp_path / "run.npy", matrix.values[0])
    pd.DataFrame({"example_id": matrix.example_id, "loss": matrix.values[0]}).to_csv(tmp_path / "run.csv", index=False)
    outputs = []
    for name in ("run.npy", "run.csv"):
        code, out, err = run_gwasm("identify", saved, "--scores", tmp_path / name)
        assert code == 0, err
        outputs.append(_parse(out).drop(columns="RUN"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    assert outputs[0]["PREDICTED"].tolist() == ["B"]


# ------------------------------------------------------------------------------------------
# Bad input: exit 2, one line, nothing written
# ------------------------------------------------------------------------------------------


FINGERPRINT_ERRORS = [
    (["--markers", "0"], "--markers must be at least 1"),
    (["--markers", "201"], "exceeds the 200 examples"),
    (["--score", "nonsense"], "unknown score 'nonsense'"),
    (["--score", "grand"], "score 'grand' was not recorded"),
    (["--select", "best"], "unknown marker selection 'best'"),
    (["--train-fraction", "0"], "strictly between 0 and 1"),
    (["--train-fraction", "1"], "strictly between 0 and 1"),
    (["--train-fraction", "0.2"], "architecture 'A' has 6 run(s)"),
    (["--select", "bottom", "--save", "{tmp}/fp.json"], "add top to the selections"),
    (["--save", "{tmp}"], "it is a directory"),
    (["--inner-splits", "0"], "--inner-splits must be an integer of at least 1"),
]


@pytest.mark.parametrize(("options", "message"), FINGERPRINT_ERRORS, ids=[m for _, m in FINGERPRINT_ERRORS])
def test_fingerprint_refuses_bad_options(run_gwasm, store, tmp_path, options, message):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    code, out, err = run_gwasm("fingerprint", "A", "B", "--store", store, "--dataset", "tiny", "--out", tmp_path / "x", *FAST, *options)
    _assert_one_error(code, err)
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("archs", "message"),
    [(["A"], "give at least two, got 1"), (["A", "C"], "architecture 'C' has 2 run(s)"), (["A", "Z"], "no runs of Z")],
)
def test_fingerprint_refuses_architectures_it_cannot_use(run_gwasm, store, tmp_path, archs, message):
    code, _, err = run_gwasm("fingerprint", *archs, "--store", store, "--dataset", "tiny", "--out", tmp_path / "x", *FAST)
    _assert_one_error(code, err)
    assert message in err
    assert list(tmp_path.iterdir()) == []


def _edited(saved: Path, tmp_path: Path, **changes) -> Path:
    document = json.loads(saved.read_text())
    document.update(changes)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    return path


def test_identify_refuses_another_dataset(run_gwasm, saved, store, tmp_path):
    code, _, err = run_gwasm("identify", saved, "--arch", "A", "--dataset", "small", "--store", store)
    _assert_one_error(code, err)
    assert "fitted on dataset 'tiny'; these scores come from 'small'" in err
    # Same name, other size: the fingerprint claims 'small' but was fitted on 200 examples.
    code, _, err = run_gwasm("identify", _edited(saved, tmp_path, dataset="small"), "--arch", "A", "--store", store)
    _assert_one_error(code, err)
    assert "has 200 examples; these scores cover 150" in err
    np.save(tmp_path / "short.npy", np.zeros(150))
    code, _, err = run_gwasm("identify", saved, "--scores", tmp_path / "short.npy")
    _assert_one_error(code, err)
    assert "these scores cover 150" in err


def test_identify_refuses_scores_without_the_markers(run_gwasm, saved, tmp_path):
    fitted = load_fingerprint(saved)
    values = np.ones(N_EXAMPLES)
    values[fitted.marker_ids[0]] = np.nan
    np.save(tmp_path / "nan.npy", values)
    code, _, err = run_gwasm("identify", saved, "--scores", tmp_path / "nan.npy")
    _assert_one_error(code, err)
    assert f"marker example(s) {fitted.marker_ids[0]} are missing (NaN)" in err
    ids = np.setdiff1d(np.arange(N_EXAMPLES), fitted.marker_ids[:2])
    pd.DataFrame({"example_id": ids, "loss": 1.0}).to_csv(tmp_path / "partial.csv", index=False)
    code, _, err = run_gwasm("identify", saved, "--scores", tmp_path / "partial.csv")
    _assert_one_error(code, err)
    assert "lack 2 of the 4 marker examples" in err


@pytest.mark.parametrize(
    "text", ["", "{\"format\": \"gwasm-fingerprint\"", "[]", "{\"format\": \"gwasm-fingerprint\", \"format_version\": 1}"]
)
def test_identify_refuses_a_corrupt_fingerprint(run_gwasm, store, tmp_path, text):
    path = tmp_path / "corrupt.json"
    path.write_text(text)
    code, _, err = run_gwasm("identify", path, "--arch", "A", "--store", store)
    _assert_one_error(code, err)
    assert str(path) in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "either --arch"),
        (["--arch", "A", "--scores", "x.csv"], "not both"),
        (["--arch", "A", "--seed", "9"], "no run of 'A' with seed 9"),
        (["--arch", "Z"], "no runs of Z"),
        (["--arch", "A", "--ood-quantile", "1"], "--ood-quantile must lie in [0.5, 1), got 1.0"),
    ],
)
def test_identify_refuses_bad_run_choices(run_gwasm, saved, store, options, message):
    code, _, err = run_gwasm("identify", saved, "--store", store, *options)
    _assert_one_error(code, err)
    assert message in err
