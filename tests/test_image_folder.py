"""Image folders in torchvision's ImageFolder layout, read by ``load_dataset("path/to/folder")``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gwas_models.data import (
    DEFAULT_IMAGE_SIZE,
    load_dataset,
    load_dataset_from_source,
    load_image_folder,
    stratified_split,
)
from gwas_models.errors import DataError, InputError

CLASSES = ("cat", "ant", "bee")  # written unsorted: the loader sorts them


def _pattern(label: int, index: int, size: int = 8) -> np.ndarray:
    """A grey uint8 image unique to (label, index): its pixels encode both."""
    rows, cols = np.indices((size, size))
    return ((label * 80 + index * 11 + rows * size + cols) % 256).astype(np.uint8)


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _write_classes(folder: Path, n_per_class: int = 6, size: int = 8, classes=CLASSES) -> Path:
    """``folder/<class>/<i>.png``: grey images whose pattern encodes the sorted class index."""
    for name in classes:
        label = sorted(classes).index(name)
        for index in range(n_per_class):
            _save(folder / name / f"{index:02d}.png", _pattern(label, index, size))
    return folder


def _messages_name_no_flags(error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert "--" not in message and "\n" not in message


def test_folder_without_train_test_is_split_like_digits(tmp_path):
    root = _write_classes(tmp_path / "shapes")
    data = load_dataset(str(root))
    assert data.name == "shapes"
    assert data.class_names == ("ant", "bee", "cat")
    assert data.x_train.shape == (14, 1, 8, 8) and data.x_test.shape == (4, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    # stratified: every class in both parts
    assert set(data.y_train) == {0, 1, 2} and set(data.y_test) == {0, 1, 2}
    np.testing.assert_array_equal(np.bincount(data.y_train) + np.bincount(data.y_test), [6, 6, 6])
    # the split is the digits split of the images in class-then-file order
    images = np.stack([_pattern(label, i)[None] for label in range(3) for i in range(6)]).astype(np.float32) / 255.0
    x_train, x_test, y_train, y_test = stratified_split(images, np.repeat(np.arange(3), 6))
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_test, y_test)
    # fixed: the same every time
    again = load_dataset(root)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_train, data.y_train)


def test_folder_with_train_and_test(tmp_path):
    root = tmp_path / "split"
    _write_classes(root / "train", n_per_class=4)
    _write_classes(root / "test", n_per_class=2)
    (root / "val").mkdir()  # beside train/ and test/, not read
    data = load_dataset(str(root))
    assert data.name == "split" and data.class_names == ("ant", "bee", "cat")
    np.testing.assert_array_equal(data.y_train, [0] * 4 + [1] * 4 + [2] * 4)
    np.testing.assert_array_equal(data.y_test, [0, 0, 1, 1, 2, 2])
    # training images in class order, then by file name, scaled by 1/255
    expected = np.stack([_pattern(label, i) for label in range(3) for i in range(4)])[:, None] / 255.0
    np.testing.assert_allclose(data.x_train, expected, atol=1e-7)
    np.testing.assert_allclose(data.x_test[3, 0], _pattern(1, 1) / 255.0, atol=1e-7)
    assert data.source["identity"]["n_files"] == 18


def test_pixels_round_trip_scaled_to_unit_interval(tmp_path):
    root = tmp_path / "px"
    pixels = np.zeros((8, 8), dtype=np.uint8)
    pixels[2, 5], pixels[7, 0], pixels[0, 0] = 51, 255, 1
    _save(root / "train" / "a" / "0.png", pixels)
    for path in ("train/b/0.png", "test/a/0.png", "test/b/0.png"):
        _save(root / path, np.zeros((8, 8), np.uint8))
    image = load_dataset(str(root)).x_train[0, 0]
    assert image[2, 5] == pytest.approx(0.2) and image[7, 0] == 1.0 and image[0, 0] == pytest.approx(1 / 255)
    np.testing.assert_array_equal(image * 255 > 0.5, pixels > 0)


def test_grey_folder_has_one_channel_and_one_colour_image_makes_all_rgb(tmp_path):
    root = _write_classes(tmp_path / "mixed")
    assert load_dataset(str(root)).input_shape == (1, 8, 8)
    colour = np.zeros((8, 8, 3), dtype=np.uint8)
    colour[..., 0], colour[..., 1], colour[..., 2] = 10, 20, 30
    colour[3, 4] = (255, 0, 128)
    _save(root / "ant" / "99.png", colour)
    data = load_image_folder(root)
    assert data.input_shape == (3, 8, 8)
    images = np.concatenate([data.x_train, data.x_test])
    # grey images are repeated in the three channels
    grey = [image for image in images if np.array_equal(image[0], image[1]) and np.array_equal(image[0], image[2])]
    assert len(grey) == 18
    # the colour image comes back channel-major
    (rgb,) = [image for image in images if not np.array_equal(image[0], image[1])]
    np.testing.assert_allclose(rgb[:, 0, 0], np.array([10, 20, 30]) / 255.0, atol=1e-7)
    np.testing.assert_allclose(rgb[:, 3, 4], np.array([255, 0, 128]) / 255.0, atol=1e-7)


def test_palette_and_alpha_images_become_rgb(tmp_path):
    root = _write_classes(tmp_path / "pal", n_per_class=4, classes=("a", "b"))
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 1], rgba[..., 3] = 200, 128
    _save(root / "a" / "rgba.png", rgba)
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).convert("P").save(root / "b" / "palette.gif")
    (root / "a" / "00.png").rename(root / "a" / "00.PNG")  # extensions in any case
    data = load_image_folder(root, image_size=8)
    assert data.input_shape == (3, 8, 8) and data.source["identity"]["n_files"] == 10


def test_image_size_resizes_with_bilinear(tmp_path):
    root = _write_classes(tmp_path / "big", size=8)
    data = load_dataset(str(root), image_size=4)
    assert data.input_shape == (1, 4, 4) and data.source["image_size"] == 4
    expected = np.asarray(Image.fromarray(_pattern(0, 0)).resize((4, 4), Image.Resampling.BILINEAR)) / 255.0
    train = np.concatenate([data.x_train, data.x_test])
    assert any(np.allclose(image[0], expected, atol=1e-7) for image in train)
    assert load_dataset(str(root), image_size=16).input_shape == (1, 16, 16)
    # mixed sizes are fine when image_size is given
    _save(root / "ant" / "99.png", _pattern(0, 99, size=12))
    assert load_dataset(str(root), image_size=8).x_train.shape[1:] == (1, 8, 8)


def test_default_size_is_the_common_square_size_else_32(tmp_path):
    root = _write_classes(tmp_path / "square", n_per_class=5, size=5, classes=("a", "b"))
    data = load_image_folder(root)
    assert data.input_shape == (1, 5, 5) and data.source["image_size"] == 5
    wide = tmp_path / "wide"
    for name in ("a", "b"):
        for i in range(5):
            _save(wide / name / f"{i}.png", np.zeros((4, 6), np.uint8))
    data = load_image_folder(wide)
    assert data.input_shape == (1, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE) and data.source["image_size"] == 32


def test_hidden_and_other_files_are_skipped(tmp_path):
    root = _write_classes(tmp_path / "tidy")
    identity = load_image_folder(root).source["identity"]
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / ".thumb.png").write_bytes(b"junk")
    (root / ".ipynb_checkpoints").mkdir()
    _save(root / ".ipynb_checkpoints" / "0.png", _pattern(0, 0))
    _save(root / "bee" / ".cache" / "0.png", _pattern(0, 0))
    (root / "README.md").write_text("loose files at the top are not images of a class")
    data = load_image_folder(root)
    assert data.class_names == ("ant", "bee", "cat") and data.source["identity"] == identity
    # nested folders of a class folder are read, as torchvision does
    _save(root / "bee" / "more" / "0.png", _pattern(1, 50))
    assert load_image_folder(root).source["identity"]["n_files"] == 19


def test_source_info_and_reload(tmp_path):
    root = _write_classes(tmp_path / "kept")
    data = load_dataset(str(root))
    assert data.source["kind"] == "image_folder"
    assert data.source["path"] == str(root.resolve()) and data.source["image_size"] == 8
    identity = data.source["identity"]
    assert identity["n_files"] == 18 and len(identity["sha256"]) == 64
    info = data.info()
    assert info["identity"] == identity and info["source"] == data.source and info["n_examples"] == 14
    again = load_dataset_from_source(data.source)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_identity_follows_content_not_place(tmp_path):
    root = _write_classes(tmp_path / "one" / "folder")
    sha = load_image_folder(root).source["identity"]["sha256"]
    # the same images elsewhere: the same identity
    moved = shutil.copytree(root, tmp_path / "two" / "folder")
    assert load_image_folder(moved).source["identity"]["sha256"] == sha
    # one pixel changed
    pixels = _pattern(2, 3)
    pixels[0, 0] ^= 1
    _save(moved / "cat" / "03.png", pixels)
    changed = load_image_folder(moved).source["identity"]
    assert changed["sha256"] != sha and changed["n_files"] == 18
    # one file renamed, bytes unchanged
    renamed = shutil.copytree(root, tmp_path / "three" / "folder")
    (renamed / "cat" / "03.png").rename(renamed / "cat" / "03b.png")
    assert load_image_folder(renamed).source["identity"]["sha256"] not in (sha, changed["sha256"])


def test_reload_refuses_a_changed_folder(tmp_path):
    root = _write_classes(tmp_path / "drift")
    source = load_dataset(str(root)).source
    _save(root / "bee" / "00.png", _pattern(1, 0) // 2)
    with pytest.raises(DataError, match="no longer holds the images the store recorded") as error:
        load_dataset_from_source(source)
    assert str(root.resolve()) in str(error.value)
    _messages_name_no_flags(error)
    shutil.rmtree(root)
    with pytest.raises(DataError, match="not found"):
        load_dataset_from_source(source)


def _corrupt(root: Path) -> str:
    (root / "bee" / "02.png").write_bytes(b"this is no image")
    return "02.png"


def _truncated(root: Path) -> str:
    # Noise does not compress, so cutting the file in half cuts into its pixel data.
    noise = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    path = _save(root / "cat" / "01.png", noise)
    path.write_bytes(path.read_bytes()[:70])
    return "cat/01.png"


def _empty_class(root: Path) -> str:
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no images here")
    return "dog"


def _one_class(root: Path) -> str:
    shutil.rmtree(root / "ant")
    shutil.rmtree(root / "bee")
    return "at least two"


def _sixteen_bit(root: Path) -> str:
    Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(root / "ant" / "deep.png")
    return "8 bits per channel"


def _mixed_sizes(root: Path) -> str:
    _save(root / "ant" / "99.png", _pattern(0, 99, size=12))
    return r"8x8 \(18 images, e.g. ant/00.png\), 12x12 \(1 image, e.g. ant/99.png\); image_size resizes"


def _one_image_in_a_class(root: Path) -> str:
    for path in sorted((root / "bee").iterdir())[1:]:
        path.unlink()
    return r"too few images for the fixed 80/20 split by class: 13 images in 3 classes, 1 image in bee.*train/ and test/"


def _fewer_test_images_than_classes(root: Path) -> str:
    for name in CLASSES:
        for path in sorted((root / name).iterdir())[2:]:
            path.unlink()
    return "too few images for the fixed 80/20 split"


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt,
        _truncated,
        _empty_class,
        _one_class,
        _sixteen_bit,
        _mixed_sizes,
        _one_image_in_a_class,
        _fewer_test_images_than_classes,
    ],
)
def test_folder_errors_name_the_problem(tmp_path, damage):
    root = _write_classes(tmp_path / "broken")
    match = damage(root)
    with pytest.raises(DataError, match=match) as error:
        load_dataset(str(root))
    _messages_name_no_flags(error)


def test_train_test_layout_errors(tmp_path):
    root = tmp_path / "layout"
    _write_classes(root / "train", n_per_class=2)
    with pytest.raises(DataError, match="has train/ but no test/") as error:
        load_dataset(str(root))
    _messages_name_no_flags(error)
    shutil.move(root / "train", root / "test")
    with pytest.raises(DataError, match="has test/ but no train/"):
        load_dataset(str(root))
    _write_classes(root / "train", n_per_class=2, classes=("ant", "bee", "dog"))
    with pytest.raises(DataError, match=r"only in train/: dog; only in test/: cat") as error:
        load_dataset(str(root))
    _messages_name_no_flags(error)
    # an empty class folder of the test set is named too
    shutil.rmtree(root / "train" / "dog")
    _write_classes(root / "train", n_per_class=2)
    for path in (root / "test" / "bee").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"class folder .*test/bee holds no images"):
        load_dataset(str(root))


def test_folder_without_images(tmp_path):
    root = tmp_path / "nothing"
    root.mkdir()
    with pytest.raises(DataError, match="holds no images") as error:
        load_dataset(str(root))
    _messages_name_no_flags(error)
    (root / "ant").mkdir()
    (root / "bee").mkdir()
    (root / "loose.png").write_bytes(b"not in a class folder")
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(str(root))
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "absent")


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "8"])
def test_bad_image_size(tmp_path, size):
    root = _write_classes(tmp_path / "sized", n_per_class=2)
    with pytest.raises(InputError) as error:
        load_dataset(str(root), image_size=size)
    assert error.value.parameter == "image_size" and str(error.value).startswith("image_size")
    _messages_name_no_flags(error)


def test_image_size_is_only_for_folders(tiny_digits_npz):
    with pytest.raises(InputError, match="image_size applies only to an image folder") as error:
        load_dataset(str(tiny_digits_npz), image_size=8)
    assert error.value.parameter == "image_size"
    with pytest.raises(InputError, match="image_size"):
        load_dataset("digits", image_size=8)


def test_usual_formats_are_read(tmp_path):
    root = tmp_path / "formats"
    suffixes = (".png", ".jpg", ".JPEG", ".bmp", ".gif", ".webp", ".tif", ".TIFF")
    for name in ("a", "b"):
        for i, suffix in enumerate(suffixes):
            _save(root / name / f"{i}{suffix}", np.full((8, 8), 30 * i, np.uint8))
    data = load_image_folder(root)
    # Pillow opens grey GIFs as palette images and WebP as RGB: greyness is the file's mode, so RGB
    assert data.source["identity"]["n_files"] == 16 and data.input_shape == (3, 8, 8)
    images = np.concatenate([data.x_train, data.x_test])
    np.testing.assert_array_equal(images[:, 0], images[:, 2])
    # lossless formats come back exactly; JPEG (1 and 2) nearly
    values = sorted(np.round(images[:, 0, 4, 4] * 255 / 30).astype(int))
    assert values == sorted(list(range(8)) * 2)
