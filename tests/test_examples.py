"""The scripts in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_own_training_loop_writes_runs_that_gwasm_reads(tmp_path, run_gwasm):
    store = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "own_training_loop.py"), "--runs", "2", "--epochs", "2", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy") == 2
    runs = pd.read_parquet(store)
    assert set(runs["arch"]) == {"my-cnn"} and sorted(runs["seed"].unique()) == [0, 1]
    assert runs["aum"].notna().all() and runs["vog"].notna().all()
    code, out, _ = run_gwasm("runs", "--store", store)
    assert code == 0 and "my-cnn" in out


def test_paper_protocol_script_is_valid_bash_using_real_commands():
    script = EXAMPLES / "cifar10_paper_protocol.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    for command in ("collect", "associate", "manhattan", "qq", "gallery", "fingerprint", "variance", "stability", "correlate", "pca", "sizes", "report"):
        assert f"gwasm {command}" in text or f'gwasm "$analysis"' in text
    for arch in ("resnet20", "resnet20-64", "resnet34", "vgg16-16", "vgg11"):
        assert arch in text


def test_cnn_vs_vit_script_is_valid_bash_and_its_vit_builds_for_cifar():
    import re

    from gwas_models.training.models import build_model, parse_arch_options

    script = EXAMPLES / "cifar10_cnn_vs_vit.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    for command in ("collect", "associate", "manhattan", "qq", "gallery", "fingerprint", "report"):
        assert f"gwasm {command}" in text
    arch = re.search(r"^VIT=timm:(\S+)$", text, re.MULTILINE).group(1)
    options = parse_arch_options(re.findall(r"--arch-option (\S+)", text))
    model = build_model(f"timm:{arch}", 10, (3, 32, 32), init_seed=0, options=options)
    assert model.patch_embed.patch_size == (4, 4) and len(model.blocks) == 6 and model.embed_dim == 256
