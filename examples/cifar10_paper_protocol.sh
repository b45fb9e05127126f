#!/usr/bin/env bash
# The paper's CIFAR-10 protocol (Kwok et al., "Dataset Difficulty and the Role of Inductive Bias"):
# 40 runs of resnet20 and 20 runs of each variant -- wide (resnet20-64), deep (resnet34), narrow VGG
# (vgg16-16) and shallow VGG (vgg11) -- trained with SGD for 160 epochs with crop + flip augmentation,
# every score recorded; then the association study, plots, fingerprints and the difficulty analyses.
#
# Meant for a GPU machine: on one modern GPU a resnet20 run takes minutes, the whole protocol about a
# day. It resumes where it stopped: rerun it after an interruption.
#
#   DATA=/data/cifar WORKERS=2 bash examples/cifar10_paper_protocol.sh
set -euo pipefail

DATA=${DATA:-./data}                          # holds (or receives) cifar-10-batches-py/
STORE=${STORE:-./gwasm-store-cifar10}
RESULTS=${RESULTS:-./gwasm-results-cifar10}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-1}                         # runs trained side by side on the device
export GWASM_RESULTS="$RESULTS"
mkdir -p "$RESULTS"

collect() {
    gwasm collect --dataset cifar10 --data-root "$DATA" --preset paper --device "$DEVICE" \
        --store "$STORE" --workers "$WORKERS" "$@"
}

collect --arch resnet20 --seeds 0-39 --download
for arch in resnet20-64 resnet34 vgg16-16 vgg11; do
    collect --arch "$arch" --seeds 0-19
done
gwasm runs --store "$STORE"

# Every pair of architectures, plus Welch's ANOVA across all five (paper §4.3, Figure 6).
gwasm associate --all --store "$STORE" --dataset cifar10 --out "$RESULTS/cifar10"
gwasm associate resnet20 vgg16-16 --store "$STORE" --dataset cifar10 --out "$RESULTS/cifar10"
pair="$RESULTS/cifar10.resnet20_vs_vgg16-16.sumstats.parquet"
gwasm manhattan "$pair" --out "$RESULTS/cifar10.resnet20_vs_vgg16-16.manhattan.png"
gwasm manhattan "$pair" --signed --facet --out "$RESULTS/cifar10.resnet20_vs_vgg16-16.facets.png"
gwasm qq "$pair" --out "$RESULTS/cifar10.resnet20_vs_vgg16-16.qq.png"
gwasm gallery "$(ls -t "$RESULTS"/cifar10.*_vs_*_vs_*.sumstats.parquet | head -n 1)" --store "$STORE" \
    --out "$RESULTS/cifar10.gallery.png"                                 # Figure 1, left

# Figure 1, right: 20 + 20 runs, top/bottom/random 8 markers, per score.
gwasm fingerprint resnet20 vgg16-16 --store "$STORE" --dataset cifar10 --markers 8 \
    --out "$RESULTS/cifar10.fingerprint" --save "$RESULTS/cifar10.fingerprint.json"

# Figures 2-5 on the 40 resnet20 runs, and Figure 6 (right).
for analysis in variance stability correlate pca; do
    gwasm "$analysis" resnet20 --store "$STORE" --dataset cifar10 --out "$RESULTS/cifar10.resnet20.$analysis"
done
gwasm sizes --store "$STORE" --dataset cifar10 --out "$RESULTS/cifar10.sizes"
gwasm report "$RESULTS" --store "$STORE" --out "$RESULTS/report.html"
