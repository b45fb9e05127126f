"""Shared, generic fixtures. Keep this file small: fixtures used by one module belong there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


#: A user's model factory for 8x8 grey images: a convolution, then one linear layer.
SMALL_CNN_FACTORY = (
    "from torch import nn\n"
    "def small_cnn(num_classes, in_channels):\n"
    "    return nn.Sequential(nn.Conv2d(in_channels, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 64, num_classes))\n"
)


@pytest.fixture
def user_factory(tmp_path, monkeypatch):
    """``make(package)``: write a package with :data:`SMALL_CNN_FACTORY` as ``package.models``, put
    it on ``sys.path`` and return its architecture name, ``package.models:small_cnn`` (give each test
    module a package name of its own: a package imported once stays imported)."""

    def make(package: str) -> str:
        folder = tmp_path / "code" / package
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "models.py").write_text(SMALL_CNN_FACTORY)
        monkeypatch.syspath_prepend(str(tmp_path / "code"))
        return f"{package}.models:small_cnn"

    return make


@pytest.fixture(scope="session")
def tiny_digits_npz(tmp_path_factory) -> Path:
    """A small slice of scikit-learn's digits as an ``.npz`` dataset named ``tiny_digits``.

    300 training and 100 test images of shape (8, 8) in [0, 1], labels 0-9, with class names, so
    that a run of the MLP takes a fraction of a second.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    path = tmp_path_factory.mktemp("data") / "tiny_digits.npz"
    np.savez(
        path,
        x=x[:300],
        y=y[:300],
        x_test=x[300:400],
        y_test=y[300:400],
        classes=np.array([str(c) for c in range(10)]),
    )
    return path


@pytest.fixture
def run_gwasm(capsys, tmp_path, monkeypatch):
    """Run ``gwasm`` in-process: ``code, out, err = run_gwasm("collect", "--arch", "mlp", ...)``.

    Runs in ``tmp_path`` with ``GWASM_STORE`` unset and ``GWASM_RESULTS`` pointing into
    ``tmp_path``, so that default locations never touch the checkout.
    """
    from gwasm_cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GWASM_STORE", raising=False)
    monkeypatch.setenv("GWASM_RESULTS", str(tmp_path / "gwasm-results"))

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="session")
def tiny_cifar_root(tmp_path_factory) -> Path:
    """A folder in torchvision's CIFAR layout with tiny CIFAR-10 and CIFAR-100 copies.

    Real pickle format (dicts with bytes keys, ``b'data'`` uint8 of shape (n, 3072) stored
    channel-major, row-major). CIFAR-10: 5 training batches of 4 images (labels 0-9 in turn across
    the batches) and a test batch of 6. CIFAR-100: 12 training and 5 test images, 100 fine classes
    named ``fine00``..``fine99``. Pixel (channel 0, row 5, column 7) of training image i is i.
    """
    import pickle

    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)

    def images(n: int, first: int) -> np.ndarray:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        data[:, 5 * 32 + 7] = np.arange(first, first + n)
        return data

    def dump(path: Path, payload: dict) -> None:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)

    c10 = root / "cifar-10-batches-py"
    c10.mkdir()
    for b in range(5):
        dump(c10 / f"data_batch_{b + 1}", {b"batch_label": f"training batch {b + 1} of 5".encode(), b"labels": [(4 * b + i) % 10 for i in range(4)], b"data": images(4, 4 * b), b"filenames": [b"x.png"] * 4})
    dump(c10 / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 1, 2, 3, 4, 5], b"data": images(6, 0), b"filenames": [b"x.png"] * 6})
    dump(c10 / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": 4, b"num_vis": 3072})

    c100 = root / "cifar-100-python"
    c100.mkdir()
    dump(c100 / "train", {b"fine_labels": [7 * i % 100 for i in range(12)], b"coarse_labels": [i % 20 for i in range(12)], b"data": images(12, 0), b"filenames": [b"x.png"] * 12})
    dump(c100 / "test", {b"fine_labels": [99, 0, 1, 2, 3], b"coarse_labels": [0] * 5, b"data": images(5, 0), b"filenames": [b"x.png"] * 5})
    dump(c100 / "meta", {b"fine_label_names": [f"fine{i:02d}".encode() for i in range(100)], b"coarse_label_names": [f"coarse{i:02d}".encode() for i in range(20)]})
    return root


@pytest.fixture(autouse=True)
def _results_history_outside_the_checkout(tmp_path_factory, monkeypatch):
    """Successful commands append to ``$GWASM_RESULTS/commands.log``: keep that out of the checkout."""
    monkeypatch.setenv("GWASM_RESULTS", str(tmp_path_factory.getbasetemp() / "no-results-history"))
