"""Time a Manhattan plot of 1,000,000 examples, drawn and saved as PNG and as PDF.

Targets: at most 5 s each, and a PDF of at most 2 MB. Run with ``python benchmarks/plots.py``
(``--examples`` and ``--classes`` change the size).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gwas_models.plots._style import save_figure
from gwas_models.plots.manhattan import manhattan, manhattan_figsize


def simulated_combined_sumstats(n_examples: int, n_classes: int, n_signal: int = 200, seed: int = 0) -> pd.DataFrame:
    """Combined-evidence rows of a null study with ``n_signal`` strong hits, classes of equal size."""
    rng = np.random.default_rng(seed)
    labels = np.sort(rng.integers(0, n_classes, n_examples))
    neg_log10_p = -np.log10(rng.uniform(size=n_examples))
    hits = rng.choice(n_examples, size=n_signal, replace=False)
    neg_log10_p[hits] += rng.uniform(4.0, 30.0, size=n_signal)
    first_of_class = np.searchsorted(labels, labels, side="left")
    return pd.DataFrame(
        {
            "#CHROM": np.array([f"class{c}" for c in range(n_classes)], dtype=object)[labels],
            "POS": np.arange(n_examples) - first_of_class + 1,
            "ID": rng.permutation(n_examples),
            "LABEL": labels,
            "SCORE": "combined",
            "A": "resnet20",
            "B": "vgg16",
            "NEG_LOG10_P": neg_log10_p,
            "HARDER_IN": np.where(rng.uniform(size=n_examples) < 0.5, "resnet20", "vgg16"),
            "ERRCODE": ".",
        }
    )


def draw_and_save(table: pd.DataFrame, path: Path, n_classes: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds to draw the Manhattan plot into a new figure and save it.

    CPU time is printed too because on a shared machine the wall-clock time includes waiting for
    other processes.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    figure = Figure(figsize=manhattan_figsize(n_classes), layout="constrained")
    manhattan(table, ax=figure.add_subplot())
    save_figure(figure, path)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    arguments = parser.parse_args()
    table = simulated_combined_sumstats(arguments.examples, arguments.classes)
    with tempfile.TemporaryDirectory() as folder:
        png, pdf = Path(folder) / "manhattan.png", Path(folder) / "manhattan.pdf"
        png_wall, png_cpu = draw_and_save(table, png, arguments.classes)
        pdf_wall, pdf_cpu = draw_and_save(table, pdf, arguments.classes)
        print(f"Manhattan plot of {arguments.examples:,} examples in {arguments.classes} classes, drawn and saved")
        print(f"  PNG: {png_wall:.2f} s ({png_cpu:.2f} s CPU; target <= 5 s), {png.stat().st_size / 1e6:.2f} MB")
        print(f"  PDF: {pdf_wall:.2f} s ({pdf_cpu:.2f} s CPU; target <= 5 s), {pdf.stat().st_size / 1e6:.2f} MB (target <= 2 MB)")


if __name__ == "__main__":
    main()
