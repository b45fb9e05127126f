"""Record difficulty scores inside your own PyTorch training loop, then analyse them with gwasm.

Your loop stays yours: a ScoreRecorder takes each minibatch's example indices, logits and targets,
and the model at each epoch end. Here a small CNN of our own is trained on the digits for a few
seeds, and each run is written into a run store so that `gwasm associate`, `gwasm variance` and
the rest work on it like on runs from `gwasm collect`.

    python examples/own_training_loop.py --runs 3 --epochs 8 --store ./gwasm-store
    gwasm runs --store ./gwasm-store
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models.data import load_digits
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.training.recorder import ScoreRecorder


def small_cnn(n_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, n_classes),
    )  # fmt: skip


def train_one(seed: int, epochs: int, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[nn.Module, dict[str, np.ndarray]]:
    generator = torch.Generator().manual_seed(seed)  # data order: its own generator
    with torch.random.fork_rng(devices=[]):  # layers initialise from torch's global generator
        torch.manual_seed(seed)
        model = small_cnn(n_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    recorder = ScoreRecorder(x, y, n_classes=n_classes, epochs=epochs)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 64):
            example_ids = order[start : start + 64]
            recorder.before_step(model, example_ids)  # <- the paper's forgetting: a look before the step
            logits = model(x[example_ids])
            loss = F.cross_entropy(logits, y[example_ids])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recorder.observe(example_ids, logits, y[example_ids])  # <- one line per step
        recorder.end_epoch(model)  # <- one line per epoch
    return model, recorder.scores()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--store", type=Path, default=Path("gwasm-store"))
    parser.add_argument("--arch-name", default="my-cnn", help="name of the architecture in the store")
    args = parser.parse_args()

    data = load_digits()
    mean, std = data.x_train.mean(), data.x_train.std()
    x = torch.as_tensor((data.x_train - mean) / std)
    y = torch.as_tensor(data.y_train)
    write_dataset_info(args.store, data.name, data.info())
    for seed in range(args.runs):
        model, scores = train_one(seed, args.epochs, x, y, data.n_classes)
        with torch.no_grad():
            test_accuracy = (model(torch.as_tensor((data.x_test - mean) / std)).argmax(1).numpy() == data.y_test).mean()
        table = run_table(np.arange(data.n_examples), data.y_train, scores)
        provenance = {"test_accuracy": float(test_accuracy), "n_parameters": sum(p.numel() for p in model.parameters()), "seed": seed}
        path = write_run(args.store, RunKey(data.name, args.arch_name, seed), table, provenance)
        hardest = np.argsort(scores["aum"])[:5]
        print(f"seed {seed}: test accuracy {test_accuracy:.3f}; lowest-AUM examples {hardest.tolist()} -> {path}")


if __name__ == "__main__":
    main()
