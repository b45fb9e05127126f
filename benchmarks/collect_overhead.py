"""Cost of recording scores, as wall-time ratios against the bare training loop.

For resnet20 on digits, one run each, measured in this process and interleaved (the machine is
shared and noisy, so only ratios measured side by side mean anything):

* baseline: ``gwas_models.training.train.train`` with no recorder at all;
* presentations: ``gwasm collect`` (``run_one``: training, recording, writing the run) with the
  definitions computed from the training minibatches' own logits only (``loss:presentations``,
  ``aum:pleiss``, ``forgetting:toneva``, ...);
* paper: ``gwasm collect --scores paper``, the default: the paper's code's definitions;
* all: ``gwasm collect --scores all``: every definition, the paper's and the named variants;
* paper-vog8: the same with VoG over 8 checkpoints instead of every epoch end (``--vog-checkpoints 8``);
* one costly definition at a time: ``forgetting`` (an eval-mode pass of each minibatch before its
  step), ``loss`` (the eval pass at every epoch end that the paper's loss, accuracy, aum, entropy,
  confidence and variability share), ``vog`` (that eval pass with the input gradient of p(true)),
  ``vog:agarwal`` (the same with the gradient of the true logit; ``vog:logit`` costs the same)
  and ``grand`` (per-example gradient norms once, at the early epoch).

Targets: paper <= 1.6x, presentations <= 1.05x. Each configuration is timed ``--repeats`` times and
the best time is kept (as ``timeit`` does: other processes on a shared machine only ever add time);
the process CPU time ratios, which other processes disturb much less, are printed beside them.

    python benchmarks/collect_overhead.py [--repeats 2] [--epochs 30] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from gwas_models.data import load_digits
from gwas_models.scores import ALL_SCORE_NAMES, MINIBATCH_SCORES, SCORE_NAMES
from gwas_models.training.collect import plan_collection, run_one
from gwas_models.training.models import build_model
from gwas_models.training.train import DeviceData, SeedStreams, preset, resolve_device, train

#: Configuration name -> (label, scores, training-config overrides, target ratio or None).
CONFIGURATIONS: dict[str, tuple[str, tuple[str, ...], dict, float | None]] = {
    "presentations": ("collect, presentation variants only", MINIBATCH_SCORES, {}, 1.05),
    "paper": ("collect --scores paper (default)", SCORE_NAMES, {}, 1.6),
    "paper-vog8": ("  the same, --vog-checkpoints 8", SCORE_NAMES, {"vog_checkpoints": 8}, None),
    "all": ("collect --scores all", ALL_SCORE_NAMES, {}, None),
    "forgetting": ("collect --scores forgetting", ("forgetting",), {}, None),
    "loss": ("collect --scores loss (eval pass)", ("loss",), {}, None),
    "vog": ("collect --scores vog", ("vog",), {}, None),
    "vog:agarwal": ("collect --scores vog:agarwal", ("vog:agarwal",), {}, None),
    "grand": ("collect --scores grand", ("grand",), {}, None),
}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_baseline(data, config, arch: str, seed: int, device: torch.device) -> tuple[float, float]:
    streams = SeedStreams(seed)
    device_data = DeviceData.from_dataset(data, device)
    model = build_model(arch, data.n_classes, data.input_shape, streams.init).to(device)
    _synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    train(model, device_data, config, streams)
    _synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_collect(data, config, arch: str, seed: int, scores, threads: int, device: torch.device) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as store:
        plan, _ = plan_collection(arch, [seed], config, scores=scores, store=store, device=device.type, threads=threads)
        wall, cpu = time.perf_counter(), time.process_time()
        run_one(plan, seed, data=data)  # ends with writing the run, which synchronises the device
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--epochs", type=int, default=None, help="default: the digits preset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--configs", default=",".join(CONFIGURATIONS), help="comma-separated, of: " + ", ".join(CONFIGURATIONS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_digits()
    config = preset("digits", epochs=args.epochs)
    seed = 0  # the same run each time, so repeats differ only by the machine's noise
    chosen = [name.strip() for name in args.configs.split(",") if name.strip()]
    measure = {"baseline": lambda: time_baseline(data, config, args.arch, seed, device)}
    for name in chosen:
        _, scores, overrides, _ = CONFIGURATIONS[name]
        changed = preset("digits", epochs=args.epochs, **overrides)
        measure[name] = lambda scores=scores, changed=changed: time_collect(data, changed, args.arch, seed, scores, args.threads, device)
    # Warm up (first-call allocations, lazy imports) outside the measurement.
    time_collect(data, preset("digits", epochs=2), args.arch, seed, ALL_SCORE_NAMES, args.threads, device)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in measure}
    names = list(measure)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]  # no configuration always first
        for name in order:
            times[name].append(measure[name]())
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in times.items()), flush=True)
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
    base_wall, base_cpu = best["baseline"]
    print(f"\n{args.arch} on digits, {config.epochs} epochs, {device}, {args.threads} thread(s), best of {args.repeats}")
    print(f"{'configuration':<38}{'wall s':>8}{'ratio':>8}{'cpu ratio':>11}{'target':>9}")
    print(f"{'training loop, no recording':<38}{base_wall:>8.2f}{1.0:>8.3f}{1.0:>11.3f}")
    for name in chosen:
        label, _, _, target = CONFIGURATIONS[name]
        wall, cpu = best[name]
        ratio = wall / base_wall
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        target_text = "" if target is None else f"<= {target}"
        print(f"{label:<38}{wall:>8.2f}{ratio:>8.3f}{cpu / base_cpu:>11.3f}{target_text:>9} {verdict}")


if __name__ == "__main__":
    main()
