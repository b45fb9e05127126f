"""How quickly the command line answers: `gwasm --help` and a mistyped `--arch`, against Python.

Each command runs as a fresh process, as a user types it, ``--repeats`` times in rotated order; the
best time of each is printed with its ratio to ``python -c pass`` measured in the same run (this
machine is shared and noisy, so only best-of-N and ratios mean something). Targets: ``gwasm
--help`` within 0.5 s and a bad ``--arch`` reported within 1 s.

Run with ``python benchmarks/cli_latency.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

TARGETS = {"gwasm --help": 0.5, "gwasm collect --arch resnt20": 1.0}
#: What each command must print (and its exit code), so that a fast failure is not timed as success.
EXPECTED = {
    "python -c pass": (0, ""),
    "gwasm --help": (0, "Commands:"),
    "gwasm --version": (0, "gwasm "),
    "gwasm collect --arch resnt20": (2, "unknown architecture 'resnt20'"),
}


def commands() -> dict[str, list[str]]:
    gwasm = shutil.which("gwasm") or sys.exit("gwasm is not on the PATH: pip install -e . first")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "gwasm --help": [gwasm, "--help"],
        "gwasm --version": [gwasm, "--version"],
        "gwasm collect --arch resnt20": [gwasm, "collect", "--arch", "resnt20"],
    }


def best_times(runs: dict[str, list[str]], repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in runs}
    names = list(runs)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            started = time.perf_counter()
            result = subprocess.run(runs[name], capture_output=True, text=True, check=False)
            best[name] = min(best[name], time.perf_counter() - started)
            code, text = EXPECTED[name]
            if result.returncode != code or text not in result.stdout + result.stderr:
                sys.exit(f"{name}: exit {result.returncode}, not the expected answer: {result.stderr.strip()[:200]}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    best = best_times(commands(), args.repeats)
    baseline = best["python -c pass"]
    print(f"{'command':<32} {'best (s)':>9} {'ratio':>7} {'target (s)':>11}")
    for name, seconds in best.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"{target:>9.1f} {'met' if seconds <= target else 'MISSED'}"
        print(f"{name:<32} {seconds:>9.3f} {seconds / baseline:>6.1f}x {verdict}")


if __name__ == "__main__":
    main()
