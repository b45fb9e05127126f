"""`gwasm collect`, `gwasm runs`, `gwasm import-scores`: produce and list runs."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from gwasm_cli.app import app


class _ProgressBar:
    """A tqdm bar over all epochs of all runs, on a terminal only."""

    def __init__(self, n_runs: int, epochs: int, enabled: bool) -> None:
        self.bar = None
        self.epochs = epochs
        if enabled and n_runs:
            from tqdm import tqdm

            self.bar = tqdm(total=n_runs * epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, event: str, info: dict) -> None:
        if self.bar is None:
            return
        if event == "epoch":
            self.bar.update(1)
            self.bar.set_postfix_str(
                f"run {info['index']}/{info['total']} seed {info['seed']} epoch {info['epoch']} "
                f"train acc {info['train_accuracy']:.3f}"
            )
        elif event == "run_end":
            # Worker processes report whole runs only: advance the bar by the run's epochs.
            self.bar.update(max(0, info["index"] * self.epochs - self.bar.n))
            self.bar.set_postfix_str(f"run {info['index']}/{info['total']} done, {_test_accuracy_text(info['test_accuracy'])}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _test_accuracy_text(accuracy: float) -> str:
    # A dataset without a test split has no test accuracy: say so rather than print "nan".
    return "no test split" if accuracy != accuracy else f"test accuracy {accuracy:.4f}"


@app.command()
def collect(
    arch: str = typer.Option(
        ..., "--arch", "-a", help="Architecture: resnet20, resnet20-64, vgg16, vgg16-16, mlp, timm:NAME (any timm model), or package.module:factory."
    ),
    arch_option: Optional[List[str]] = typer.Option(
        None, "--arch-option", help="KEY=VALUE passed to the model's constructor (timm models), repeatable, e.g. patch_size=2."
    ),
    dataset: str = typer.Option("digits", help="digits (embedded), cifar10, cifar100, path/to/file.npz, or path/to/image-folder."),
    image_size: Optional[int] = typer.Option(None, help="Resize an image folder's images to this square size (default: their common size)."),
    data_root: Optional[str] = typer.Option(None, help="Folder with cifar-10-batches-py/ or cifar-100-python/."),
    download: bool = typer.Option(False, help="Download CIFAR into --data-root if missing."),
    runs: Optional[int] = typer.Option(None, help="Number of runs: seeds 0..N-1 (default 1)."),
    seeds: Optional[str] = typer.Option(None, help="Explicit seeds, e.g. 0-9,12."),
    preset: str = typer.Option("digits", help="Training preset: digits, or paper (CIFAR-10, 160 epochs)."),
    epochs: Optional[int] = typer.Option(None, help="Override the preset's epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override the preset's batch size."),
    lr: Optional[float] = typer.Option(None, help="Override the preset's learning rate."),
    momentum: Optional[float] = typer.Option(None, help="Override the preset's momentum."),
    weight_decay: Optional[float] = typer.Option(None, help="Override the preset's weight decay."),
    optimizer: Optional[str] = typer.Option(None, help="sgd (the presets') or adamw (vision transformers need it)."),
    schedule: Optional[str] = typer.Option(None, help="cosine, step or constant."),
    augment: Optional[str] = typer.Option(None, help="none, crop or crop_flip."),
    crop_padding: Optional[int] = typer.Option(None, help="Maximum translation in pixels."),
    early_epoch: Optional[int] = typer.Option(None, help="Epoch of el2n and grand (default: 1/8 of training, at least epoch 2)."),
    vog_checkpoints: Optional[int] = typer.Option(None, help="VoG checkpoints spread over training (default: every epoch end, as the paper's code)."),
    scores: str = typer.Option(
        "paper",
        help="Score definitions to record: 'paper' (default: the paper's code's definitions, every bare name), "
        "'all' (those and every named variant), or a comma-separated list mixing both, e.g. "
        "loss,vog:agarwal,forgetting:toneva. Cost against plain training, measured for resnet20 on digits "
        "(CPU time, 1 thread): paper 2.2x (on their own: the eval-mode pass before each step, for forgetting "
        "and consistently_learned, 1.4x; the eval pass at every epoch end with VoG's input gradients 1.6x), "
        "1.8x with --vog-checkpoints 8; all 2.5x; the presentation variants (loss:presentations, "
        "aum:pleiss, forgetting:toneva, ...) are free (1.03x).",
    ),
    keep_trajectories: bool = typer.Option(False, help="Also keep float16 per-epoch loss/correct/margin."),
    store: Optional[str] = typer.Option(None, help="Run store (default $GWASM_STORE or ./gwasm-store)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    threads: Optional[int] = typer.Option(None, help="Compute threads per run (recorded: float32 results depend on it)."),
    workers: int = typer.Option(1, help="Runs trained in parallel worker processes (one thread each)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train replicate runs of one architecture and record per-example scores.

    Runs already in the store are skipped, so rerunning an interrupted command resumes it.

    Example: gwasm collect --arch resnet20 --runs 8
    """
    from gwas_models.errors import InputError
    from gwas_models.workflows.collect import collect_runs

    if runs is not None and seeds is not None:
        raise InputError("give either --runs or --seeds, not both")
    overrides = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        optimizer=optimizer,
        schedule=schedule,
        augment=augment,
        crop_padding=crop_padding,
        early_epoch=early_epoch,
        vog_checkpoints=vog_checkpoints,
    )
    bar: _ProgressBar | None = None

    def announce(plan) -> None:
        nonlocal bar
        if plan.done:
            typer.echo(f"{len(plan.done)} run(s) of {arch} on {plan.dataset_name} already in {plan.store}; skipping them", err=True)
        bar = _ProgressBar(len(plan.todo), plan.config["epochs"], enabled=not quiet and sys.stderr.isatty())

    try:
        summary = collect_runs(
            arch,
            seeds=seeds,
            runs=runs,
            preset=preset,
            overrides=overrides,
            dataset=dataset,
            data_root=data_root,
            download=download,
            image_size=image_size,
            arch_options=arch_option or None,
            scores=scores,
            store=store,
            device=device,
            threads=threads,
            workers=workers,
            keep_trajectories=keep_trajectories,
            on_plan=announce,
            progress=lambda event, info: bar(event, info) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    for seed in summary.trained:
        typer.echo(f"{summary.dataset}\t{summary.arch}\tseed {seed}\t{_test_accuracy_text(summary.test_accuracy[seed])}")
    typer.echo(f"collected {len(summary.trained)} run(s), {len(summary.skipped)} already present, store {summary.store}")


@app.command()
def runs(
    store: Optional[str] = typer.Option(None, help="Run store (default $GWASM_STORE or ./gwasm-store)."),
    detail: bool = typer.Option(False, "--detail", help="One line per run instead of per architecture."),
) -> None:
    """List the runs in the store: dataset, architecture, runs, seeds, mean test accuracy.

    Example: gwasm runs --store ./gwasm-store
    """
    from gwas_models.workflows.collect import list_store_runs

    listing = list_store_runs(store, detail=detail)
    if listing.table.empty:
        typer.echo(f"no runs in {listing.store}")
        return
    typer.echo(listing.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@app.command("import-scores")
def import_scores(
    file: str = typer.Argument(..., help="CSV with example_id and one value column, or a .npy vector."),
    name: str = typer.Option(..., help="Name of the imported score."),
    dataset: str = typer.Option(..., help="Dataset of the store the score belongs to."),
    direction: str = typer.Option("harder", help="harder: higher values mean harder examples; easier: the opposite."),
    store: Optional[str] = typer.Option(None, help="Run store (default $GWASM_STORE or ./gwasm-store)."),
) -> None:
    """Import a score computed elsewhere as a single-run score.

    Example: gwasm import-scores memorization.csv --name memorization --dataset cifar10
    """
    from gwas_models.workflows.collect import import_score_file

    path = import_score_file(file, name, dataset, store=store, direction=direction)
    typer.echo(f"imported {name} for {dataset} into {path}")
