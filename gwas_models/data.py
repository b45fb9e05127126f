"""Training data: scikit-learn's digits, CIFAR-10/100 from a local folder, or any ``.npz`` file.

Datasets are loaded as NumPy arrays (no torch here): images of shape ``(n, channels, height,
width)`` as float32 in [0, 1] for ``uint8`` sources, integer labels, and class names. An
example's ``example_id`` is its index in the training set, the same in every run.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gwas_models.errors import DataError, InputError

BUILTIN_DATASETS = ("digits", "cifar10", "cifar100")
# The digits have no official split; this fixed stratified split keeps 80% for training.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image classification dataset held in memory.

    Attributes
    ----------
    name : str
        Name used in the run store (``digits``, ``cifar10``, or the ``.npz`` file's stem).
    x_train, x_test : float32 arrays of shape (n, channels, height, width)
    y_train, y_test : int64 arrays of shape (n,)
    class_names : tuple of str
    source : dict
        How to load the same data again (kept in the store, used by the gallery).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_examples(self) -> int:
        return len(self.y_train)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def info(self) -> dict[str, Any]:
        """What the run store keeps about the dataset."""
        return {
            "name": self.name,
            "n_examples": self.n_examples,
            "n_test": len(self.y_test),
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "source": self.source,
        }


def load_dataset(spec: str, data_root: str | Path | None = None, download: bool = False) -> ImageDataset:
    """Load a dataset by name or path.

    Parameters
    ----------
    spec : str
        ``digits``, ``cifar10``, ``cifar100``, or the path of an ``.npz`` file with arrays ``x``
        (n, h, w) or (n, c, h, w), ``y`` and optionally ``classes``, ``x_test`` and ``y_test``.
    data_root : path, optional
        Folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/`` (torchvision's layout).
    download : bool
        Fetch CIFAR through torchvision into ``data_root`` if it is not there. Never implicit.
    """
    if spec == "digits":
        return load_digits()
    if spec in ("cifar10", "cifar100"):
        if data_root is None:
            raise InputError(f"data_root is needed for dataset {spec!r}: a folder in torchvision's CIFAR layout", parameter="data_root")
        return load_cifar(spec, Path(data_root), download=download)
    if spec.endswith(".npz"):
        return load_npz(Path(spec))
    raise InputError(f"unknown dataset {spec!r}; valid: {', '.join(BUILTIN_DATASETS)}, or a path to an .npz file")


def load_dataset_from_source(source: dict[str, Any]) -> ImageDataset:
    """Load the dataset a run store recorded (see :meth:`ImageDataset.info`)."""
    kind = source.get("kind")
    if kind == "digits":
        return load_digits()
    if kind in ("cifar10", "cifar100"):
        return load_cifar(kind, Path(source["root"]))
    if kind == "npz":
        return load_npz(Path(source["path"]))
    raise DataError(f"the store does not say where its images come from (source {source!r})")


def load_digits() -> ImageDataset:
    """scikit-learn's bundled 8x8 handwritten digits, split 80/20 with a fixed stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    return ImageDataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(c) for c in bunch.target_names),
        source={"kind": "digits"},
    )


_CIFAR_LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "names_key": "label_names",
        "labels_key": "labels",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "names_key": "fine_label_names",
        "labels_key": "fine_labels",
    },
}


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = pickle.load(handle, encoding="bytes")
    except FileNotFoundError:
        raise DataError(f"missing CIFAR file {path}") from None
    except Exception as error:
        raise DataError(f"cannot read CIFAR file {path}: {error}") from None
    if not isinstance(raw, dict):
        raise DataError(f"CIFAR file {path} does not hold a pickled dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _cifar_split(folder: Path, files: list[str], labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in files:
        batch = _unpickle(folder / name)
        if "data" not in batch or labels_key not in batch:
            raise DataError(f"CIFAR file {folder / name} lacks 'data' or '{labels_key}'")
        data = np.asarray(batch["data"], dtype=np.uint8)
        batch_labels = np.asarray(batch[labels_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"CIFAR file {folder / name}: 'data' must have shape (n, 3072), got {data.shape}")
        if len(batch_labels) != len(data):
            raise DataError(f"CIFAR file {folder / name} has {len(data)} images but {len(batch_labels)} labels")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return np.concatenate(images).astype(np.float32) / 255.0, np.concatenate(labels)


def load_cifar(name: str, root: Path, download: bool = False) -> ImageDataset:
    """Read CIFAR-10/100 pickled batches directly from ``root`` (torchvision's layout).

    torchvision's dataset classes check every file's MD5 on each load; reading the batches here is
    faster and also accepts small test folders in the same format. torchvision is used only to
    download, and only when asked.
    """
    layout = _CIFAR_LAYOUT[name]
    folder = root / layout["folder"]
    if not folder.is_dir():
        if not download:
            raise DataError(f"{folder} not found; give the folder holding it as data_root, or ask for the download")
        _download_cifar(name, root)
    meta = _unpickle(folder / layout["meta"])
    if layout["names_key"] not in meta:
        raise DataError(f"CIFAR file {folder / layout['meta']} lacks '{layout['names_key']}'")
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[layout["names_key"]])
    x_train, y_train = _cifar_split(folder, layout["train"], layout["labels_key"])
    x_test, y_test = _cifar_split(folder, layout["test"], layout["labels_key"])
    _check_labels(y_train, len(class_names), str(folder))
    return ImageDataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source={"kind": name, "root": str(root.resolve())},
    )


def _download_cifar(name: str, root: Path) -> None:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        cls(root=str(root), train=True, download=True)
    except Exception as error:
        raise DataError(f"downloading {name} into {root} failed: {error}") from None


def _as_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise DataError(f"{path}: '{key}' must have shape (n, h, w) or (n, c, h, w), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: '{key}' must be numeric, got {x.dtype}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: '{key}' contains NaN or infinite values")
    return x


def _as_labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{path}: '{key}' must be a 1-D label vector, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise DataError(f"{path}: '{key}' must hold integer class labels")
    return y.astype(np.int64)


def _check_labels(labels: np.ndarray, n_classes: int, where: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{where}: labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}")


def load_npz(path: Path) -> ImageDataset:
    """Read ``x``, ``y`` and optional ``classes``, ``x_test``, ``y_test`` from an ``.npz`` file."""
    if not path.is_file():
        raise DataError(f"dataset file {path} not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DataError(f"cannot read {path} as .npz: {error}") from None
    with archive:
        missing = [key for key in ("x", "y") if key not in archive.files]
        if missing:
            raise DataError(f"{path} has no array {' or '.join(repr(m) for m in missing)}; it needs 'x' (images) and 'y' (labels)")
        x_train = _as_images(archive["x"], path, "x")
        y_train = _as_labels(archive["y"], path, "y")
        if len(x_train) != len(y_train):
            raise DataError(f"{path}: 'x' has {len(x_train)} images but 'y' has {len(y_train)} labels")
        if len(y_train) == 0:
            raise DataError(f"{path}: the dataset is empty")
        if "classes" in archive.files:
            class_names = tuple(str(c) for c in np.asarray(archive["classes"]).tolist())
        else:
            class_names = tuple(str(c) for c in range(int(y_train.max()) + 1))
        _check_labels(y_train, len(class_names), str(path))
        if "x_test" in archive.files and "y_test" in archive.files:
            x_test = _as_images(archive["x_test"], path, "x_test")
            y_test = _as_labels(archive["y_test"], path, "y_test")
            if x_test.shape[1:] != x_train.shape[1:] or len(x_test) != len(y_test):
                raise DataError(f"{path}: 'x_test'/'y_test' do not match the training images")
            _check_labels(y_test, len(class_names), str(path))
        else:
            x_test = np.empty((0, *x_train.shape[1:]), dtype=np.float32)
            y_test = np.empty(0, dtype=np.int64)
    return ImageDataset(
        name=path.stem,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source={"kind": "npz", "path": str(path.resolve())},
    )
