"""Cost of recording scores, as wall-time ratios against the bare training loop.

For resnet20 on digits, one run each, measured in this process and interleaved (the machine is
shared and noisy, so only ratios measured side by side mean anything):

* baseline: ``gwas_models.training.train.train`` with no recorder at all;
* minibatch: ``gwasm collect`` (``run_one``: training, recording, writing the run) with the
  presentation scores only (loss, accuracy, aum, forgetting, entropy);
* all: ``gwasm collect`` with every score.

Targets: all <= 1.6x, minibatch <= 1.05x. Each configuration is timed ``--repeats`` times and the
best time is kept (as ``timeit`` does: other processes on a shared machine only ever add time);
the process CPU time ratios, which other processes disturb much less, are printed beside them.

    python benchmarks/collect_overhead.py [--repeats 2] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from gwas_models.data import load_digits
from gwas_models.scores import MINIBATCH_SCORES, SCORE_NAMES
from gwas_models.training.collect import plan_collection, run_one
from gwas_models.training.models import build_model
from gwas_models.training.train import DeviceData, SeedStreams, preset, train


def time_baseline(data, config, arch: str, seed: int) -> tuple[float, float]:
    streams = SeedStreams(seed)
    device_data = DeviceData.from_dataset(data, torch.device("cpu"))
    model = build_model(arch, data.n_classes, data.input_shape, streams.init)
    wall, cpu = time.perf_counter(), time.process_time()
    train(model, device_data, config, streams)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_collect(data, config, arch: str, seed: int, scores, threads: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as store:
        plan, _ = plan_collection(arch, [seed], config, scores=scores, store=store, device="cpu", threads=threads)
        wall, cpu = time.perf_counter(), time.process_time()
        run_one(plan, seed, data=data)
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--epochs", type=int, default=None, help="default: the digits preset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits()
    config = preset("digits", epochs=args.epochs)
    seed = 0  # the same run each time, so repeats differ only by the machine's noise
    measure = {
        "baseline": lambda: time_baseline(data, config, args.arch, seed),
        "minibatch": lambda: time_collect(data, config, args.arch, seed, MINIBATCH_SCORES, args.threads),
        "all": lambda: time_collect(data, config, args.arch, seed, SCORE_NAMES, args.threads),
    }
    # Warm up (first-call allocations, lazy imports) outside the measurement.
    time_collect(data, preset("digits", epochs=1), args.arch, seed, SCORE_NAMES, args.threads)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in measure}
    names = list(measure)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]  # no configuration always first
        for name in order:
            times[name].append(measure[name]())
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in times.items()), flush=True)
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
    base_wall, base_cpu = best["baseline"]
    print(f"\n{args.arch} on digits, {config.epochs} epochs, {args.threads} thread(s), best of {args.repeats}")
    print(f"{'configuration':<34}{'wall s':>8}{'ratio':>8}{'cpu ratio':>11}{'target':>9}")
    print(f"{'training loop, no recording':<34}{base_wall:>8.2f}{1.0:>8.3f}{1.0:>11.3f}")
    for name, label, target in (("minibatch", "collect, minibatch scores only", 1.05), ("all", "collect, all scores", 1.6)):
        wall, cpu = best[name]
        ratio = wall / base_wall
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"{label:<34}{wall:>8.2f}{ratio:>8.3f}{cpu / base_cpu:>11.3f}{'<= ' + str(target):>9} {verdict}")


if __name__ == "__main__":
    main()
