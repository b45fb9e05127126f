"""`gwasm demo`: the whole pipeline on the embedded digits data, as the commands a user would type.

The demo is a script of ordinary `gwasm` commands run one after another in this process (each one
the thin front end of its library function), so its history in the report is a recipe the user can
rerun or adapt step by step.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from gwasm_cli.app import app

#: The timm vision transformer of the CNN-vs-ViT study.
VIT = "timm:vit_tiny_patch16_224"
#: How the demo trains its ViT: two blocks of width 64 over 2x2-pixel patches of the 8x8 digits,
#: average-pooled tokens, AdamW without augmentation and half as many epochs again as the CNN. A ViT
#: trained with the CNNs' SGD recipe stays near chance here (measured: 12% test accuracy), so each
#: family is trained with its own usual recipe, and the comparison is of architecture and recipe.
VIT_RECIPE: tuple[str, ...] = (
    "--arch-option", "depth=2", "--arch-option", "embed_dim=64", "--arch-option", "num_heads=4",
    "--arch-option", "global_pool=avg", "--arch-option", "class_token=False",
    "--optimizer", "adamw", "--lr", "0.006", "--weight-decay", "0.05", "--augment", "none",
)  # fmt: skip
VIT_EPOCH_FACTOR = 1.5
#: The demo's studies: their architectures, in order (the first two are compared in detail).
STUDIES: dict[str, tuple[str, ...]] = {
    "architectures": ("resnet20", "vgg11-16", "mlp"),
    "cnn-vs-vit": ("resnet20", VIT),
}


#: The architecture whose runs the difficulty analyses describe (default: the study's first).
ANALYSED: dict[str, str] = {"cnn-vs-vit": VIT}


def _collect_options(arch: str, epochs: int) -> list[str]:
    """The training options of one architecture of the demo."""
    if arch == VIT:
        return ["--epochs", str(max(1, round(epochs * VIT_EPOCH_FACTOR))), *VIT_RECIPE]
    return ["--epochs", str(epochs)]


def results_folder(directory: Path, study: str) -> Path:
    """Where a study's results go: ``results/`` for the default study, ``results-<study>/`` else."""
    return directory / ("results" if study == "architectures" else f"results-{study}")


def demo_steps(
    directory: Path,
    archs: tuple[str, ...],
    runs: int,
    epochs: int,
    workers: int,
    quiet: bool,
    results: Path | None = None,
    analysed: str | None = None,
    batch_replicates: str = "auto",
) -> list[tuple[str, list[str]]]:
    """The demo's commands: (what it shows, argv) pairs, in order."""
    from gwas_models.workflows.associate import comparison_stem, safe_name

    store = str(directory / "store")
    results = results if results is not None else results_folder(directory, "architectures")
    prefix = str(results / "digits")
    first, second = archs[0], archs[1]
    pair = str(comparison_stem(prefix, (first, second)))
    # The paper ranks examples by their evidence over every pair of architectures (its Figure 1).
    everything = str(comparison_stem(prefix, archs)) if len(archs) > 2 else pair
    quiet_flag = ["--quiet"] if quiet else []
    steps: list[tuple[str, list[str]]] = []
    for arch in archs:
        steps.append(
            (
                f"train {runs} runs of {arch}",
                ["collect", "--arch", arch, "--runs", str(runs), *_collect_options(arch, epochs), "--store", store,
                 "--workers", str(workers), "--batch-replicates", batch_replicates, *quiet_flag],
            )
        )  # fmt: skip
    steps += [
        ("list the runs", ["runs", "--store", store]),
        ("associate every pair of architectures", ["associate", *archs, "--store", store, "--out", prefix]),
        # Figures go beside their summary statistics, under the names they get by hand.
        (f"Manhattan plot of {first} vs {second}", ["manhattan", f"{pair}.sumstats.parquet"]),
        ("Miami plot per score", ["manhattan", f"{pair}.sumstats.parquet", "--signed", "--facet"]),
        ("QQ plot", ["qq", f"{pair}.sumstats.parquet"]),
        ("gallery of sensitive examples", ["gallery", f"{everything}.sumstats.parquet", "--store", store]),
        (
            "fingerprint the architectures",
            ["fingerprint", first, second, "--store", store, "--out", f"{prefix}.fingerprint", "--save", f"{prefix}.fingerprint.json"],
        ),
        (f"identify the runs of {archs[2] if len(archs) > 2 else second}", ["identify", f"{prefix}.fingerprint.json", "--arch", archs[-1], "--store", store]),
    ]
    if len(archs) > 2:
        third = str(comparison_stem(prefix, (first, archs[2])))
        steps.insert(
            len(archs) + 3,
            (f"Manhattan plot of {first} vs {archs[2]}", ["manhattan", f"{third}.sumstats.parquet"]),
        )
    analysed = analysed or first
    for analysis in ("variance", "stability", "correlate", "pca"):
        out = f"{prefix}.{safe_name(analysed)}.{analysis}"
        steps.append((f"{analysis} of {analysed}", [analysis, analysed, "--store", store, "--out", out]))
    if len(archs) > 2:
        steps.append(("effect vs model size", ["sizes", *archs, "--store", store, "--out", f"{prefix}.sizes"]))
    steps.append(("HTML report", ["report", str(results), "--store", store, "--out", str(results / "report.html")]))
    return steps


@app.command()
def demo(
    directory: Path = typer.Option(Path("gwasm-demo"), "--dir", help="Folder for the demo's store and results."),
    study: str = typer.Option(
        "architectures",
        "--study",
        help="architectures: resnet20, a quarter-width VGG-11 and an MLP (the paper's question); "
        "cnn-vs-vit: resnet20 against a small vision transformer from timm.",
    ),
    archs: Optional[str] = typer.Option(None, help="Comma-separated architectures instead of the study's; the first two are compared in detail."),
    runs: int = typer.Option(10, help="Runs per architecture."),
    epochs: int = typer.Option(10, help="Training epochs per run."),
    workers: int = typer.Option(2, help="Worker processes training runs in parallel."),
    batch_replicates: str = typer.Option(
        "auto", help="Runs each worker trains at once as one batched model (auto: as many as fit; 1: one at a time)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the whole pipeline on the embedded digits data and write an HTML report.

    Trains resnet20, a quarter-width VGG-11 and an MLP (10 runs each, 5 at a time per worker as one batched model), associates, plots, fingerprints,
    runs the paper's difficulty analyses and writes gwasm-demo/results/report.html. With
    --study cnn-vs-vit it compares resnet20 with a small ViT from timm instead and writes
    gwasm-demo/results-cnn-vs-vit/report.html. Rerunning reuses the runs already trained.

    Example: gwasm demo --study cnn-vs-vit
    """
    from gwas_models.errors import InputError
    from gwasm_cli.main import main

    if study not in STUDIES:
        raise InputError(f"unknown --study {study!r}; choose one of {', '.join(STUDIES)}")
    arch_list = STUDIES[study] if archs is None else tuple(a.strip() for a in archs.split(",") if a.strip())
    if len(arch_list) < 2:
        raise InputError(f"--archs needs at least two architectures, got {archs!r}")
    if runs < 4:
        raise InputError(f"--runs must be at least 4 (fingerprinting splits runs into training and held-out), got {runs}")
    results = results_folder(directory, study)
    results.mkdir(parents=True, exist_ok=True)
    analysed = ANALYSED.get(study) if archs is None else None
    steps = demo_steps(directory, arch_list, runs, epochs, workers, quiet, results, analysed, batch_replicates)
    started = time.perf_counter()
    for index, (what, argv) in enumerate(steps, start=1):
        typer.echo(f"\n[{index}/{len(steps)}] {what}: gwasm {shlex.join(argv)}", err=False)
        sys.stdout.flush()
        # The report's command history goes with the demo's own results.
        code = main(argv, history_dir=results)
        if code != 0:
            raise typer.Exit(code)
    minutes, seconds = divmod(time.perf_counter() - started, 60)
    typer.echo(f"\ndemo finished in {int(minutes)} min {seconds:.0f} s; open {results / 'report.html'}")
