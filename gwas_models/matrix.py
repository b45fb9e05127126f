"""The score matrix: the contract between the run store and every analysis.

A score matrix holds one score for every (run, training example): a float64 array of shape
``(n_runs, n_examples)`` with a ``(n_runs,)`` vector of group labels (the architecture of each run)
and the examples' ids, labels and class names. Analyses take it and never read files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from gwas_models.errors import InputError


@dataclass(frozen=True)
class ScoreMatrix:
    """One score of many runs over the same training examples.

    Attributes
    ----------
    score : str
        Score name (a column of the run store).
    values : float64 array of shape (n_runs, n_examples)
    groups : str array of shape (n_runs,)
        Architecture of each run.
    seeds : int array of shape (n_runs,)
        Replicate seed of each run; runs of two architectures with the same seed saw the same data
        order and augmentation.
    example_id : int array of shape (n_examples,)
        Index of each example in the training set.
    labels : int array of shape (n_examples,)
        Class index of each example.
    class_names : tuple of str
        Name of each class index (the "chromosomes").
    dataset : str
    higher_is_harder : bool
        Direction of the score.
    """

    score: str
    values: np.ndarray
    groups: np.ndarray
    seeds: np.ndarray
    example_id: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    dataset: str = ""
    higher_is_harder: bool = True

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2:
            raise InputError(f"score matrix {self.score!r} must be 2-D (n_runs, n_examples), got shape {values.shape}")
        n_runs, n_examples = values.shape
        groups = np.asarray(self.groups).astype(str)
        seeds = np.asarray(self.seeds, dtype=np.int64)
        example_id = np.asarray(self.example_id, dtype=np.int64)
        labels = np.asarray(self.labels, dtype=np.int64)
        if groups.shape != (n_runs,) or seeds.shape != (n_runs,):
            raise InputError(f"score matrix {self.score!r}: groups and seeds need one entry per run ({n_runs})")
        if example_id.shape != (n_examples,) or labels.shape != (n_examples,):
            raise InputError(f"score matrix {self.score!r}: example_id and labels need one entry per example ({n_examples})")
        if n_examples and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise InputError(f"score matrix {self.score!r}: labels outside 0..{len(self.class_names) - 1}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "example_id", example_id)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def n_runs(self) -> int:
        return self.values.shape[0]

    @property
    def n_examples(self) -> int:
        return self.values.shape[1]

    @property
    def sign(self) -> int:
        """+1 when higher is harder, else -1."""
        return 1 if self.higher_is_harder else -1

    def group_names(self) -> list[str]:
        """Distinct groups in order of first appearance."""
        return list(dict.fromkeys(self.groups.tolist()))

    def runs_of(self, group: str) -> np.ndarray:
        """The ``(n_runs_of_group, n_examples)`` block of one group (raises if it has no run)."""
        mask = self.groups == group
        if not mask.any():
            raise InputError(f"no runs of {group!r} for score {self.score!r}; groups present: {', '.join(self.group_names())}")
        return self.values[mask]

    def subset_runs(self, mask: np.ndarray) -> "ScoreMatrix":
        """A new matrix with the runs selected by a boolean mask or index array."""
        return ScoreMatrix(
            score=self.score,
            values=self.values[mask],
            groups=self.groups[mask],
            seeds=self.seeds[mask],
            example_id=self.example_id,
            labels=self.labels,
            class_names=self.class_names,
            dataset=self.dataset,
            higher_is_harder=self.higher_is_harder,
        )

    def positions(self) -> np.ndarray:
        """1-based order of every example inside its class, by example id (the ``POS`` column)."""
        return within_class_positions(self.labels, self.example_id)


def check_same_runs(matrices: Mapping[str, ScoreMatrix]) -> None:
    """Raise :class:`InputError` unless every matrix covers the same runs and examples.

    Testing, correlating or combining scores run by run needs every score of the same runs (same
    architectures and seeds, in the same order) over the same examples.
    """
    if not matrices:
        return
    first_name, first = next(iter(matrices.items()))
    for name, matrix in matrices.items():
        same = (
            np.array_equal(matrix.groups, first.groups)
            and np.array_equal(matrix.seeds, first.seeds)
            and np.array_equal(matrix.example_id, first.example_id)
        )
        if not same:
            raise InputError(f"scores {first_name!r} and {name!r} do not cover the same runs and examples")


def within_class_positions(labels: np.ndarray, example_id: np.ndarray) -> np.ndarray:
    """1-based rank of each example among the examples of its class, ordered by example id."""
    labels = np.asarray(labels)
    order = np.lexsort((np.asarray(example_id), labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    positions = np.empty(len(labels), dtype=np.int64)
    positions[order] = np.arange(len(labels)) - starts + 1
    return positions


def format_seeds(seeds: Iterable[int]) -> str:
    """Compact seed ranges: ``[0, 1, 2, 5]`` -> ``"0-2,5"`` (``""`` for no seed)."""
    ranges: list[list[int]] = []
    for seed in sorted(set(int(s) for s in seeds)):
        if ranges and seed == ranges[-1][1] + 1:
            ranges[-1][1] = seed
        else:
            ranges.append([seed, seed])
    return ",".join(f"{low}-{high}" if high > low else f"{low}" for low, high in ranges)
