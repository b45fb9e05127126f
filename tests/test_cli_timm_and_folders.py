"""`gwasm collect` of `timm:` architectures and of image folders, end to end, and what downstream reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gwas_models.formats.store import PROVENANCE_FILE, RunKey, read_dataset_info, run_dir
from gwas_models.scores import SCORE_NAMES

TINY_VIT = "timm:vit_tiny_patch16_224"
TINY_VIT_OPTIONS = ("--arch-option", "depth=1", "--arch-option", "embed_dim=16", "--arch-option", "num_heads=2")
FAST = ("--epochs", "2", "--quiet", "--device", "cpu", "--threads", "1", "--batch-size", "32")


def _assert_one_error_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gwasm: error:"), err
    return lines[0]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Three classes of 10 grey 8x8 PNG images: a bright row, column or diagonal, plus noise."""
    root = tmp_path_factory.mktemp("images") / "shapes"
    rng = np.random.default_rng(0)
    patterns = {"row": np.eye(8)[[3] * 8], "column": np.eye(8)[[3] * 8].T, "diagonal": np.eye(8)}
    for name, pattern in patterns.items():
        (root / name).mkdir(parents=True)
        for index in range(10):
            pixels = np.clip(200 * pattern + rng.integers(0, 40, size=(8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{index:02d}.png")
    return root


def test_an_image_folder_is_collected_with_its_class_names_and_identity(run_gwasm, tmp_path, image_folder):
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", "mlp-16", "--dataset", image_folder, "--runs", "2", "--store", store, *FAST)
    assert code == 0, err
    info = read_dataset_info(store, "shapes")
    assert info["class_names"] == ["column", "diagonal", "row"] and info["n_examples"] == 24
    assert info["input_shape"] == [1, 8, 8] and info["identity"]["n_files"] == 30
    runs = pd.read_parquet(store)
    assert len(runs) == 48 and runs["loss"].notna().all()


def test_a_changed_folder_or_image_size_is_refused_under_the_same_name(run_gwasm, tmp_path, image_folder):
    store = tmp_path / "store"
    assert run_gwasm("collect", "--arch", "mlp-16", "--dataset", image_folder, "--store", store, *FAST)[0] == 0
    code, _, err = run_gwasm(
        "collect", "--arch", "mlp-16", "--dataset", image_folder, "--image-size", "12", "--seeds", "1", "--store", store, *FAST
    )
    assert "another image size" in _assert_one_error_line(code, err)
    changed = tmp_path / "copy" / "shapes"
    changed.parent.mkdir()
    import shutil

    shutil.copytree(image_folder, changed)
    pixels = np.asarray(Image.open(changed / "row" / "00.png")).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels, mode="L").save(changed / "row" / "00.png")
    code, _, err = run_gwasm("collect", "--arch", "mlp-16", "--dataset", changed, "--seeds", "1", "--store", store, *FAST)
    assert "other image files" in _assert_one_error_line(code, err)
    assert sorted(p.name for p in (store / "dataset=shapes" / "arch=mlp-16").iterdir()) == ["seed=0"]


def test_image_size_without_a_folder_is_one_error_line(run_gwasm, tmp_path):
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--image-size", "16", "--store", tmp_path / "store", *FAST)
    assert "--image-size" in _assert_one_error_line(code, err)


def test_a_timm_vit_is_collected_with_every_score_and_its_model_arguments(run_gwasm, tmp_path, tiny_digits_npz):
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", TINY_VIT, *TINY_VIT_OPTIONS, "--dataset", tiny_digits_npz, "--store", store, *FAST)
    assert code == 0, err
    provenance = json.loads((run_dir(store, RunKey("tiny_digits", TINY_VIT, 0)) / PROVENANCE_FILE).read_text())
    assert provenance["arch_options"] == {"depth": 1, "embed_dim": 16, "num_heads": 2}
    model = provenance["model"]
    assert model["timm_model"] == "vit_tiny_patch16_224" and model["timm_version"]
    assert model["model_args"]["patch_size"] == 2 and model["model_args"]["img_size"] == 8
    assert model["model_args"]["pretrained"] is False and model["model_args"]["depth"] == 1
    runs = pd.read_parquet(store)
    for score in SCORE_NAMES:
        assert runs[score].notna().all(), score


def test_timm_errors_are_one_line(run_gwasm, tmp_path):
    code, _, err = run_gwasm("collect", "--arch", "timm:vit_tiny_patch16_2244", "--store", tmp_path / "store", *FAST)
    line = _assert_one_error_line(code, err)
    assert "vit_tiny_patch16_224" in line  # the close match is offered
    code, _, err = run_gwasm("collect", "--arch", TINY_VIT, "--arch-option", "no_such_option=3", "--store", tmp_path / "store", *FAST)
    assert "no_such_option" in _assert_one_error_line(code, err)
    code, _, err = run_gwasm("collect", "--arch", TINY_VIT, "--arch-option", "depth", "--store", tmp_path / "store", *FAST)
    assert "--arch-option" in _assert_one_error_line(code, err)
    assert not (tmp_path / "store").exists()


def test_timm_runs_go_through_association_and_fingerprint(run_gwasm, tmp_path, tiny_digits_npz):
    store = tmp_path / "store"
    common = ("--dataset", tiny_digits_npz, "--runs", "4", "--store", store, *FAST)
    assert run_gwasm("collect", "--arch", TINY_VIT, *TINY_VIT_OPTIONS, *common)[0] == 0
    assert run_gwasm("collect", "--arch", "mlp-16", *common)[0] == 0
    code, out, err = run_gwasm("associate", "mlp-16", TINY_VIT, "--store", store, "--out", tmp_path / "res" / "tiny")
    assert code == 0, err
    parquet = next((tmp_path / "res").glob("*.sumstats.parquet"))
    assert run_gwasm("manhattan", parquet)[0] == 0
    code, out, err = run_gwasm("fingerprint", "mlp-16", TINY_VIT, "--store", store, "--score", "loss", "--splits", "2",
                               "--random-draws", "2", "--out", tmp_path / "res" / "fp")
    assert code == 0, err
