"""Runs keyed by their configuration: a changed configuration under a label is refused, ``--label``
keeps configurations apart, and runs trained otherwise are never pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gwas_models.errors import InputError, StoreError
from gwas_models.formats import store as S
from gwas_models.formats.configuration import configuration_id, run_configuration
from gwas_models.formats.store import RunKey
from gwas_models.scores import LEGACY_COLUMNS, definition_record

torch.set_num_threads(1)

from test_cli_collect import FAST, _count_runs  # noqa: E402  (a test module of this folder)


def _store_entries(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in Path(store).rglob("*"))


# --------------------------------------------------------------------------------------------
# Through the command line
# --------------------------------------------------------------------------------------------


def test_a_changed_configuration_under_a_label_is_refused_before_anything_trains(tmp_path, tiny_digits_npz, run_gwasm, monkeypatch):
    store = tmp_path / "store"
    base = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--store", store, *FAST]
    assert run_gwasm(*base, "--epochs", "1", "--runs", "2")[0] == 0
    before = _store_entries(store)
    trained = _count_runs(monkeypatch)
    code, out, err = run_gwasm(*base, "--epochs", "2", "--seeds", "2-3")
    assert (code, out, trained) == (2, "", [])
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gwasm: error: --label 'mlp' holds runs of tiny_digits in {store} trained with epochs=1 (this collect: epochs=2)")
    assert lines[0].endswith("collect under another label, or into another store")
    assert _store_entries(store) == before
    # the same configuration is welcome: eval batch size, threads and device are not part of it
    code, out, err = run_gwasm(*base, "--epochs", "1", "--seeds", "2", "--threads", "2")
    assert code == 0, err
    assert trained == [2]


def test_a_label_keeps_two_configurations_apart_and_associate_compares_them(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    base = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--runs", "3", "--store", store, *FAST]
    assert run_gwasm(*base)[0] == 0
    code, out, err = run_gwasm(*base, "--lr", "0.2", "--label", "mlp-lr0.2")
    assert code == 0, err
    assert "tiny_digits\tmlp-lr0.2\tseed 2\t" in out
    code, out, _ = run_gwasm("runs", "--store", store)
    assert code == 0
    assert [line.split()[:4] for line in out.strip().splitlines()[1:]] == [["tiny_digits", "mlp", "3", "0-2"], ["tiny_digits", "mlp-lr0.2", "3", "0-2"]]
    plain, tuned = (S.read_provenance(store, RunKey("tiny_digits", label, 0)) for label in ("mlp", "mlp-lr0.2"))
    assert (plain["label"], plain["arch"], tuned["label"], tuned["arch"]) == ("mlp", "mlp", "mlp-lr0.2", "mlp")
    assert tuned["configuration"] == {**plain["configuration"], "lr": 0.2}
    assert tuned["configuration_id"] != plain["configuration_id"]
    assert S.read_run_configuration(store, RunKey("tiny_digits", "mlp-lr0.2", 1)) == tuned["configuration"]
    code, out, err = run_gwasm("associate", "mlp", "mlp-lr0.2", "--dataset", "tiny_digits", "--store", store, "--scores", "loss", "--out", tmp_path / "res" / "lr")
    assert code == 0, err
    assert "mlp" in out and "mlp-lr0.2" in out


@pytest.mark.parametrize("label", ["", "a/b", "a\\b", "a=b", ".hidden", "_private"])
def test_a_label_must_name_a_directory_of_the_store(label, tmp_path, tiny_digits_npz, run_gwasm):
    with pytest.raises(InputError) as caught:
        S.check_label(label)
    assert caught.value.parameter == "label" and caught.value.message.startswith("label ")
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--label", label, "--store", tmp_path / "store", *FAST)
    assert code == 2 and out == "" and err.startswith("gwasm: error: --label ") and len(err.splitlines()) == 1
    assert not (tmp_path / "store").exists()


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _write(store: Path, label: str, seed: int, epochs: int, arch: str = "mlp", **extra) -> None:
    scores = {"loss": np.random.default_rng(seed).random(6)}
    provenance = {
        "dataset": "d",
        "label": label,
        "arch": arch,
        "seed": seed,
        "config": {"epochs": epochs, "lr": 0.05, "eval_batch_size": 1024},
        "score_definitions": definition_record(["loss"]),
        **extra,
    }
    S.write_run(store, RunKey("d", label, seed), S.run_table(np.arange(6), np.arange(6) % 2, scores), provenance)


@pytest.fixture
def mixed_store(tmp_path):
    store = tmp_path / "store"
    S.write_dataset_info(store, "d", {"name": "d", "n_examples": 6, "class_names": ["a", "b"], "source": {}})
    for seed in (0, 1):
        _write(store, "a", seed, epochs=1)
    _write(store, "a", 2, epochs=2)
    for seed in (0, 1, 2):
        _write(store, "b", seed, epochs=1, arch="vgg11")
    return store


def test_runs_of_other_configurations_under_one_label_are_never_pooled(mixed_store, run_gwasm):
    with pytest.raises(StoreError) as caught:
        S.load_score_matrices(mixed_store, "d", ["loss"], archs=["a", "b"])
    message = str(caught.value)
    assert "runs of 'a' on d were trained differently" in message
    assert "epochs=1 (seeds 0-1), epochs=2 (seeds 2)" in message and "another label" in message
    assert S.load_score_matrices(mixed_store, "d", ["loss"], archs=["b"])["loss"].values.shape == (3, 6)
    code, out, err = run_gwasm("associate", "a", "b", "--dataset", "d", "--store", mixed_store)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "epochs=2 (seeds 2)" in err


def test_execution_details_do_not_split_runs(mixed_store):
    _write(mixed_store, "b", 3, epochs=1, arch="vgg11", device="cuda:0", n_threads=8, host="node9", job_id="77_3", batched={"n_replicates": 4})
    configuration = S.read_run_configuration(mixed_store, RunKey("d", "b", 3))
    assert configuration == S.read_run_configuration(mixed_store, RunKey("d", "b", 0))
    assert S.load_score_matrices(mixed_store, "d", ["loss"], archs=["b"])["loss"].values.shape == (4, 6)


def test_a_collect_that_matches_some_runs_names_the_seeds_that_differ(mixed_store):
    planned = run_configuration({"arch": "mlp", "config": {"epochs": 1, "lr": 0.05}, "score_definitions": definition_record(["loss"]), "dataset": "d"})
    with pytest.raises(StoreError) as caught:
        S.check_configuration(mixed_store, "d", "a", planned)
    assert caught.value.parameter == "label"
    assert "trained with epochs=2 (seeds 2) (this collect: epochs=1)" in str(caught.value)
    S.check_configuration(mixed_store, "d", "b", {**planned, "arch": "vgg11"})
    S.check_configuration(mixed_store, "d", "new-label", planned)


# --------------------------------------------------------------------------------------------
# The configuration itself
# --------------------------------------------------------------------------------------------

OLD_CONFIG = {"epochs": 4, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine", "warmup_epochs": 1.0,
              "augment": "crop", "crop_padding": 1, "early_epoch": None, "vog_checkpoints": 8, "eval_batch_size": 1024}  # fmt: skip


def _new_fields(**config) -> dict:
    """What a collect today plans, for the run an old gwas-models wrote with OLD_CONFIG."""
    from gwas_models.training.train import TrainConfig

    full = TrainConfig(**{**{k: v for k, v in OLD_CONFIG.items() if k != "vog_checkpoints"}, **config}).to_dict()
    names = [LEGACY_COLUMNS[c] for c in ("loss", "el2n", "vog")]
    return {"arch": "mlp", "arch_options": {}, "config": full, "score_definitions": definition_record(names), "dataset": "d",
            "dataset_source": {"kind": "npz", "path": "/elsewhere/d.npz"}, "n_examples": 6}  # fmt: skip


def test_a_run_from_before_configurations_is_read_as_what_it_computed():
    # Written before optimizers, architecture options and definition records: version-1 columns.
    old = {"arch": "mlp", "config": OLD_CONFIG, "scores": ["loss", "el2n", "vog"], "early_epoch": 2, "vog_epochs": [1, 2, 3, 4],
           "dataset": "d", "dataset_source": {"kind": "npz", "path": "/data/d.npz"}, "n_examples": 6, "device": "cpu"}  # fmt: skip
    read = run_configuration(old, definitions_version=1)
    assert read == run_configuration(_new_fields())
    assert read["optimizer"] == "sgd" and read["scores"] == ["el2n", "loss:presentations", "vog:logit"]
    assert read["vog_epochs"] == [1, 2, 3, 4] and read["early_epoch"] == 2 and "eval_batch_size" not in read
    assert configuration_id(read) == configuration_id(run_configuration(_new_fields()))
    assert run_configuration(old) != read  # read as today's definitions, its bare loss would be another score
    assert run_configuration(_new_fields(optimizer="adamw")) != read
    assert run_configuration(_new_fields(early_epoch=3))["early_epoch"] == 3


def test_score_parameters_count_only_for_the_scores_that_use_them():
    fields = _new_fields()
    fields["score_definitions"] = definition_record(["loss"])
    configuration = run_configuration(fields)
    assert "early_epoch" not in configuration and "vog_epochs" not in configuration
    assert run_configuration({**fields, "config": {**fields["config"], "early_epoch": 3}}) == configuration


def test_a_stored_old_run_is_read_with_its_tables_definitions_version(tmp_path):
    store = tmp_path
    directory = S.run_dir(store, RunKey("d", "mlp", 0))
    directory.mkdir(parents=True)
    pq.write_table(pa.table({"example_id": np.arange(6), "label": np.arange(6) % 2, "loss": np.ones(6)}), directory / S.RUN_FILE)
    (directory / S.PROVENANCE_FILE).write_text('{"arch": "mlp", "scores": ["loss"], "config": {"epochs": 4}}')
    assert S.read_run_configuration(store, RunKey("d", "mlp", 0))["scores"] == ["loss:presentations"]
    S.write_run(store, RunKey("d", "mlp", 1), S.run_table(np.arange(6), np.arange(6) % 2, {"loss": np.ones(6)}), {"arch": "mlp", "scores": ["loss"]})
    assert S.read_run_configuration(store, RunKey("d", "mlp", 1))["scores"] == ["loss"]
