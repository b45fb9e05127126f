"""`gwasm fingerprint` and `gwasm identify`: tell architectures apart from a few marker examples.

``fingerprint`` measures how well K marker examples identify held-out runs (paper Figure 1, right)
and writes ``<prefix>.tsv`` and ``<prefix>.png``; with ``--save`` it also fits the fingerprint on
every run and keeps it as JSON. ``identify`` applies a saved fingerprint to runs in the store or to
a score file. Both are one call of :mod:`gwas_models.workflows.fingerprint`, which checks
everything before it writes anything.

``identify`` writes its table as TSV on stdout (columns RUN, PREDICTED, P(<class>) per class,
DIST(<class>) per class, THRESHOLD, AS_FAR, OOD_P, USED_IN_FIT; see ``gwasm identify --help``) and
its plain-language notes on stderr, so that stdout stays a table that any TSV reader takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gwas_models.workflows import fingerprint as workflow
from gwas_models.workflows.fingerprint import (
    ALL_SCORES,
    ALL_SELECTIONS,
    DEFAULT_INNER_SPLITS,
    DEFAULT_MARKERS,
    DEFAULT_OOD_QUANTILE,
    DEFAULT_RANDOM_DRAWS,
    DEFAULT_SEED,
    DEFAULT_SPLITS,
    DEFAULT_TRAIN_FRACTION,
    MIN_REFERENCE_RUNS,
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
        help="Also fit the fingerprint on all runs (top-K markers) and save it as JSON. With several scores, "
        "the score is chosen by cross-validation over the runs, and the accuracy recorded is that of making "
        "the choice inside each split.",
    ),
    inner_splits: int = typer.Option(
        DEFAULT_INNER_SPLITS, "--inner-splits", help="With several scores: splits of each split's training runs that choose the score."
    ),
) -> None:
    """Held-out accuracy of K-marker fingerprints, per score and marker selection.

    Markers are chosen on the training runs of each split only (Welch t-test for two
    architectures, Welch ANOVA for more), then a logistic classifier on their scores is fitted on
    the same runs and scored on the held-out runs. With several scores, the score too is chosen
    inside each split, on its training runs only (nested cross-validation): that row,
    chosen_per_split, is the honest accuracy; the per-score rows are descriptive, and the best of
    them is optimistic (it is picked on the splits it is scored on).

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
        inner_splits=inner_splits,
    )
    shown = result.summary.drop(columns=["ARCHS"] + (["CHOSEN"] if result.summary["CHOSEN"].isna().all() else []))
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="NA"))
    typer.echo(result.headline())
    typer.echo(f"wrote {result.table_path} and {result.figure_path}")
    fitted = result.fingerprint
    if fitted is not None:
        why = " (score chosen by cross-validation over the runs)" if result.chosen_as_best else ""
        heldout = fitted.heldout_accuracy
        accuracy = (
            "no held-out accuracy"
            if heldout is None
            else f"held-out accuracy {heldout['mean']:.3f}{', score chosen inside each split' if result.chosen_as_best else ''}, "
            f"interval {heldout['low']:.3f}-{heldout['high']:.3f}"
        )
        typer.echo(
            f"saved the {fitted.score}{why} fingerprint of {', '.join(result.archs)} on {fitted.n_markers} markers "
            f"({accuracy}; "
            f"training accuracy {fitted.provenance['training_accuracy']:.3f}; penalty C = {fitted.penalty:g}, "
            f"{fitted.provenance['penalty']['chosen_by']}) to {result.save_path}"
        )
        if fitted.reference is None:
            typer.echo(
                f"note: no out-of-distribution reference (it needs at least {MIN_REFERENCE_RUNS} runs of each architecture): "
                "`gwasm identify` will name an architecture for every run",
                err=True,
            )


@app.command("identify")
def identify_command(
    fingerprint_file: Path = typer.Argument(..., help="Fingerprint JSON saved by `gwasm fingerprint --save`."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of runs in the store to identify (e.g. pkg.module:factory)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Only this run of --arch (default: every run)."),
    scores: Optional[Path] = typer.Option(None, "--scores", help="Instead of the store: CSV with example_id and one value column, or .npy vector."),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset of the runs (default: the fingerprint's)."),
    ood_quantile: float = typer.Option(
        DEFAULT_OOD_QUANTILE,
        "--ood-quantile",
        help="Share of runs of the known architectures to name: farther than this quantile of the training runs' "
        "left-out distances, a run is 'none of these'.",
    ),
) -> None:
    """Predict which architecture trained a run, or say it is none of the fingerprint's.

    Prints a TSV table on stdout, one row per run. RUN: the run. PREDICTED: the most probable
    architecture, or 'none of these' when the run's marker scores lie farther from every
    architecture than --ood-quantile of the training runs do from theirs. P(<arch>): the
    fingerprint's probability of each architecture, given that it is one of them (cross-validated
    penalty: not 0/1 unless runs it did not see justify it). DIST(<arch>): mean squared z-score of
    the run's markers against each architecture. THRESHOLD: the distance beyond which a run is none
    of these. AS_FAR: fraction of training runs (each left out) at least as far from their own
    architecture. OOD_P: how likely a run of a known architecture is to lie this far. USED_IN_FIT:
    yes when the fingerprint was fitted on the run (its answer then says nothing about accuracy),
    no, or unknown (a score file). A line on stderr gives the fingerprint's held-out accuracy.

    Example: gwasm identify resnet-vs-vgg.json --arch mypkg.models:net --seed 0
    """
    from gwas_models.errors import InputError

    # Which options go together is the command line's business; the workflow checks it too, in its own words.
    if (arch is None) == (scores is None):
        raise InputError("identify needs either --arch (runs in the store) or --scores FILE, not both")
    if seed is not None and arch is None:
        raise InputError("--seed selects a run of --arch; it does not apply to --scores")
    result = workflow.identify(
        fingerprint_file, arch=arch, seed=seed, scores_path=scores, store=store, dataset=dataset, ood_quantile=ood_quantile
    )
    for note in _identify_notes(result):
        typer.echo(note, err=True)
    typer.echo(result.table.to_csv(sep="\t", index=False, float_format="%.6g", na_rep="NA", lineterminator="\n").rstrip("\n"))


def _identify_notes(result: workflow.IdentifyResult) -> list[str]:
    """The stderr lines of `gwasm identify`: the fingerprint's accuracy, then what to keep in mind."""
    notes = [result.summary()]
    if result.heldout_accuracy is None or not result.has_reference:
        missing = " or ".join(
            what
            for what, absent in (("held-out accuracy", result.heldout_accuracy is None), ("out-of-distribution reference", not result.has_reference))
            if absent
        )
        notes.append(
            f"note: this fingerprint has no {missing} recorded; refit it with `gwasm fingerprint --save` "
            f"(at least {MIN_REFERENCE_RUNS} runs of each architecture) to get them"
        )
    used = result.used_in_fit
    if used:
        shown = ", ".join(used[:3]) + (f" and {len(used) - 3} more" if len(used) > 3 else "")
        notes.append(
            f"note: {len(used)} of these runs ({shown}) were used to fit the fingerprint: "
            "their answers say nothing about how well it identifies new runs"
        )
    return notes
