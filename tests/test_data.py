"""Datasets: digits, CIFAR-10/100 pickles in torchvision's layout, and .npz files."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from gwas_models.data import ImageDataset, load_cifar, load_dataset, load_dataset_from_source, load_digits, load_npz
from gwas_models.errors import DataError, GwasmError, InputError

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_digits():
    data = load_digits()
    assert data.name == "digits"
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.n_examples == 1437 and data.n_classes == 10 and data.input_shape == (1, 8, 8)
    # stratified: every class in both splits, in similar proportions
    train_share = np.bincount(data.y_train) / 1437
    test_share = np.bincount(data.y_test) / 360
    assert np.abs(train_share - test_share).max() < 0.01
    # fixed split: the same every time
    again = load_digits()
    np.testing.assert_array_equal(again.x_train, data.x_train)
    assert load_dataset("digits").n_examples == 1437


def test_cifar10(tiny_cifar_root):
    data = load_dataset("cifar10", data_root=tiny_cifar_root)
    assert data.name == "cifar10"
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.class_names == CIFAR10_NAMES
    # batches 1..5 concatenated in order
    np.testing.assert_array_equal(data.y_train, [i % 10 for i in range(20)])
    np.testing.assert_array_equal(data.y_test, [0, 1, 2, 3, 4, 5])
    # channel-major, row-major pixel layout: channel 0, row 5, column 7 holds the image index
    np.testing.assert_allclose(data.x_train[:, 0, 5, 7], np.arange(20) / 255.0, atol=1e-7)
    raw = pickle.load(open(tiny_cifar_root / "cifar-10-batches-py" / "data_batch_2", "rb"), encoding="bytes")
    np.testing.assert_allclose(data.x_train[4:8].reshape(4, -1), raw[b"data"] / 255.0, atol=1e-7)
    assert data.source == {"kind": "cifar10", "root": str(tiny_cifar_root.resolve())}
    again = load_dataset_from_source(data.source)
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_cifar100(tiny_cifar_root):
    data = load_dataset("cifar100", data_root=str(tiny_cifar_root))
    assert data.name == "cifar100"
    assert data.x_train.shape == (12, 3, 32, 32) and data.x_test.shape == (5, 3, 32, 32)
    assert data.n_classes == 100 and data.class_names[0] == "fine00" and data.class_names[99] == "fine99"
    np.testing.assert_array_equal(data.y_train, [7 * i % 100 for i in range(12)])  # fine labels, not coarse
    np.testing.assert_array_equal(data.y_test, [99, 0, 1, 2, 3])
    assert load_dataset_from_source(data.source).n_examples == 12


def test_cifar_errors(tmp_path, tiny_cifar_root):
    with pytest.raises(InputError, match="data_root"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", data_root=tmp_path)
    # a folder with a missing batch file
    broken = tmp_path / "broken"
    shutil.copytree(tiny_cifar_root / "cifar-10-batches-py", broken / "cifar-10-batches-py")
    (broken / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar("cifar10", broken)
    # a garbage file in place of a batch
    (broken / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar("cifar10", broken)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_grey_without_classes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((10, 6, 5)).astype(np.float64)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    data = load_dataset(str(_save(tmp_path / "shapes.npz", x=x, y=y)))
    assert isinstance(data, ImageDataset)
    assert data.name == "shapes"
    assert data.x_train.shape == (10, 1, 6, 5) and data.x_train.dtype == np.float32
    np.testing.assert_allclose(data.x_train[:, 0], x, rtol=1e-6)
    assert data.y_train.dtype == np.int64
    assert data.class_names == ("0", "1", "2", "3")
    assert data.x_test.shape == (0, 1, 6, 5) and data.y_test.shape == (0,)
    assert data.source == {"kind": "npz", "path": str((tmp_path / "shapes.npz").resolve())}
    assert data.info() == {
        "name": "shapes",
        "n_examples": 10,
        "n_test": 0,
        "class_names": ["0", "1", "2", "3"],
        "input_shape": [1, 6, 5],
        "source": data.source,
    }


def test_npz_colour_uint8_with_classes_and_test(tmp_path):
    x = np.full((4, 3, 4, 4), 255, dtype=np.uint8)
    x[0, 2, 1, 1] = 51
    path = _save(
        tmp_path / "rgb.npz",
        x=x,
        y=np.array([0, 1, 1, 0]),
        classes=np.array(["cat", "dog", "eel"]),
        x_test=np.zeros((2, 3, 4, 4), dtype=np.uint8),
        y_test=np.array([2, 0]),
    )
    data = load_npz(path)
    assert data.x_train.shape == (4, 3, 4, 4) and data.x_train.max() == 1.0
    assert data.x_train[0, 2, 1, 1] == pytest.approx(0.2)
    assert data.class_names == ("cat", "dog", "eel") and data.n_classes == 3
    assert data.x_test.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(data.y_test, [2, 0])
    # float labels with integer values are accepted
    data = load_npz(_save(tmp_path / "floaty.npz", x=x, y=np.array([0.0, 1.0, 1.0, 0.0])))
    assert data.y_train.dtype == np.int64 and data.class_names == ("0", "1")
    assert load_dataset_from_source(data.source).n_examples == 4


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"y": np.zeros(3, int)}, "'x'"),
        ({"x": np.zeros((3, 4, 4))}, "'y'"),
        ({"x": np.zeros((3, 4, 4)), "y": np.array([0, 1, 2]), "classes": np.array(["a", "b"])}, r"labels must lie in 0\.\.1"),
        ({"x": np.zeros((3, 4, 4)), "y": np.array([0, -1, 1])}, "labels must lie"),
        ({"x": np.zeros((3, 4, 4)), "y": np.array([0, 1])}, "3 images but 'y' has 2"),
        ({"x": np.zeros((0, 4, 4)), "y": np.zeros(0, int)}, "empty"),
        ({"x": np.zeros((3, 4)), "y": np.array([0, 1, 2])}, "shape"),
        ({"x": np.zeros((3, 1, 1, 4, 4)), "y": np.array([0, 1, 2])}, "shape"),
        ({"x": np.full((3, 4, 4), np.nan), "y": np.array([0, 1, 2])}, "NaN"),
        ({"x": np.zeros((3, 4, 4)), "y": np.array([0.5, 1, 2])}, "integer"),
        ({"x": np.zeros((3, 4, 4)), "y": np.zeros((3, 1), int)}, "1-D"),
        ({"x": np.array([["a"] * 4] * 3 * 4).reshape(3, 4, 4), "y": np.array([0, 1, 2])}, "numeric"),
        (
            {"x": np.zeros((3, 4, 4)), "y": np.array([0, 1, 2]), "x_test": np.zeros((2, 5, 5)), "y_test": np.array([0, 1])},
            "x_test",
        ),
        (
            {"x": np.zeros((3, 4, 4)), "y": np.array([0, 1, 2]), "x_test": np.zeros((2, 4, 4)), "y_test": np.array([0, 7])},
            "labels must lie",
        ),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load_dataset(str(path))


def test_npz_missing_or_unreadable(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "absent.npz"))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(str(tmp_path / "junk.npz"))


def test_unknown_dataset_and_source():
    with pytest.raises(InputError) as info:
        load_dataset("mnist")
    assert "digits" in str(info.value) and "cifar10" in str(info.value) and ".npz" in str(info.value)
    with pytest.raises(DataError):
        load_dataset_from_source({})
    assert issubclass(DataError, GwasmError) and issubclass(InputError, GwasmError)


def _malformed_cifar(root, case):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name, payload):
        with open(folder / name, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)

    for b in range(1, 6):
        dump(f"data_batch_{b}", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    dump("test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    dump("batches.meta", {b"label_names": [b"a", b"b"]})
    if case == "meta without label_names":
        dump("batches.meta", {b"num_vis": 3072})
    elif case == "rows of the wrong width":
        dump("data_batch_2", {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]})
    elif case == "more labels than images":
        dump("data_batch_2", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 1]})
    elif case == "not a dict":
        dump("data_batch_2", [1, 2, 3])


@pytest.mark.parametrize("case", ["meta without label_names", "rows of the wrong width", "more labels than images", "not a dict"])
def test_malformed_cifar_is_a_data_error(tmp_path, case):
    _malformed_cifar(tmp_path, case)
    with pytest.raises(DataError):
        load_cifar("cifar10", tmp_path)


def test_npz_labels_without_class_names_are_numbered_by_value(tmp_path):
    path = tmp_path / "one_to_three.npz"
    np.savez(path, x=np.zeros((6, 4, 4)), y=np.array([1, 2, 3, 3, 2, 1]), x_test=np.zeros((2, 4, 4)), y_test=np.array([3, 1]))
    data = load_dataset(str(path))
    assert data.class_names == ("1", "2", "3")  # no empty class "0"
    np.testing.assert_array_equal(data.y_train, [0, 1, 2, 2, 1, 0])
    np.testing.assert_array_equal(data.y_test, [2, 0])
    bad = tmp_path / "unseen_test_label.npz"
    np.savez(bad, x=np.zeros((4, 4, 4)), y=np.array([1, 2, 1, 2]), x_test=np.zeros((1, 4, 4)), y_test=np.array([5]))
    with pytest.raises(DataError, match=r"'y_test' labels must lie among those of 'y' \(1, 2\), found 5"):
        load_dataset(str(bad))
