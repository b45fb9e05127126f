"""`gwasm fingerprint` and `gwasm identify`: tell architectures apart from a few marker examples.

``fingerprint`` measures how well K marker examples identify held-out runs (paper Figure 1, right)
and writes ``<prefix>.tsv`` and ``<prefix>.png``; with ``--save`` it also fits the fingerprint on
every run and keeps it as JSON. ``identify`` applies a saved fingerprint to runs in the store or to
a score file. Both are one call of :mod:`gwas_models.workflows.fingerprint`, which checks
everything before it writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gwas_models.workflows import fingerprint as workflow
from gwas_models.workflows.fingerprint import (
    ALL_SCORES,
    ALL_SELECTIONS,
    DEFAULT_MARKERS,
    DEFAULT_RANDOM_DRAWS,
    DEFAULT_SEED,
    DEFAULT_SPLITS,
    DEFAULT_TRAIN_FRACTION,
)
from gwasm_cli.app import app

STORE_HELP = "Run store (default $GWASM_STORE or ./gwasm-store)."


@app.command("fingerprint")
def fingerprint_command(
    archs: List[str] = typer.Argument(..., help="Two or more architectures to tell apart (class order)."),
    markers: int = typer.Option(DEFAULT_MARKERS, "--markers", "-k", help="K, the marker examples per fingerprint."),
    score: str = typer.Option(ALL_SCORES, "--score", help="Score to use, or 'all' (each recorded score in turn)."),
    select: str = typer.Option(ALL_SELECTIONS, "--select", help="Marker selection: top, bottom, random, or all (comma lists allowed)."),
    random_draws: int = typer.Option(DEFAULT_RANDOM_DRAWS, "--random-draws", help="Random marker sets per split (the random baseline)."),
    splits: int = typer.Option(DEFAULT_SPLITS, "--splits", help="Random train/held-out splits of the runs."),
    train_fraction: float = typer.Option(
        DEFAULT_TRAIN_FRACTION, "--train-fraction", help="Share of each architecture's runs used to choose markers and fit."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the splits and random markers."),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset in the store (default: its only one)."),
    out: Optional[str] = typer.Option(None, "--out", help="Output prefix (default ./gwasm-results/<dataset>.fingerprint)."),
    save: Optional[Path] = typer.Option(
        None,
        "--save",
        help="Also fit the fingerprint on all runs (top-K markers) and save it as JSON. With --score all, "
        "the score whose top-K markers identified held-out runs best is saved.",
    ),
) -> None:
    """Held-out accuracy of K-marker fingerprints, per score and marker selection.

    Markers are chosen on the training runs of each split only (Welch t-test for two
    architectures, Welch ANOVA for more), then a logistic classifier on their scores is fitted on
    the same runs and scored on the held-out runs.

    Example: gwasm fingerprint resnet20 vgg16 --markers 8 --save resnet-vs-vgg.json
    """
    result = workflow.fingerprint_from_store(
        archs,
        store=store,
        dataset=dataset,
        score=score,
        n_markers=markers,
        selections=select,
        random_draws=random_draws,
        n_splits=splits,
        train_fraction=train_fraction,
        seed=seed,
        out_prefix=out,
        save_path=save,
    )
    shown = result.summary.drop(columns=["ARCHS"])
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="NA"))
    typer.echo(f"wrote {result.table_path} and {result.figure_path}")
    fitted = result.fingerprint
    if fitted is not None:
        why = " (best top-K held-out accuracy)" if result.chosen_as_best else ""
        typer.echo(
            f"saved the {fitted.score}{why} fingerprint of {', '.join(result.archs)} on {fitted.n_markers} markers "
            f"(training accuracy {fitted.provenance['training_accuracy']:.3f}) to {result.save_path}"
        )


@app.command("identify")
def identify_command(
    fingerprint_file: Path = typer.Argument(..., help="Fingerprint JSON saved by `gwasm fingerprint --save`."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of runs in the store to identify (e.g. pkg.module:factory)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Only this run of --arch (default: every run)."),
    scores: Optional[Path] = typer.Option(None, "--scores", help="Instead of the store: CSV with example_id and one value column, or .npy vector."),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset of the runs (default: the fingerprint's)."),
) -> None:
    """Predict which architecture trained a run, with the fingerprint's probabilities.

    Example: gwasm identify resnet-vs-vgg.json --arch mypkg.models:net --seed 0
    """
    from gwas_models.errors import InputError

    # Which options go together is the command line's business; the workflow checks it too, in its own words.
    if (arch is None) == (scores is None):
        raise InputError("identify needs either --arch (runs in the store) or --scores FILE, not both")
    if seed is not None and arch is None:
        raise InputError("--seed selects a run of --arch; it does not apply to --scores")
    table = workflow.identify(fingerprint_file, arch=arch, seed=seed, scores_path=scores, store=store, dataset=dataset)
    typer.echo(table.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n").rstrip("\n"))
