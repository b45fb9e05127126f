"""`gwasm collect`, `gwasm runs`, `gwasm import-scores`: produce and list runs."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from gwas_models.workflows.collect import DEFAULT_STALE_AFTER
from gwasm_cli.app import app


class _ProgressBar:
    """A tqdm bar on a terminal: over all epochs of all runs, or over the runs of a SLURM job array.

    Opened at the first event, so that a command that trains nothing here shows no bar.
    """

    def __init__(self) -> None:
        self.bar = None
        self.total_epochs = 0
        self.epochs = 0
        self.epochs_done: dict[int, int] = {}

    def expect(self, n_runs: int, epochs: int) -> None:
        """Size the bar: ``n_runs`` runs of ``epochs`` epochs each."""
        self.total_epochs, self.epochs = n_runs * epochs, epochs

    def _open(self, total: int, unit: str):
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        return self.bar

    def _advance_to(self, n: int) -> None:
        self.bar.update(max(0, n - self.bar.n))

    def __call__(self, event: str, info: dict) -> None:
        if event == "epoch":
            bar = self._open(self.total_epochs, "epoch")
            self.epochs_done[info["seed"]] = info["epoch"]
            self._advance_to(sum(self.epochs_done.values()))
            bar.set_postfix_str(
                f"run {info['index']}/{info['total']} seed {info['seed']} epoch {info['epoch']} train acc {info['train_accuracy']:.3f}"
            )
        elif event == "run_end":
            bar = self._open(self.total_epochs, "epoch")
            head = f"run {info['index']}/{info['total']} seed {info['seed']}"
            if info.get("status", "trained") == "trained":
                self.epochs_done[info["seed"]] = self.epochs
                bar.set_postfix_str(f"{head} done, {_test_accuracy_text(info['test_accuracy'])}")
            else:  # found written, or claimed by another collector: its epochs leave the bar
                bar.total -= self.epochs - self.epochs_done.pop(info["seed"], 0)
                bar.set_postfix_str(f"{head} {'found in the store' if info['status'] == 'exists' else 'claimed by ' + str(info.get('holder'))}")
            self._advance_to(sum(self.epochs_done.values()))
        elif event == "slurm_status":
            bar = self._open(info["total"], "run")
            self._advance_to(info["finished"] + info["failed"])
            bar.set_postfix_str(f"job {info['job_id']}: {info['running']} running, {info['pending']} pending, {info['failed']} failed")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _present_slurm(collection, stored_as: str) -> None:
    """Say what was submitted and how to follow it; after --wait, what was written and what failed."""
    store = collection.store
    if collection.queued:
        typer.echo(f"{len(collection.queued)} run(s) already queued or running in an earlier job; not submitted again", err=True)
    if collection.job_id is None:
        typer.echo(f"nothing to submit: {len(collection.skipped)} run(s) already present, {len(collection.queued)} queued, store {store}")
        return
    if not collection.waited:
        typer.echo(f"submitted job {collection.job_id} ({collection.job_name}): {len(collection.submitted)} run(s), logs in {collection.log_dir}")
        typer.echo(f"follow it: gwasm runs --store {store}; gwasm runs --pending --store {store}; squeue -j {collection.job_id}")
        return
    for seed in collection.finished:
        typer.echo(f"{collection.dataset}\t{stored_as}\tseed {seed}\t{_test_accuracy_text(collection.test_accuracy[seed])}")
    for seed in sorted(set(collection.claimed) & set(collection.submitted)):
        typer.echo(f"seed {seed} was left to {collection.claimed[seed]}, who holds its claim", err=True)
    for failure in collection.failed:
        typer.echo(f"gwasm: seed {failure.seed} failed (job {failure.job_id}, {failure.state}): {failure.error}; log {failure.log}", err=True)
    typer.echo(
        f"collected {len(collection.finished)} run(s) through job {collection.job_id}, {len(collection.failed)} failed, "
        f"{len(collection.skipped)} already present, store {store}"
    )
    if collection.failed:
        raise typer.Exit(1)


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
        "(30 epochs, 1 thread): paper 2.1x (on their own: the eval-mode pass before each step, for forgetting "
        "and consistently_learned, 1.3x; the eval pass at every epoch end with VoG's input gradients 1.6x), "
        "1.8x with --vog-checkpoints 8; all 2.4x; the presentation variants (loss:presentations, "
        "aum:pleiss, forgetting:toneva, ...) are nearly free (1.05x).",
    ),
    keep_trajectories: bool = typer.Option(False, help="Also keep float16 per-epoch loss/correct/margin."),
    store: Optional[str] = typer.Option(None, help="Run store (default $GWASM_STORE or ./gwasm-store)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    threads: Optional[int] = typer.Option(None, help="Compute threads per run (recorded: float32 results depend on it)."),
    workers: int = typer.Option(1, help="Runs trained in parallel worker processes (one thread each)."),
    batch_replicates: str = typer.Option(
        "1",
        help="Train K runs at once as one batched model (same results as one by one; built-in ResNets, VGGs and MLP), "
        "or 'auto': the largest K that fits in the device's memory. Combines with --workers (each trains groups of K) "
        "and --executor slurm (each task trains K runs).",
    ),
    label: Optional[str] = typer.Option(
        None,
        help="Store the runs under this name instead of the architecture's, to compare any training choice, "
        "e.g. --arch resnet20 --lr 0.01 --label resnet20-lr0.01. Runs under one label share one configuration: "
        "a collect that differs from the runs stored under its label is refused.",
    ),
    claim_timeout: float = typer.Option(
        DEFAULT_STALE_AFTER, help="Seconds without a heartbeat after which another collector's claim on a run is stale and taken over."
    ),
    executor: str = typer.Option(
        "local", help="local: train on this machine (--workers processes); slurm: submit the runs the store lacks as one SLURM job array."
    ),
    partition: Optional[str] = typer.Option(None, help="SLURM partition (default: the cluster's default)."),
    time: Optional[str] = typer.Option(
        None, "--time", help="SLURM time limit of each run: minutes or HH:MM:SS (default 60 minutes); a run that reaches it is requeued and restarts."
    ),
    cpus_per_run: Optional[int] = typer.Option(None, help="SLURM CPUs of each run, also its compute threads unless --threads (default 1)."),
    gpus_per_run: Optional[int] = typer.Option(None, help="SLURM GPUs of each run (default 0)."),
    mem: Optional[str] = typer.Option(None, help="SLURM memory of each run, e.g. 8G or 512M (default: the partition's)."),
    array_parallelism: Optional[int] = typer.Option(None, help="Most SLURM runs at once (default: as many as the cluster allows)."),
    slurm_option: Optional[List[str]] = typer.Option(
        None, "--slurm-option", help="KEY=VALUE passed to sbatch as --KEY=VALUE, repeatable, e.g. account=lab or qos=short."
    ),
    wait: bool = typer.Option(False, "--wait", help="With --executor slurm: wait for the job array to end, showing progress, and report failed runs."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress: neither the bar (on a terminal) nor the plain lines per epoch (elsewhere)."
    ),
) -> None:
    """Train replicate runs of one architecture and record per-example scores.

    Runs already in the store are skipped, so rerunning an interrupted command resumes it.
    On a SLURM cluster, --executor slurm submits them as one job array instead.

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
    slurm = {
        "partition": partition,
        "time_minutes": time,
        "cpus_per_run": cpus_per_run,
        "gpus_per_run": gpus_per_run,
        "mem_gb": mem,
        "array_parallelism": array_parallelism,
        "extra": slurm_option,
    }
    slurm = {key: value for key, value in slurm.items() if value is not None and value != []}
    # A bar on a terminal; elsewhere (a pipe, nohup, a SLURM log) plain lines on stderr.
    bar = _ProgressBar() if not quiet and sys.stderr.isatty() else None
    stored_as = label or arch

    def announce(plan) -> None:
        nonlocal stored_as
        stored_as = plan.label
        if plan.done:
            typer.echo(f"{len(plan.done)} run(s) of {plan.label} on {plan.dataset_name} already in {plan.store}; skipping them", err=True)
        for seed in plan.claimed:
            typer.echo(f"seed {seed} of {plan.label} is being trained by {plan.claimed_by[seed]}; skipping it", err=True)
        if plan.damaged:
            typer.echo(f"{len(plan.damaged)} damaged run(s) of {plan.label} will be trained again", err=True)
        for notice in plan.notices:
            typer.echo(notice, err=True)
        if plan.batch_replicates > 1:
            typer.echo(f"training {plan.batch_replicates} runs at a time as one batched model", err=True)
        if bar is not None:
            bar.expect(len(plan.todo), plan.config["epochs"])

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
            batch_replicates=int(batch_replicates) if batch_replicates.strip().isdigit() else batch_replicates.strip(),
            keep_trajectories=keep_trajectories,
            label=label,
            claim_timeout=claim_timeout,
            executor=executor,
            slurm=slurm if executor == "slurm" or slurm else None,
            wait=wait,
            on_plan=announce,
            progress=bar if bar is not None else (None if quiet else sys.stderr),
        )
    finally:
        if bar is not None:
            bar.close()
    if executor == "slurm":
        _present_slurm(summary, stored_as)
        return
    for seed in summary.trained:
        typer.echo(f"{summary.dataset}\t{stored_as}\tseed {seed}\t{_test_accuracy_text(summary.test_accuracy[seed])}")
    typer.echo(f"collected {len(summary.trained)} run(s), {len(summary.skipped)} already present, store {summary.store}")


@app.command()
def runs(
    store: Optional[str] = typer.Option(None, help="Run store (default $GWASM_STORE or ./gwasm-store)."),
    detail: bool = typer.Option(False, "--detail", help="One line per run instead of per architecture."),
    check: bool = typer.Option(
        False, "--check", help="Report leftovers of killed collectors (temporary runs, stale claims) and damaged runs."
    ),
    pending: bool = typer.Option(False, "--pending", help="List the claims of runs being trained: host, pid, job, heartbeat age."),
    claim_timeout: float = typer.Option(DEFAULT_STALE_AFTER, help="Seconds without a heartbeat after which a claim is stale."),
) -> None:
    """List the runs in the store: dataset, architecture, runs, seeds, mean test accuracy.

    Damaged runs are never listed as complete; --check says what is wrong with them.

    Example: gwasm runs --store ./gwasm-store
    """
    from gwas_models.errors import InputError
    from gwas_models.workflows.collect import list_store_runs

    if sum((detail, check, pending)) > 1:
        raise InputError("give only one of --detail, --check and --pending")
    listing = list_store_runs(store, detail=detail, check=check, pending=pending, claim_timeout=claim_timeout)
    if listing.table.empty:
        empty = {"check": f"store clean: {listing.store}", "pending": f"no runs being trained in {listing.store}"}
        typer.echo(empty.get(listing.view, f"no runs in {listing.store}"))
    elif listing.view == "check":
        for row in listing.table.itertuples():
            age = f" ({row.age_s} s old)" if row.problem == "leftover" else ""
            typer.echo(f"{row.problem}\t{row.dataset}\t{row.label}\tseed {row.seed}\t{row.reason}{age}\t{row.path}")
    else:
        typer.echo(listing.table.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    if listing.n_damaged:
        typer.echo(f"{listing.n_damaged} damaged run(s) not listed; see gwasm runs --check", err=True)


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
