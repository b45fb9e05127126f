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

import typer

from gwasm_cli.app import app

DEMO_ARCHS = ("resnet20", "vgg11-16", "mlp")


def demo_steps(
    directory: Path, archs: tuple[str, ...], runs: int, epochs: int, workers: int, quiet: bool
) -> list[tuple[str, list[str]]]:
    """The demo's commands: (what it shows, argv) pairs, in order."""
    store = str(directory / "store")
    results = directory / "results"
    prefix = str(results / "digits")
    first, second = archs[0], archs[1]
    pair = f"{prefix}.{first}_vs_{second}"
    # The paper ranks examples by their evidence over every pair of architectures (its Figure 1).
    everything = f"{prefix}.{'_vs_'.join(archs)}" if len(archs) > 2 else pair
    quiet_flag = ["--quiet"] if quiet else []
    steps: list[tuple[str, list[str]]] = []
    for arch in archs:
        steps.append(
            (
                f"train {runs} runs of {arch}",
                ["collect", "--arch", arch, "--runs", str(runs), "--epochs", str(epochs), "--store", store, "--workers", str(workers), *quiet_flag],
            )
        )
    steps += [
        ("list the runs", ["runs", "--store", store]),
        ("associate every pair of architectures", ["associate", *archs, "--store", store, "--out", prefix]),
        (f"Manhattan plot of {first} vs {second}", ["manhattan", f"{pair}.sumstats.parquet", "--out", f"{pair}.manhattan.png"]),
        ("Miami plot per score", ["manhattan", f"{pair}.sumstats.parquet", "--signed", "--facet", "--out", f"{pair}.manhattan.facets.png"]),
        ("QQ plot", ["qq", f"{pair}.sumstats.parquet", "--out", f"{pair}.qq.png"]),
        ("gallery of sensitive examples", ["gallery", f"{everything}.sumstats.parquet", "--store", store, "--out", f"{everything}.gallery.png"]),
        (
            "fingerprint the architectures",
            ["fingerprint", first, second, "--store", store, "--out", f"{prefix}.fingerprint", "--save", f"{prefix}.fingerprint.json"],
        ),
        (f"identify the runs of {archs[2] if len(archs) > 2 else second}", ["identify", f"{prefix}.fingerprint.json", "--arch", archs[-1], "--store", store]),
    ]
    if len(archs) > 2:
        third = f"{prefix}.{first}_vs_{archs[2]}"
        steps.insert(
            len(archs) + 3,
            (f"Manhattan plot of {first} vs {archs[2]}", ["manhattan", f"{third}.sumstats.parquet", "--out", f"{third}.manhattan.png"]),
        )
    for analysis in ("variance", "stability", "correlate", "pca"):
        steps.append((f"{analysis} of {first}", [analysis, first, "--store", store, "--out", f"{prefix}.{first}.{analysis}"]))
    if len(archs) > 2:
        steps.append(("effect vs model size", ["sizes", *archs, "--store", store, "--out", f"{prefix}.sizes"]))
    steps.append(("HTML report", ["report", str(results), "--store", store, "--out", str(results / "report.html")]))
    return steps


@app.command()
def demo(
    directory: Path = typer.Option(Path("gwasm-demo"), "--dir", help="Folder for the demo's store and results."),
    archs: str = typer.Option(",".join(DEMO_ARCHS), help="Comma-separated architectures; the first two are compared in detail."),
    runs: int = typer.Option(8, help="Runs per architecture."),
    epochs: int = typer.Option(10, help="Training epochs per run."),
    workers: int = typer.Option(2, help="Runs trained in parallel."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the whole pipeline on the embedded digits data and write an HTML report.

    Trains resnet20, a quarter-width VGG-11 and an MLP (8 runs each), associates, plots, fingerprints,
    runs the paper's difficulty analyses and writes gwasm-demo/results/report.html. Rerunning it
    reuses the runs already trained.

    Example: gwasm demo --runs 8 --epochs 10
    """
    from gwas_models.errors import InputError
    from gwasm_cli.main import main

    arch_list = tuple(a.strip() for a in archs.split(",") if a.strip())
    if len(arch_list) < 2:
        raise InputError(f"--archs needs at least two architectures, got {archs!r}")
    if runs < 4:
        raise InputError(f"--runs must be at least 4 (fingerprinting splits runs into training and held-out), got {runs}")
    results = directory / "results"
    results.mkdir(parents=True, exist_ok=True)
    steps = demo_steps(directory, arch_list, runs, epochs, workers, quiet)
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
