"""Collection speed: replicate runs trained as one batched model against one run after another.

Default part (digits, as ``gwasm collect`` would train it): for resnet20, vgg11-16 and mlp, 8 runs
(seeds 0-7) of the digits preset cut to ``--epochs`` epochs, trained

* one after another in this process, with torch's default thread count (``gwasm collect``) and
  with 1 thread;
* one after another in 2 worker processes of 1 thread each (``gwasm collect --workers 2``);
* as one batched model of K = 8 in this process, with the default threads and with 1 thread;
* as 2 worker processes of 1 thread each, each training a batched model of K = 4;

with the wall-time ratio of each to each way of training one after another, and the verdict on
the fastest batched way against the fastest one-after-another way (target <= 0.6). On a GPU only
the in-process ways with the default threads run. Worker processes are started and warmed up
(imports, data) before the clock starts, so the figures compare training, not process start-up.
Then, for resnet20, batched K = 8 with the paper's scores recorded against the same batched
training without a recorder (target <= 1.5x), when ``ScoreRecorder`` takes ``n_replicates`` (the
batched recorder; it says so when it does not).

``--cifar-sized`` part (run by ``benchmarks/gpu_check.sh`` on a CUDA machine): resnet20 on random
CIFAR-10-sized data (50,000 x 3 x 32 x 32, 10 classes, drawn on the device from a fixed seed) with
the paper's training recipe cut to ``--epochs`` epochs: one run alone, then batched models of the
K in ``--k-values`` (``auto``: :func:`~gwas_models.training.batched.choose_n_replicates` for
``--paper-runs`` runs, at most ``--max-k``), each timed over whole runs; prints runs per hour and
its extrapolation to the paper's 160 epochs. On CUDA it also counts host synchronisations per
training step with ``torch.cuda.set_sync_debug_mode``.

The machine is shared and timings are noisy: each configuration runs once; compare ratios
measured side by side only.

    python benchmarks/collect_speed.py [--epochs 3] [--device cpu] [--quick]
    python benchmarks/collect_speed.py --cifar-sized --device cuda [--epochs 2] [--k-values 8,32,auto]
"""

from __future__ import annotations

import argparse
import inspect
import math
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Sequence

import torch

from gwas_models.data import load_digits
from gwas_models.scores import SCORE_NAMES
from gwas_models.training.batched import build_batched, can_batch, choose_n_replicates, train_replicates
from gwas_models.training.models import build_model
from gwas_models.training.recorder import ScoreRecorder
from gwas_models.training.train import DeviceData, SeedStreams, TrainConfig, preset, resolve_device, train

ARCHS = ("resnet20", "vgg11-16", "mlp")
#: Target wall-time ratios: batched against one after another, scores against plain batched training.
BATCHED_TARGET = 0.6
SCORES_TARGET = 1.5
PAPER_EPOCHS = 160


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _chunks(seeds: Sequence[int], k: int) -> list[list[int]]:
    return [list(seeds[i : i + k]) for i in range(0, len(seeds), k)]


def train_group(arch: str, data: DeviceData, config: TrainConfig, seeds: Sequence[int], k: int, recorder_factory=None) -> float:
    """Train ``seeds`` in batches of ``k`` (1: one after another with ``train``); wall seconds."""
    device = data.x_train.device
    shape = tuple(data.x_train.shape[1:])
    _synchronize(device)
    started = time.perf_counter()
    for chunk in _chunks(seeds, k):
        streams = [SeedStreams(s) for s in chunk]
        recorder = None if recorder_factory is None else recorder_factory(data, config, len(chunk))
        if len(chunk) == 1 and recorder_factory is None:
            model = build_model(arch, data.n_classes, shape, streams[0].init).to(device)
            train(model, data, config, streams[0])
        else:
            model = build_batched(arch, data.n_classes, shape, streams, device)
            train_replicates(model, data, config, streams, recorder=recorder)
    _synchronize(device)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------------------------
# Worker processes (as ``gwasm collect --workers``: one compute thread each)
# ----------------------------------------------------------------------------------------------

_WORKER_DATA: dict[int, DeviceData] = {}


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _worker_data(n_train: int) -> DeviceData:
    if n_train not in _WORKER_DATA:
        _WORKER_DATA[n_train] = _digits(torch.device("cpu"), n_train)
    return _WORKER_DATA[n_train]


def _worker_task(arch: str, config: TrainConfig, seeds: list[int], k: int, n_train: int) -> float:
    return train_group(arch, _worker_data(n_train), config, seeds, k)


def in_workers(pool: ProcessPoolExecutor, n_workers: int, arch: str, config: TrainConfig, seeds: Sequence[int], k: int, n_train: int) -> float:
    """Wall seconds for ``n_workers`` processes to train ``seeds`` split evenly between them."""
    share = math.ceil(len(seeds) / n_workers)
    started = time.perf_counter()
    futures = [pool.submit(_worker_task, arch, config, list(part), k, n_train) for part in _chunks(seeds, share)]
    wait(futures)
    for future in futures:
        future.result()
    return time.perf_counter() - started


def _digits(device: torch.device, n_train: int) -> DeviceData:
    full = DeviceData.from_dataset(load_digits(), device)
    return DeviceData(full.x_train[:n_train], full.y_train[:n_train], full.x_test, full.y_test, full.n_classes)


# ----------------------------------------------------------------------------------------------
# Digits: batched against one after another
# ----------------------------------------------------------------------------------------------


def recorder_takes_replicates() -> bool:
    """Whether :class:`ScoreRecorder` records K replicates at once (``n_replicates``)."""
    return "n_replicates" in inspect.signature(ScoreRecorder).parameters


def paper_recorder(data: DeviceData, config: TrainConfig, n_replicates: int) -> ScoreRecorder:
    """The recorder ``gwasm collect`` uses by default (the paper's scores), for K replicates."""
    return ScoreRecorder(
        data.x_train,
        data.y_train,
        data.n_classes,
        config.epochs,
        scores=SCORE_NAMES,
        early_epoch=config.early_epoch,
        vog_checkpoints=config.vog_checkpoints,
        eval_batch_size=config.eval_batch_size,
        n_replicates=n_replicates,
    )


def _row(label: str, wall: float, bases: Sequence[float]) -> str:
    ratios = "".join(f"{wall / b:>9.3f}" if b else f"{'-':>9}" for b in bases)
    return f"  {label:<46}{wall:>8.2f}{ratios}"


def _verdict(ratio: float, target: float) -> str:
    return "ok" if ratio <= target else "MISSED"


def _with_threads(threads: int, measure):
    """``measure()`` with torch computing on ``threads`` threads, then the previous count again."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return measure()
    finally:
        torch.set_num_threads(previous)


def digits_benchmark(args: argparse.Namespace, device: torch.device) -> None:
    n_train = 128 if args.quick else 10**9
    data = _digits(device, n_train)
    n_train = len(data.y_train)
    config = preset("digits", epochs=args.epochs)
    seeds = list(range(args.runs))
    k_all, k_half = args.runs, max(1, args.runs // 2)
    threads = torch.get_num_threads()
    on_cpu = device.type == "cpu"
    print(f"digits ({n_train} training images), {args.runs} runs of {args.epochs} epoch(s), {device}, default threads {threads}")
    # Warm up (first-call allocations, lazy imports) outside the measurements.
    train_group("resnet20", _digits(device, 64), preset("digits", epochs=1), [0, 1], 2)
    pool = None
    if on_cpu:
        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
        in_workers(pool, 2, "mlp", preset("digits", epochs=1), [0, 1], 2, n_train)  # start and warm both
    try:
        for arch in args.archs:
            measure = {
                f"one after another, in-process ({threads} threads)": lambda: train_group(arch, data, config, seeds, 1),
                f"batched K={k_all}, in-process ({threads} threads)": lambda: train_group(arch, data, config, seeds, k_all),
            }
            if on_cpu:
                measure.update(
                    {
                        "one after another, in-process (1 thread)": lambda: _with_threads(1, lambda: train_group(arch, data, config, seeds, 1)),
                        "one after another, 2 workers x 1 thread": lambda: in_workers(pool, 2, arch, config, seeds, 1, n_train),
                        f"batched K={k_all}, in-process (1 thread)": lambda: _with_threads(1, lambda: train_group(arch, data, config, seeds, k_all)),
                        f"batched K={k_half} in each of 2 workers x 1 thread": lambda: in_workers(pool, 2, arch, config, seeds, k_half, n_train),
                    }
                )
            walls = {label: run() for label, run in measure.items()}
            sequential = {label: wall for label, wall in walls.items() if label.startswith("one after another")}
            batched = {label: wall for label, wall in walls.items() if label.startswith("batched")}
            bases = list(sequential.values())
            print(f"\n{arch}: wall s, then its ratio to each way of training one run after another (columns in row order)")
            for label in [*sequential, *batched]:
                print(_row(label, walls[label], bases))
            best_sequential, best_batched = min(sequential, key=sequential.get), min(batched, key=batched.get)
            ratio = batched[best_batched] / sequential[best_sequential]
            print(f"  fastest batched / fastest one after another: {ratio:.3f} (target <= {BATCHED_TARGET}: {_verdict(ratio, BATCHED_TARGET)})")
            print(f"    ({best_batched.strip()} / {best_sequential.strip()})")
    finally:
        if pool is not None:
            pool.shutdown()
    scores_benchmark(args, data, config, seeds, k_all)


def scores_benchmark(args: argparse.Namespace, data: DeviceData, config: TrainConfig, seeds: Sequence[int], k: int) -> None:
    arch = "resnet20"
    print(f"\n{arch}, batched K={k}, 1 thread: the paper's scores recorded against plain batched training (target <= {SCORES_TARGET})")
    if not recorder_takes_replicates():
        print("  not measured: ScoreRecorder does not take n_replicates yet (the batched recorder)")
        return
    # One thread: the least disturbed by other processes on a shared machine.
    plain = _with_threads(1, lambda: train_group(arch, data, config, seeds, k))
    recorded = _with_threads(1, lambda: train_group(arch, data, config, seeds, k, recorder_factory=paper_recorder))
    print(_row("plain batched training", plain, (plain,)))
    print(_row("with the paper's scores", recorded, (plain,)) + f"  (target <= {SCORES_TARGET}: {_verdict(recorded / plain, SCORES_TARGET)})")


# ----------------------------------------------------------------------------------------------
# CIFAR-sized random data: runs per hour
# ----------------------------------------------------------------------------------------------


def cifar_sized(device: torch.device, n_train: int, n_test: int, seed: int = 0) -> DeviceData:
    """Random standard-normal images (n, 3, 32, 32) and labels in 0..9, drawn on ``device``."""
    generator = torch.Generator(device=device).manual_seed(seed)
    draw = lambda n: (  # noqa: E731
        torch.randn(n, 3, 32, 32, device=device, generator=generator),
        torch.randint(0, 10, (n,), device=device, generator=generator),
    )
    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return DeviceData(x_train, y_train, x_test, y_test, 10)


def paper_config(epochs: int, **changes) -> TrainConfig:
    """The paper's recipe cut to ``epochs`` (its early epoch, 20, then falls to the default)."""
    return replace(preset("paper"), epochs=epochs, early_epoch=None, **changes)


def _parse_k_values(text: str) -> list[int | str]:
    values: list[int | str] = []
    for item in text.split(","):
        item = item.strip()
        values.append("auto" if item == "auto" else int(item))
    return values


def cifar_benchmark(args: argparse.Namespace, device: torch.device) -> None:
    arch = "resnet20"
    n_train, n_test = (128, 32) if args.quick else (50_000, 1_000)
    data = cifar_sized(device, n_train, n_test)
    config = paper_config(args.epochs)
    print(f"{arch} on random CIFAR-10-sized data ({n_train} x 3 x 32 x 32, 10 classes), paper recipe cut to {args.epochs} epoch(s), {device}")
    train_group(arch, cifar_sized(device, 64, 8, seed=1), paper_config(1), [0, 1], 2)  # warm-up
    ks = []
    for value in _parse_k_values(args.k_values):
        if value == "auto":
            chosen = choose_n_replicates(arch, data, config, device, args.paper_runs)
            print(f"  auto: choose_n_replicates for {args.paper_runs} runs gives K = {chosen}; timed with K = {min(chosen, args.max_k)} (max_k {args.max_k})")
            value = min(chosen, args.max_k)
        if value not in ks:
            ks.append(value)
    started = time.perf_counter()
    print(f"  {'configuration':<26}{'wall s':>9}{'runs/hour':>11}{f'runs/h @{PAPER_EPOCHS}ep':>15}{f'h for {args.paper_runs} runs':>15}{'peak GiB':>10}")
    last: tuple[int, float] | None = None
    for k in [1] + sorted(k for k in ks if k > 1):
        predicted = 0.0 if last is None else last[1] * k / last[0]
        if time.perf_counter() - started + predicted > args.budget_s:
            print(f"  {f'batched K={k}':<26} skipped: about {predicted:.0f} s would pass the {args.budget_s:.0f} s budget")
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        wall = train_group(arch, data, config, list(range(k)), k)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        per_hour = 3600 * k / wall
        paper_per_hour = per_hour * args.epochs / PAPER_EPOCHS
        label = "one run alone" if k == 1 else f"batched K={k}"
        print(f"  {label:<26}{wall:>9.2f}{per_hour:>11.1f}{paper_per_hour:>15.2f}{args.paper_runs / paper_per_hour:>15.1f}{peak:>10.2f}")
        last = (k, wall)
    print(
        f"  (runs per hour at {PAPER_EPOCHS} epochs = runs per hour here x {args.epochs}/{PAPER_EPOCHS}: the epochs cost alike; "
        "the recorder's epoch-end passes are not included)"
    )
    if device.type == "cuda":
        sync_check(device)


def sync_check(device: torch.device) -> None:
    """Host synchronisations per training step, counted by ``torch.cuda.set_sync_debug_mode``."""
    data = cifar_sized(device, 192, 16, seed=2)
    streams = [SeedStreams(0), SeedStreams(1)]

    def count(loop: str, batch_size: int) -> int:
        config = paper_config(2, batch_size=batch_size)
        if loop == "batched":
            model = build_batched("resnet20", 10, (3, 32, 32), streams, device)
            run = lambda: train_replicates(model, data, config, streams)  # noqa: E731
        else:
            model = build_model("resnet20", 10, (3, 32, 32), streams[0].init).to(device)
            run = lambda: train(model, data, config, streams[0])  # noqa: E731
        torch.cuda.synchronize(device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    print("\nhost synchronisations (torch.cuda.set_sync_debug_mode), 2 epochs of 192 examples:")
    for loop in ("batched", "train"):
        few, many = count(loop, 96), count(loop, 16)  # 2 and 12 steps per epoch
        print(f"  {loop:<8} {few} with 4 steps, {many} with 24 steps: {(many - few) / 20:.2f} per step")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--epochs", type=int, default=None, help="default: 3 (digits), 2 (--cifar-sized), 1 with --quick")
    parser.add_argument("--runs", type=int, default=8, help="runs per architecture (digits)")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated (digits)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny data, 1 epoch, 4 runs")
    parser.add_argument("--cifar-sized", action="store_true", help="resnet20 on random CIFAR-10-sized data: runs per hour")
    parser.add_argument("--k-values", default="8,32,auto", help="batch sizes K to time (--cifar-sized)")
    parser.add_argument("--max-k", type=int, default=64, help="largest K timed for auto (--cifar-sized)")
    parser.add_argument("--paper-runs", type=int, default=120, help="runs of the paper's study (--cifar-sized)")
    parser.add_argument("--budget-s", type=float, default=180.0, help="skip larger K past this many seconds (--cifar-sized)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.quick else (2 if args.cifar_sized else 3)
    if args.quick:
        args.runs = min(args.runs, 4)
        args.k_values = "2,auto"
        args.max_k = min(args.max_k, 3)
        args.paper_runs = min(args.paper_runs, 3)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unbatchable = [a for a in args.archs if not can_batch(a)]
    if unbatchable:
        parser.error(f"cannot batch {', '.join(unbatchable)}")
    device = resolve_device(args.device)
    if args.cifar_sized:
        cifar_benchmark(args, device)
    else:
        digits_benchmark(args, device)


if __name__ == "__main__":
    main()
