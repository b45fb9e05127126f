#!/usr/bin/env bash
# Convolution against attention on CIFAR-10: which training examples does a vision transformer find
# harder than a ResNet? 20 runs of resnet20 and 20 of a small ViT from timm (6 blocks of width 256,
# 8 heads, 4x4 patches on 32x32 images), 160 epochs with crop + flip, every score recorded; then
# the association study, plots, fingerprints and the report.
#
# Meant for a GPU machine: a resnet20 run takes minutes there, the whole study several hours. It
# resumes where it stopped: rerun it after an interruption.
#
# The ViT is trained with the same SGD recipe as the ResNet at a tenth of its learning rate (SGD at
# 0.1 diverges for transformers); the learning rate is a training choice like any other, so try
# yours with --lr and compare both runs sets the same way.
#
#   DATA=/data/cifar WORKERS=2 bash examples/cifar10_cnn_vs_vit.sh
set -euo pipefail

DATA=${DATA:-./data}                          # holds (or receives) cifar-10-batches-py/
STORE=${STORE:-./gwasm-store-cifar10}
RESULTS=${RESULTS:-./gwasm-results-cifar10-vit}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-1}                         # runs trained side by side on the device
RUNS=${RUNS:-0-19}
VIT=timm:vit_small_patch16_224
export GWASM_RESULTS="$RESULTS"
mkdir -p "$RESULTS"

collect() {
    gwasm collect --dataset cifar10 --data-root "$DATA" --preset paper --device "$DEVICE" \
        --store "$STORE" --workers "$WORKERS" --seeds "$RUNS" "$@"
}

collect --arch resnet20 --download
collect --arch "$VIT" --lr 0.01 --arch-option patch_size=4 --arch-option depth=6 \
    --arch-option embed_dim=256 --arch-option num_heads=8
gwasm runs --store "$STORE"

gwasm associate resnet20 "$VIT" --store "$STORE" --dataset cifar10 --out "$RESULTS/cifar10"
pair=$(ls -t "$RESULTS"/cifar10.resnet20_vs_*.sumstats.parquet | head -n 1)
gwasm manhattan "$pair" --out "$RESULTS/cifar10.cnn_vs_vit.manhattan.png"
gwasm manhattan "$pair" --signed --facet --out "$RESULTS/cifar10.cnn_vs_vit.facets.png"
gwasm qq "$pair" --out "$RESULTS/cifar10.cnn_vs_vit.qq.png"
gwasm gallery "$pair" --store "$STORE" --out "$RESULTS/cifar10.cnn_vs_vit.gallery.png"
gwasm fingerprint resnet20 "$VIT" --store "$STORE" --dataset cifar10 --markers 8 \
    --out "$RESULTS/cifar10.cnn_vs_vit.fingerprint" --save "$RESULTS/cifar10.cnn_vs_vit.fingerprint.json"
gwasm report "$RESULTS" --store "$STORE" --out "$RESULTS/report.html"
