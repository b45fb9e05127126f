"""Training data: scikit-learn's digits, CIFAR-10/100 from a local folder, any ``.npz`` file, or a
folder of images in torchvision's ``ImageFolder`` layout.

Datasets are loaded as NumPy arrays (no torch here): images of shape ``(n, channels, height,
width)`` as float32 in [0, 1] for ``uint8`` sources (image files included), integer labels, and
class names. An example's ``example_id`` is its index in the training set, the same in every run.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gwas_models.errors import DataError, InputError

BUILTIN_DATASETS = ("digits", "cifar10", "cifar100")
# The digits have no official split; this fixed stratified split keeps 80% for training. Image
# folders without train/ and test/ sub-folders are split the same way (see `stratified_split`).
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

#: File endings read as images in an image folder (compared case-insensitively).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
#: Side of the square images when a folder's images share one non-square size.
DEFAULT_IMAGE_SIZE = 32


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
        """What the run store keeps about the dataset.

        An image folder's info also holds ``identity`` (its number of image files and their
        content hash): two folders of one name can hold other images, and the store compares it
        to refuse mixing their runs.
        """
        info = {
            "name": self.name,
            "n_examples": self.n_examples,
            "n_test": len(self.y_test),
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "source": self.source,
        }
        if "identity" in self.source:
            info["identity"] = self.source["identity"]
        return info


def load_dataset(
    spec: str | os.PathLike[str],
    data_root: str | Path | None = None,
    download: bool = False,
    image_size: int | None = None,
) -> ImageDataset:
    """Load a dataset by name or path.

    Parameters
    ----------
    spec : str or path
        ``digits``, ``cifar10``, ``cifar100``, the path of an ``.npz`` file with arrays ``x``
        (n, h, w) or (n, c, h, w), ``y`` and optionally ``classes``, ``x_test`` and ``y_test``,
        or the path of a folder of images in torchvision's ``ImageFolder`` layout (see
        :func:`load_image_folder`).
    data_root : path, optional
        Folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/`` (torchvision's layout).
    download : bool
        Fetch CIFAR through torchvision into ``data_root`` if it is not there. Never implicit.
    image_size : int, optional
        Side of the square images read from an image folder; only for image folders.
    """
    spec = os.fspath(spec)
    # The built-in names win over a folder of the same name in the working directory.
    if spec not in BUILTIN_DATASETS and Path(spec).is_dir():
        return load_image_folder(Path(spec), image_size=image_size)
    if image_size is not None:
        # Silently ignoring it would train on other images than the caller asked for.
        raise InputError(f"image_size applies only to an image folder, not to dataset {spec!r}", parameter="image_size")
    if spec == "digits":
        return load_digits()
    if spec in ("cifar10", "cifar100"):
        if data_root is None:
            raise InputError(f"data_root is needed for dataset {spec!r}: a folder in torchvision's CIFAR layout", parameter="data_root")
        return load_cifar(spec, Path(data_root), download=download)
    if spec.endswith(".npz"):
        return load_npz(Path(spec))
    raise InputError(
        f"unknown dataset {spec!r}; valid: {', '.join(BUILTIN_DATASETS)}, "
        f"or a path to an .npz file or to a folder of images"
    )


def load_dataset_from_source(source: dict[str, Any]) -> ImageDataset:
    """Load the dataset a run store recorded (see :meth:`ImageDataset.info`)."""
    kind = source.get("kind")
    if kind == "digits":
        return load_digits()
    if kind in ("cifar10", "cifar100"):
        return load_cifar(kind, Path(source["root"]))
    if kind == "npz":
        return load_npz(Path(source["path"]))
    if kind == "image_folder" and "path" in source:
        return _reload_image_folder(source)
    raise DataError(f"the store does not say where its images come from (source {source!r})")


def load_digits() -> ImageDataset:
    """scikit-learn's bundled 8x8 handwritten digits, split 80/20 with a fixed stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = stratified_split(images, labels)
    return ImageDataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(c) for c in bunch.target_names),
        source={"kind": "digits"},
    )


def stratified_split(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed stratified train/test split of datasets without an official one.

    ``DIGITS_TEST_FRACTION`` of the examples of each class go to the test set, chosen with the
    fixed seed ``DIGITS_SPLIT_SEED``, so the split is the same in every run.

    Parameters
    ----------
    images : array of shape (n, ...)
    labels : int array of shape (n,)

    Returns
    -------
    x_train, x_test, y_train, y_test : arrays

    Raises
    ------
    ValueError
        When a class has fewer than two examples, or there are fewer test or training examples
        than classes (scikit-learn's message).
    """
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    return x_train, x_test, y_train, y_test


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


def _labels_as_classes(y_train: np.ndarray, y_test: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Labels without class names, numbered 0..K-1 in the order of their values, which name them.

    Labels 1..3 become classes 0..2 named "1", "2", "3": numbering them as they are would make a
    class 0 with no example, which no test and no plot can use.
    """
    values = np.unique(y_train)
    if values[0] < 0:  # -1 often marks an unlabelled image: never make a class of it
        raise DataError(f"{path}: labels must lie in 0 and above, found {values[0]}")
    unknown = np.setdiff1d(np.unique(y_test), values)
    if len(unknown):
        raise DataError(
            f"{path}: 'y_test' labels must lie among those of 'y' ({', '.join(map(str, values[:10]))}), "
            f"found {', '.join(map(str, unknown[:5]))}"
        )
    return np.searchsorted(values, y_train), np.searchsorted(values, y_test), tuple(str(v) for v in values)


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
        has_test = "x_test" in archive.files and "y_test" in archive.files
        y_test = _as_labels(archive["y_test"], path, "y_test") if has_test else np.empty(0, dtype=np.int64)
        if "classes" in archive.files:
            class_names = tuple(str(c) for c in np.asarray(archive["classes"]).tolist())
        else:
            y_train, y_test, class_names = _labels_as_classes(y_train, y_test, path)
        _check_labels(y_train, len(class_names), str(path))
        if has_test:
            x_test = _as_images(archive["x_test"], path, "x_test")
            if x_test.shape[1:] != x_train.shape[1:] or len(x_test) != len(y_test):
                raise DataError(f"{path}: 'x_test'/'y_test' do not match the training images")
            _check_labels(y_test, len(class_names), str(path))
        else:
            x_test = np.empty((0, *x_train.shape[1:]), dtype=np.float32)
    return ImageDataset(
        name=path.stem,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source={"kind": "npz", "path": str(path.resolve())},
    )


# Image folders in torchvision's ImageFolder layout ------------------------------------------------

# Pillow modes read as one grey channel; every other 8-bit mode (palette, RGBA, CMYK, ...) becomes RGB.
# Greyness is read from the header, not the pixels, so that deciding it decodes nothing.
_GREY_MODES = frozenset({"1", "L", "LA"})


@dataclass(frozen=True)
class _ImageFile:
    """One image of a folder, in the dataset's order."""

    path: Path
    relative: str  # POSIX path relative to the folder: names the file in the content hash
    label: int
    test: bool


def load_image_folder(root: str | Path, image_size: int | None = None) -> ImageDataset:
    """Read a folder of images in torchvision's ``ImageFolder`` layout.

    Parameters
    ----------
    root : path
        A folder with one sub-folder of images per class; the class names are the sub-folder
        names, sorted, numbered as torchvision numbers them. The class folders are either in
        ``root`` itself, and the images are split by :func:`stratified_split` (80/20, fixed), or
        in both ``train/`` and ``test/``, which must hold the same class folders (other
        sub-folders beside them, such as ``val/``, are not read). Files ending in one of
        ``IMAGE_EXTENSIONS`` (any case) are images, in nested folders of a class folder too;
        other files, and files and folders whose name starts with ``.``, are skipped.
    image_size : int, optional
        Side of the square images, in pixels. By default the images' own size when they all have
        one square size, ``DEFAULT_IMAGE_SIZE`` when they all have one non-square size; a folder
        with images of several sizes needs it.

    Returns
    -------
    ImageDataset
        Named after the folder. Every image is converted to grey (one channel) when every image of
        the folder is grey by its Pillow mode (``1``, ``L``, ``LA``; GIFs, which Pillow opens as
        palette images, and WebP files count as colour), else to RGB (alpha is dropped);
        resized, only when its size differs, with Pillow's bilinear filter (torchvision's
        ``Resize`` default, antialiased when shrinking); and scaled from 0..255 to [0, 1]
        (value / 255, like CIFAR and ``uint8`` ``.npz`` files). With ``train/`` and ``test/``
        each part is in class order, then by path; without, in the order of the split.
        ``source`` holds ``kind`` (``"image_folder"``), ``path`` (absolute), ``image_size`` (the
        side used) and ``identity``: ``n_files`` (the number of images read) and ``sha256``. The
        hash reads, for every image in the order of its path relative to the folder in POSIX
        form (``train/cat/001.png``), that path in UTF-8, a zero byte, the file's length as 8
        big-endian bytes, then the file's bytes. Moving the folder keeps its identity; changing,
        adding, removing or renaming an image changes it.

    Raises
    ------
    InputError
        ``image_size`` is not a positive whole number.
    DataError
        The folder is missing or holds no images; it has fewer than two class folders, a class
        folder without images, ``train/`` without ``test/`` (or the reverse) or the two with other
        class folders; an image cannot be read or has more than 8 bits per channel; images of
        several sizes without ``image_size``; too few images per class for the fixed split.
    """
    _check_image_size(image_size)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} not found")
    files, class_names = _list_image_folder(root)
    headers = [_image_header(file.path) for file in files]
    grey = all(mode in _GREY_MODES for mode, _ in headers)
    side = _image_side(root, files, [size for _, size in headers], image_size)
    images, sha256 = _read_images(files, "L" if grey else "RGB", side)
    labels = np.array([file.label for file in files], dtype=np.int64)
    n_train = sum(not file.test for file in files)
    if n_train < len(files):  # train/ and test/ given; training images come first
        x_train, x_test, y_train, y_test = images[:n_train], images[n_train:], labels[:n_train], labels[n_train:]
    else:
        x_train, x_test, y_train, y_test = _split_image_folder(root, images, labels, class_names)
    return ImageDataset(
        name=root.resolve().name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source={
            "kind": "image_folder",
            "path": str(root.resolve()),
            "image_size": side,
            "identity": {"n_files": len(files), "sha256": sha256},
        },
    )


def _reload_image_folder(source: dict[str, Any]) -> ImageDataset:
    """Load the image folder a store recorded; :class:`DataError` if its images changed since."""
    data = load_image_folder(Path(source["path"]), image_size=source.get("image_size"))
    recorded = source.get("identity") or {}
    found = data.source["identity"]
    # The hash is computed while reading, so a changed folder is found only after loading it.
    if found["sha256"] != recorded.get("sha256"):
        raise DataError(
            f"image folder {source['path']} no longer holds the images the store recorded: now {found['n_files']} "
            f"files with content hash {found['sha256'][:12]}, recorded {recorded.get('n_files')} files with hash "
            f"{str(recorded.get('sha256'))[:12]}"
        )
    return data


def _check_image_size(image_size: int | None) -> None:
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise InputError(f"image_size must be a whole number of pixels, got {image_size!r}", parameter="image_size")
    if image_size < 1:
        raise InputError(f"image_size must be at least 1, got {image_size}", parameter="image_size")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _list_image_folder(root: Path) -> tuple[list[_ImageFile], tuple[str, ...]]:
    """Every image of the folder in the dataset's order (train, then test), and the class names."""
    splits = [name for name in ("train", "test") if (root / name).is_dir()]
    if len(splits) == 1:
        missing = "test" if splits == ["train"] else "train"
        raise DataError(
            f"image folder {root} has {splits[0]}/ but no {missing}/; give it both, each with the same class folders, "
            f"or neither and the class folders directly in it"
        )
    # (folder holding the class folders, class name -> image files, whether it is the test set)
    if splits:
        groups = [(root / name, _class_folders(root / name), name == "test") for name in splits]
        _check_same_classes(root, groups[0][1], groups[1][1])
    else:
        groups = [(root, _class_folders(root), False)]
    class_names = tuple(groups[0][1])
    files = [
        _ImageFile(path, path.relative_to(root).as_posix(), label, test)
        for _, by_class, test in groups
        for label, paths in enumerate(by_class.values())
        for path in paths
    ]
    if not files:
        raise DataError(
            f"image folder {root} holds no images: it needs one sub-folder of images per class, "
            f"files ending in {', '.join(IMAGE_EXTENSIONS)}"
        )
    if len(class_names) < 2:
        found = f" ({class_names[0]})" if class_names else ""
        raise DataError(
            f"image folder {root} has {_count(len(class_names), 'class folder')}{found}; "
            f"a classifier needs at least two, one sub-folder of images per class"
        )
    for folder, by_class, _ in groups:
        empty = [name for name, paths in by_class.items() if not paths]
        if empty:
            raise DataError(f"class folder {folder / empty[0]} holds no images (files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return files, class_names


def _check_same_classes(root: Path, train: dict[str, list[Path]], test: dict[str, list[Path]]) -> None:
    if list(train) != list(test):
        only_train = ", ".join(sorted(set(train) - set(test))) or "none"
        only_test = ", ".join(sorted(set(test) - set(train))) or "none"
        raise DataError(
            f"image folder {root}: train/ and test/ hold different class folders "
            f"(only in train/: {only_train}; only in test/: {only_test})"
        )


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """Class name → its image files, classes sorted by name like torchvision's ``find_classes``."""
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    return {name: _image_files(folder / name) for name in names}


def _image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``, at any depth, skipping hidden files and folders, sorted by path."""
    found = []
    for directory, subfolders, names in os.walk(folder):
        # Pruning in place keeps os.walk out of hidden folders (.git, .ipynb_checkpoints, ...).
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [
            Path(directory, name)
            for name in names
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def _image_header(path: Path) -> tuple[str, tuple[int, int]]:
    """An image's Pillow mode and (width, height), from its header only (no pixels decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
    except Exception as error:
        raise DataError(f"cannot read image {path}: {_first_line(error)}") from None
    # Pillow's conversion to 8-bit modes clips these at 255 instead of scaling them.
    if mode in ("I", "F") or mode.startswith("I;16"):
        raise DataError(f"image {path} has more than 8 bits per channel (Pillow mode {mode}); save it with 8 bits per channel")
    return mode, size


def _image_side(root: Path, files: list[_ImageFile], sizes: list[tuple[int, int]], image_size: int | None) -> int:
    """The side of the square images: ``image_size``, else the images' common size."""
    if image_size is not None:
        return int(image_size)
    distinct = sorted(set(sizes))
    if len(distinct) > 1:
        # Name an example of each size: the odd image out is usually the one to look at.
        described = [
            f"{w}x{h} ({_count(sizes.count((w, h)), 'image')}, e.g. {files[sizes.index((w, h))].relative})"
            for w, h in distinct[:5]
        ]
        more = f" and {len(distinct) - 5} more sizes" if len(distinct) > 5 else ""
        raise DataError(
            f"image folder {root} holds images of several sizes: {', '.join(described)}{more}; "
            f"image_size resizes them all to one square size"
        )
    width, height = distinct[0]
    return width if width == height else DEFAULT_IMAGE_SIZE


def _read_images(files: list[_ImageFile], mode: str, side: int) -> tuple[np.ndarray, str]:
    """Every image as float32 (n, channels, side, side) in [0, 1], and the folder's content hash.

    Each file is read once: its bytes feed the hash and are then decoded.
    """
    images = np.empty((len(files), 1 if mode == "L" else 3, side, side), dtype=np.float32)
    digest = hashlib.sha256()
    # The hash follows the sorted relative paths, which can differ from the dataset's order
    # ("a b/x.png" sorts before "a/x.png" although class "a" comes first).
    for index in sorted(range(len(files)), key=lambda i: files[i].relative):
        file = files[index]
        try:
            content = file.path.read_bytes()
        except OSError as error:
            raise DataError(f"cannot read image {file.path}: {_first_line(error)}") from None
        # surrogateescape gives back the original bytes of a file name that is not valid UTF-8.
        digest.update(file.relative.encode("utf-8", "surrogateescape") + b"\0" + len(content).to_bytes(8, "big"))
        digest.update(content)
        images[index] = _decode_image(content, file.path, mode, side)
    return images, digest.hexdigest()


def _decode_image(content: bytes, path: Path, mode: str, side: int) -> np.ndarray:
    """One image file's bytes as float32 (channels, side, side) in [0, 1]."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(content))
        image.load()  # decodes now, so that a truncated or corrupt file fails here, with its name
    except Exception as error:
        raise DataError(f"cannot read image {path}: {_first_line(error)}") from None
    if image.mode == "P":
        # Through RGBA, as Pillow asks for palettes with transparency (it warns on a direct RGB conversion).
        image = image.convert("RGBA")
    image = image.convert(mode)
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return pixels.astype(np.float32) / 255.0


def _split_image_folder(
    root: Path, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed stratified split of a folder without train/ and test/; DataError when it cannot be made."""
    counts = np.bincount(labels, minlength=len(class_names))
    n_test = int(np.ceil(DIGITS_TEST_FRACTION * len(labels)))  # scikit-learn's rounding
    # scikit-learn's own conditions, checked here to name the smallest class in the message.
    if counts.min() < 2 or min(n_test, len(labels) - n_test) < len(class_names):
        test_percent = round(100 * DIGITS_TEST_FRACTION)
        smallest = int(counts.argmin())
        raise DataError(
            f"image folder {root} has too few images for the fixed {100 - test_percent}/{test_percent} split by class: "
            f"{len(labels)} images in {len(class_names)} classes, {_count(int(counts[smallest]), 'image')} in "
            f"{class_names[smallest]}, and each part needs every class; give each class more images, or give the "
            f"folder train/ and test/ sub-folders"
        )
    return stratified_split(images, labels)
