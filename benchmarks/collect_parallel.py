"""Parallel collection: `gwasm collect --workers 2` against `--workers 1`, and SLURM's start-up delay.

1. The same 4 runs (resnet20 on digits, a few epochs, one compute thread each, so that both
   commands compute identical runs) collected by ``gwasm collect --workers 1`` and by
   ``--workers 2``, each into a fresh store, measured in this run, interleaved, best of
   ``--repeats`` (other processes on a shared machine only ever add time). Each command is a
   fresh process, as a user runs it, so both include starting Python and importing torch; the
   workers also start their own processes. Target: ratio <= 0.8 on 2 cores.

2. When SLURM's ``sbatch`` is on the PATH: the delay from the return of ``--executor slurm``
   (the job array submitted) to the job's first task running (squeue) and to its first run
   starting to train (its claim file appears in the store: Python started, torch imported, the
   data loaded), for one tiny run on the cluster at hand (scripts/slurm-single-node.sh).

    python benchmarks/collect_parallel.py [--epochs 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.8


def time_collect(store: Path, workers: int, epochs: int, runs: int) -> float:
    """Wall seconds of one ``gwasm collect`` process."""
    command = [sys.executable, "-m", "gwasm_cli.main", "collect", "--arch", "resnet20", "--dataset", "digits", "--runs", str(runs)]
    command += ["--epochs", str(epochs), "--threads", "1", "--device", "cpu", "--workers", str(workers), "--store", str(store), "-q"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def compare_workers(epochs: int, runs: int, repeats: int) -> None:
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            for workers in (1, 2):
                times[workers].append(time_collect(Path(folder) / f"w{workers}-r{repeat}", workers, epochs, runs))
            print(f"repeat {repeat + 1}: workers 1 {times[1][-1]:.1f} s, workers 2 {times[2][-1]:.1f} s", flush=True)
    one, two = min(times[1]), min(times[2])
    ratio = two / one
    print(f"\n{runs} runs of resnet20 on digits, {epochs} epochs, 1 thread per run, best of {repeats}")
    print(f"--workers 1: {one:.1f} s   --workers 2: {two:.1f} s   ratio {ratio:.2f} (target <= {TARGET}: {'ok' if ratio <= TARGET else 'MISSED'})")


def slurm_start_delay(epochs: int) -> None:
    from gwas_models.workflows.collect import collect_runs

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:  # the jobs must see the store
        store = Path(folder) / "store"
        collection = collect_runs("mlp", runs=1, overrides={"epochs": epochs}, store=store, device="cpu", executor="slurm")
        submitted = time.perf_counter()
        running = claimed = None
        claims = store / f"dataset={collection.dataset}" / f"arch={collection.label}"
        while claimed is None and time.perf_counter() - submitted < 300:
            if running is None:
                state = subprocess.run(["squeue", "-h", "-j", collection.job_id, "-o", "%T"], capture_output=True, text=True).stdout
                if "RUNNING" in state or "COMPLETING" in state:
                    running = time.perf_counter() - submitted
            if claims.is_dir() and (any(claims.glob(".seed=*.claim")) or any(claims.glob("seed=*"))):
                claimed = time.perf_counter() - submitted
            time.sleep(0.05)
        print(f"\nSLURM ({shutil.which('sbatch')}): job {collection.job_id} submitted; first task running after "
              f"{running if running is None else f'{running:.2f} s'}, first run training after {claimed if claimed is None else f'{claimed:.2f} s'}")
        # Let the job finish before its store goes.
        while subprocess.run(["squeue", "-h", "-t", "PD,R,CG", "-j", collection.job_id], capture_output=True, text=True).stdout.strip():
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    compare_workers(args.epochs, args.runs, args.repeats)
    if shutil.which("sbatch"):
        slurm_start_delay(epochs=1)
    else:
        print("\nSLURM: sbatch not found; skipped the start-up delay (scripts/slurm-single-node.sh starts a local cluster)")


if __name__ == "__main__":
    main()
