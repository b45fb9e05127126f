"""`gwasm manhattan`, `gwasm qq`, `gwasm gallery`: files written, defaults, and one-line errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from test_plots_manhattan import simulate_sumstats

from gwas_models.formats.store import write_dataset_info
from gwas_models.formats.sumstats import write_sumstats

ARCHS = ("resnet20", "vgg16")


@pytest.fixture(autouse=True)
def command_history_in_tmp(tmp_path, monkeypatch):
    """Successful commands append to a history file; keep it out of the working directory."""
    monkeypatch.setenv("GWASM_RESULTS", str(tmp_path / "history"))


@pytest.fixture
def sumstats_table():
    return simulate_sumstats()


@pytest.fixture
def sumstats_file(tmp_path, sumstats_table) -> Path:
    """The long table (every score) of a comparison, in Parquet."""
    return write_sumstats(sumstats_table, tmp_path / "results" / "toy", *ARCHS).parquet


@pytest.fixture
def image_store(tmp_path, sumstats_table) -> Path:
    """A run store whose dataset ``toy`` points at an .npz of 240 8x8 images matching the table."""
    return _store_with_images(tmp_path, sumstats_table, np.random.default_rng(0).uniform(size=(240, 8, 8)))


def _store_with_images(tmp_path: Path, table, images: np.ndarray) -> Path:
    labels = np.zeros(240, dtype=np.int64)
    labels[table["ID"].to_numpy()] = table["LABEL"].to_numpy()
    data = tmp_path / "toy.npz"
    np.savez(data, x=images.astype(np.float32), y=labels, classes=np.array([f"class{c}" for c in range(4)]))
    store = tmp_path / "store"
    info = {"name": "toy", "n_examples": 240, "class_names": [f"class{c}" for c in range(4)], "source": {"kind": "npz", "path": str(data)}}
    write_dataset_info(store, "toy", info)
    return store


def files_under(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if p.is_file()}


def assert_not_blank(path: Path) -> None:
    """The figure opens and shows something: varied pixels (PNG), a real document (PDF, SVG)."""
    assert path.is_file()
    if path.suffix == ".png":
        pixels = imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
        assert pixels[..., :3].std() > 0.02
    elif path.suffix == ".pdf":
        data = path.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 5_000
        assert b"/Subtype /Image" in data  # the rasterized points
    else:
        text = path.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text and "</svg>" in text and len(text) > 5_000
        assert "<image" in text  # the rasterized points


# ------------------------------------------------------------------------------------------
# Files written
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["png", "svg", "pdf"])
def test_manhattan_writes_each_format(run_gwasm, sumstats_file, tmp_path, extension):
    out = tmp_path / "figures" / f"manhattan.{extension}"
    code, stdout, stderr = run_gwasm("manhattan", sumstats_file, "--out", out)
    assert (code, stderr) == (0, "")
    assert str(out) in stdout
    assert_not_blank(out)
    assert files_under(out.parent) == {out}  # no temporary file left behind


def test_default_input_is_the_latest_association_and_the_figure_goes_beside_it(run_gwasm, tmp_path, monkeypatch, sumstats_table):
    monkeypatch.chdir(tmp_path)
    write_sumstats(sumstats_table, Path("gwasm-results/older"), *ARCHS)
    newest = write_sumstats(sumstats_table, Path("gwasm-results/newer"), *ARCHS)
    old_time = time.time() - 100
    for path in Path("gwasm-results").glob("older*"):
        os.utime(path, (old_time, old_time))
    code, stdout, stderr = run_gwasm("manhattan")
    assert (code, stderr) == (0, "")
    expected = newest.parquet.parent / "newer.resnet20_vs_vgg16.manhattan.png"
    assert expected.is_file() and str(expected) in stdout
    assert_not_blank(expected)


def test_signed_facet_and_qq_variants(run_gwasm, sumstats_file):
    directory = sumstats_file.parent
    assert run_gwasm("manhattan", sumstats_file, "--signed", "--score", "loss", "--annotate", "top", "--top-k", "3")[0] == 0
    assert_not_blank(directory / "toy.resnet20_vs_vgg16.manhattan.loss.signed.png")
    assert run_gwasm("manhattan", sumstats_file, "--facet", "--alpha", "0.05", "--suggestive", "1e-3")[0] == 0
    assert_not_blank(directory / "toy.resnet20_vs_vgg16.manhattan.facets.png")
    assert run_gwasm("qq", sumstats_file)[0] == 0
    assert_not_blank(directory / "toy.resnet20_vs_vgg16.qq.png")
    assert run_gwasm("qq", sumstats_file, "--score", "aum", "--out", directory / "qq.pdf")[0] == 0
    assert_not_blank(directory / "qq.pdf")


def test_a_per_score_tsv_is_plotted_under_its_comparison_stem(run_gwasm, sumstats_table, tmp_path):
    paths = write_sumstats(sumstats_table, tmp_path / "per" / "toy", *ARCHS)
    loss = paths.tsv["loss"]
    assert loss.name == "toy.resnet20_vs_vgg16.loss.sumstats.tsv"
    assert run_gwasm("manhattan", loss)[0] == 0  # its only score, without --score
    assert run_gwasm("qq", loss)[0] == 0
    assert run_gwasm("manhattan", paths.tsv["combined"])[0] == 0
    directory = loss.parent
    for name in ("manhattan.loss", "qq.loss", "manhattan"):  # as from the Parquet file with --score
        assert_not_blank(directory / f"toy.resnet20_vs_vgg16.{name}.png")


def test_gallery_and_thumbnails_read_the_images_of_the_store(run_gwasm, sumstats_file, image_store, tmp_path):
    out = tmp_path / "gallery.png"
    code, _, stderr = run_gwasm("gallery", sumstats_file, "--store", image_store, "--k", "5", "--out", out)
    assert (code, stderr) == (0, "")
    assert_not_blank(out)
    code, _, stderr = run_gwasm("manhattan", sumstats_file, "--thumbnails", "--store", image_store, "--out", tmp_path / "thumbs.png")
    assert (code, stderr) == (0, "")
    assert_not_blank(tmp_path / "thumbs.png")


def test_gallery_finds_store_and_dataset_in_the_sumstats_metadata(run_gwasm, sumstats_table, image_store, tmp_path):
    metadata = {"store": str(image_store), "dataset": "toy", "archs": list(ARCHS), "scores": ["loss", "aum"]}
    paths = write_sumstats(sumstats_table, tmp_path / "logged" / "toy", *ARCHS, metadata=metadata)
    code, _, stderr = run_gwasm("gallery", paths.tsv["combined"])  # the TSV's metadata is in its Parquet copy
    assert (code, stderr) == (0, "")
    assert_not_blank(tmp_path / "logged" / "toy.resnet20_vs_vgg16.gallery.png")


def test_the_lambda_null_recorded_by_the_association_reaches_manhattan_and_qq(sumstats_table, tmp_path, monkeypatch):
    from gwas_models.plots import manhattan as manhattan_module
    from gwas_models.plots import qq as qq_module
    from gwas_models.workflows.plots import manhattan_figure, qq_figure

    lam = {"loss": {"lambda_gc": 1.2, "null_95": 1.9}, "aum": {"lambda_gc": 1.1, "null_95": None}}
    paths = write_sumstats(sumstats_table, tmp_path / "logged" / "toy", *ARCHS, metadata={"lambda": lam})
    seen = {}
    for module, name in ((manhattan_module, "manhattan"), (qq_module, "qq")):
        original = getattr(module, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            seen[_name] = kwargs.get("lambda_null")
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    manhattan_figure(paths.parquet, "loss", out=tmp_path / "m.png")
    qq_figure(paths.parquet, out=tmp_path / "q.png")
    assert seen == {"manhattan": {"loss": 1.9}, "qq": {"loss": 1.9}}


# ------------------------------------------------------------------------------------------
# Errors: one line on stderr, exit code 2, no file
# ------------------------------------------------------------------------------------------


def _assert_one_line_error(result, fragment: str, directory: Path, before: set[Path]) -> None:
    code, _, stderr = result
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("gwasm: error:"), stderr
    assert fragment in lines[0]
    assert files_under(directory) == before


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["manhattan", "{missing}"], "not found"),
        (["manhattan", "{file}", "--score", "grand"], "no score 'grand'"),
        (["manhattan", "{file}", "--out", "{dir}/figure.jpg"], "must end in"),
        (["manhattan", "{file}", "--alpha", "2"], "alpha"),
        (["manhattan", "{file}", "--annotate", "some"], "some"),
        (["qq", "{file}", "--score", "grand", "--out", "{dir}/qq.png"], "no score 'grand'"),
        (["qq", "{missing}"], "not found"),
        (["gallery", "{file}", "--store", "{dir}/nostore", "--out", "{dir}/g.png"], "nostore"),
        (["gallery", "{file}", "--out", "{dir}/g.tiff"], "must end in"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(run_gwasm, sumstats_file, tmp_path, arguments, fragment):
    names = {"missing": tmp_path / "missing.sumstats.tsv", "file": sumstats_file, "dir": tmp_path}
    before = files_under(tmp_path)
    result = run_gwasm(*[argument.format(**names) for argument in arguments])
    _assert_one_line_error(result, fragment, tmp_path, before)


def test_a_table_without_needed_columns_is_one_error_line(run_gwasm, sumstats_table, tmp_path):
    no_label = write_sumstats(sumstats_table.drop(columns=["LABEL"]), tmp_path / "r" / "nolabel", *ARCHS).parquet
    before = files_under(tmp_path)
    _assert_one_line_error(run_gwasm("manhattan", no_label), "LABEL", tmp_path, before)
    not_sumstats = tmp_path / "r" / "other.sumstats.tsv"
    not_sumstats.write_text("a\tb\n1\t2\n")
    before = files_under(tmp_path)
    _assert_one_line_error(run_gwasm("qq", not_sumstats), "missing column", tmp_path, before)


def test_non_image_dataset_is_one_error_line(run_gwasm, sumstats_file, sumstats_table, tmp_path):
    store = _store_with_images(tmp_path, sumstats_table, np.zeros((240, 1, 1, 16)))
    before = files_under(tmp_path)
    result = run_gwasm("gallery", sumstats_file, "--store", store, "--out", tmp_path / "g.png")
    _assert_one_line_error(result, "not an image shape", tmp_path, before)
