"""`gwasm fingerprint` and `gwasm identify`: tell architectures apart from a few marker examples.

``fingerprint`` measures how well K marker examples identify held-out runs (paper Figure 1, right)
and writes ``<prefix>.tsv`` and ``<prefix>.png``; with ``--save`` it also fits the fingerprint on
every run and keeps it as JSON. ``identify`` applies a saved fingerprint to runs in the store or to
a score file. Every check happens before anything is written, so a failed command leaves no file.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gwasm_cli.app import app

RESULTS_DIR = Path("./gwasm-results")
STORE_HELP = "Run store (default $GWASM_STORE or ./gwasm-store)."


@app.command("fingerprint")
def fingerprint_command(
    archs: List[str] = typer.Argument(..., help="Two or more architectures to tell apart (class order)."),
    markers: int = typer.Option(8, "--markers", "-k", help="K, the marker examples per fingerprint."),
    score: str = typer.Option("all", "--score", help="Score to use, or 'all' (each recorded score in turn)."),
    select: str = typer.Option("all", "--select", help="Marker selection: top, bottom, random, or all (comma lists allowed)."),
    random_draws: int = typer.Option(20, "--random-draws", help="Random marker sets per split (the random baseline)."),
    splits: int = typer.Option(10, "--splits", help="Random train/held-out splits of the runs."),
    train_fraction: float = typer.Option(0.5, "--train-fraction", help="Share of each architecture's runs used to choose markers and fit."),
    seed: int = typer.Option(0, "--seed", help="Seed of the splits and random markers."),
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
    import numpy as np

    from gwas_models.analysis import fingerprint as fp
    from gwas_models.formats import store as run_store

    archs = list(fp.check_architectures(archs))
    selections = fp.parse_selections(select)
    fp.check_evaluation_options(splits, random_draws, train_fraction)
    _check_save_path(save, score, selections)
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, dataset)
    fp.check_marker_count(markers, int(run_store.read_dataset_info(store_path, dataset_name)["n_examples"]))
    scores = _scores_to_evaluate(store_path, dataset_name, archs, score)
    matrices = run_store.load_score_matrices(store_path, dataset_name, scores, archs)
    evaluation = fp.evaluate_scores(
        matrices,
        archs,
        np.random.default_rng(seed),
        n_markers=markers,
        selections=selections,
        n_splits=splits,
        random_draws=random_draws,
        train_fraction=train_fraction,
    )
    fitted = None
    if save is not None:
        chosen = score if score != "all" else evaluation.best_score("top")
        provenance = {"store": str(store_path.resolve()), "seed": seed}
        fitted = fp.fit_fingerprint(matrices[chosen], archs, markers, provenance=provenance)
    prefix = Path(out) if out is not None else RESULTS_DIR / f"{dataset_name}.fingerprint"
    _write_outputs(evaluation.summary, prefix, fitted, save)
    typer.echo(_format_summary(evaluation.summary))
    typer.echo(f"wrote {prefix}.tsv and {prefix}.png")
    if fitted is not None:
        accuracy = fitted.provenance["training_accuracy"]
        why = " (best top-K held-out accuracy)" if score == "all" else ""
        typer.echo(
            f"saved the {fitted.score}{why} fingerprint of {', '.join(archs)} on {fitted.n_markers} markers "
            f"(training accuracy {accuracy:.3f}) to {save}"
        )


def _check_save_path(save: Optional[Path], score: str, selections: tuple[str, ...]) -> None:
    """Refuse a --save that would fail only after the evaluation's files are written."""
    from gwas_models.errors import InputError

    if save is None:
        return
    if save.is_dir():
        raise InputError(f"cannot save the fingerprint to {save}: it is a directory")
    if score == "all" and "top" not in selections:
        raise InputError("--save with --score all saves the score with the best top-K accuracy: add top to --select or name one --score")


def _scores_to_evaluate(store_path: Path, dataset: str, archs: list[str], score: str) -> list[str]:
    """The recorded scores (``all``), or the one named, checked to be recorded for every architecture."""
    from gwas_models.errors import InputError
    from gwas_models.formats.store import recorded_scores
    from gwas_models.scores import score_info

    recorded = recorded_scores(store_path, dataset, archs)
    if score == "all":
        if not recorded:
            raise InputError(f"no score was recorded for every one of {', '.join(archs)} in dataset {dataset!r}")
        return recorded
    score_info(score)
    if score not in recorded:
        raise InputError(
            f"score {score!r} was not recorded for every one of {', '.join(archs)} in dataset {dataset!r}; "
            f"recorded: {', '.join(recorded) or 'none'}"
        )
    return [score]


def _write_outputs(summary, prefix: Path, fitted, save: Optional[Path]) -> None:
    """Draw first (the likeliest step to fail), then write the table, figure and fingerprint."""
    from matplotlib.figure import Figure

    from gwas_models.formats.fingerprint_file import save_fingerprint, write_evaluation
    from gwas_models.plots._style import save_figure
    from gwas_models.plots.fingerprint import fingerprint_accuracy, fingerprint_figsize

    n_scores = summary["SCORE"].nunique()
    figure = Figure(figsize=fingerprint_figsize(n_scores), layout="constrained")
    fingerprint_accuracy(summary, ax=figure.add_subplot())
    write_evaluation(summary, prefix.with_name(prefix.name + ".tsv"))
    save_figure(figure, prefix.with_name(prefix.name + ".png"))
    if fitted is not None:
        save_fingerprint(fitted, save)


def _format_summary(summary) -> str:
    shown = summary.drop(columns=["ARCHS"])
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="NA")


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
    from gwas_models.analysis.fingerprint import identify
    from gwas_models.errors import InputError
    from gwas_models.formats.fingerprint_file import load_fingerprint

    if (arch is None) == (scores is None):
        raise InputError("identify needs either --arch (runs in the store) or --scores FILE, not both")
    if seed is not None and arch is None:
        raise InputError("--seed selects a run of --arch; it does not apply to --scores")
    fitted = load_fingerprint(fingerprint_file)
    if scores is not None:
        example_id, values, names = _scores_from_file(fitted, scores)
    else:
        example_id, values, names = _scores_from_store(fitted, arch, seed, store, dataset)
    table = identify(fitted, example_id, values, names)
    typer.echo(table.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n").rstrip("\n"))


def _scores_from_file(fitted, path: Path):
    from gwas_models.formats.fingerprint_file import read_score_vector

    example_id, values = read_score_vector(path)
    if path.suffix.lower() == ".npy":
        fitted.check_dataset(None, len(values))  # a vector covers the whole dataset
    elif len(example_id) and example_id.max() >= fitted.n_examples:
        fitted.check_dataset(None, int(example_id.max()) + 1)  # ids beyond the fingerprint's dataset
    return example_id, values, [path.name]


def _scores_from_store(fitted, arch: str, seed: Optional[int], store: Optional[str], dataset: Optional[str]):
    from gwas_models.errors import StoreError
    from gwas_models.formats import store as run_store

    fitted.check_dataset(dataset, None)
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, fitted.dataset)
    info = run_store.read_dataset_info(store_path, dataset_name)
    fitted.check_dataset(dataset_name, info.get("n_examples"))
    matrix = run_store.load_score_matrices(store_path, dataset_name, [fitted.score], [arch])[fitted.score]
    if seed is not None:
        keep = matrix.seeds == seed
        if not keep.any():
            raise StoreError(
                f"no run of {arch!r} with seed {seed} in dataset {dataset_name!r}; seeds there: {run_store.format_seeds(matrix.seeds)}"
            )
        matrix = matrix.subset_runs(keep)
    names = [f"{arch} seed {s}" for s in matrix.seeds]
    return matrix.example_id, matrix.values, names
