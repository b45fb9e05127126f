"""Cost of recording scores, as wall-time ratios against the bare training loop.

For resnet20 on digits, one run each, measured in this process and interleaved (the machine is
shared and noisy, so only ratios measured side by side mean anything):

* baseline: ``gwas_models.training.train.train`` with no recorder at all;
* minibatch: ``gwasm collect`` (``run_one``: training, recording, writing the run) with the
  presentation scores only (loss, accuracy, aum, forgetting, entropy);
* all: ``gwasm collect`` with every score.

Targets: all <= 1.6x, minibatch <= 1.05x.

    python benchmarks/collect_overhead.py [--repeats 2] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from gwas_models.data import load_digits
from gwas_models.scores import MINIBATCH_SCORES, SCORE_NAMES
from gwas_models.training.collect import plan_collection, run_one
from gwas_models.training.models import build_model
from gwas_models.training.train import DeviceData, SeedStreams, preset, train


def time_baseline(data, config, arch: str, seed: int) -> float:
    streams = SeedStreams(seed)
    device_data = DeviceData.from_dataset(data, torch.device("cpu"))
    model = build_model(arch, data.n_classes, data.input_shape, streams.init)
    started = time.perf_counter()
    train(model, device_data, config, streams)
    return time.perf_counter() - started


def time_collect(data, config, arch: str, seed: int, scores, threads: int) -> float:
    with tempfile.TemporaryDirectory() as store:
        plan, _ = plan_collection(arch, [seed], config, scores=scores, store=store, device="cpu", threads=threads)
        started = time.perf_counter()
        run_one(plan, seed, data=data)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--epochs", type=int, default=None, help="default: the digits preset")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits()
    config = preset("digits", epochs=args.epochs)
    times: dict[str, list[float]] = {"baseline": [], "minibatch": [], "all": []}
    for repeat in range(args.repeats):
        seed = repeat
        times["baseline"].append(time_baseline(data, config, args.arch, seed))
        times["minibatch"].append(time_collect(data, config, args.arch, seed, MINIBATCH_SCORES, args.threads))
        times["all"].append(time_collect(data, config, args.arch, seed, SCORE_NAMES, args.threads))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    base = statistics.median(times["baseline"])
    print(f"\n{args.arch} on digits, {config.epochs} epochs, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'configuration':<34}{'seconds':>9}{'ratio':>8}{'target':>9}")
    print(f"{'training loop, no recording':<34}{base:>9.2f}{1.0:>8.3f}{'':>9}")
    for name, label, target in (("minibatch", "collect, minibatch scores only", 1.05), ("all", "collect, all scores", 1.6)):
        median = statistics.median(times[name])
        ratio = median / base
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"{label:<34}{median:>9.2f}{ratio:>8.3f}{'<= ' + str(target):>9} {verdict}")


if __name__ == "__main__":
    main()
