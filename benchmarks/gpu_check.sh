#!/usr/bin/env bash
# Collection speed on a CUDA machine, in under 5 minutes: batched replicates against one run after
# another (the ratios of benchmarks/collect_speed.py, on digits), then runs per hour of resnet20 on
# random CIFAR-10-sized data (50,000 x 3 x 32 x 32, 2 epochs) alone and batched, extrapolated to
# the paper's 160 epochs, and the host synchronisations per training step.
#
#   bash benchmarks/gpu_check.sh            # from anywhere; needs the package installed (pip install -e .)
#
# Exits non-zero, saying why, when no CUDA device is usable.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False); run it on a machine with an NVIDIA GPU" >&2
    exit 1
fi
python -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}")'

started=$SECONDS
status=0
# Digits: the same ratios as on a CPU (no worker processes on one GPU). About 1 minute.
timeout 110 python benchmarks/collect_speed.py --device cuda --epochs 2 || { status=$?; echo "gpu_check: the digits part failed (exit $status)" >&2; }
echo
# CIFAR-10-sized: one run alone, then K = 8, 32 and auto (capped at 64), within a 150 s budget.
timeout 170 python benchmarks/collect_speed.py --device cuda --cifar-sized --epochs 2 --k-values 8,32,auto --max-k 64 --budget-s 150 \
    || { status=$?; echo "gpu_check: the CIFAR-sized part failed (exit $status)" >&2; }
echo
echo "gpu_check: done in $((SECONDS - started)) s"
exit "$status"
