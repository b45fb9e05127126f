"""The gallery of the most and least architecture-sensitive examples (paper, Figure 1 left)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_plots_manhattan import simulate_sumstats

from gwas_models.errors import DataError, InputError, ResultsError
from gwas_models.plots.gallery import (
    PAPER_RANKING,
    channels_last,
    check_images_match,
    direction_captions,
    format_neg_log10_p,
    gallery_figsize,
    image_tile,
    most_and_least_sensitive,
    sensitivity_gallery,
)

N_EXAMPLES = 240  # simulate_sumstats(): 4 classes of 60


def new_axes():
    return Figure(figsize=(10, 4), layout="constrained").add_subplot()


def distinct_images(n: int = N_EXAMPLES, channels: int = 3, side: int = 6) -> np.ndarray:
    """Images that tell their example apart: every pixel of image i holds i / n."""
    values = np.arange(n, dtype=np.float32)[:, None, None, None] / n
    return np.broadcast_to(values, (n, channels, side, side)).copy()


def combined_done(table):
    return table[(table["SCORE"] == "combined") & (table["ERRCODE"] == ".")]


def test_most_and_least_sensitive_are_the_extremes_of_the_papers_ranking():
    """The combined rows rank by MEAN_NEG_LOG10_P (the paper's mean -log10 p), not by their Cauchy
    combination p; a single score by its -log10 p; a table written before MEAN_NEG_LOG10_P by the
    mean it then held in NEG_LOG10_P."""
    table = simulate_sumstats()
    most, least = most_and_least_sensitive(table, k=5)
    rows = combined_done(table).sort_values("MEAN_NEG_LOG10_P")
    assert list(most["ID"]) == list(rows["ID"].iloc[::-1][:5])
    assert list(least["ID"]) == list(rows["ID"][:5])
    assert list(most["ID"]) != list(combined_done(table).nlargest(5, "NEG_LOG10_P")["ID"])  # the two orders differ here
    loss_most, _ = most_and_least_sensitive(table, k=3, score="loss")
    assert set(loss_most["SCORE"]) == {"loss"}
    assert list(loss_most["ID"]) == list(table[table["SCORE"] == "loss"].nlargest(3, "NEG_LOG10_P")["ID"])
    legacy = simulate_sumstats(legacy=True)
    legacy_most, _ = most_and_least_sensitive(legacy, k=5)
    assert list(legacy_most["ID"]) == list(combined_done(legacy).nlargest(5, "NEG_LOG10_P")["ID"])


def test_combined_means_the_cauchy_combination_p_here_as_in_every_plot():
    """Issue 20: one meaning of ``combined``. Naming it ranks by its Cauchy combination p (the p
    the Manhattan plot draws); the paper's ranking, the default, has its own name."""
    table = simulate_sumstats()
    by_p, _ = most_and_least_sensitive(table, k=5, score="combined")
    assert list(by_p["ID"]) == list(combined_done(table).sort_values(["NEG_LOG10_P", "ID"], ascending=[False, True])["ID"][:5])
    default, _ = most_and_least_sensitive(table, k=5)
    named, _ = most_and_least_sensitive(table, k=5, score=PAPER_RANKING)
    assert list(default["ID"]) == list(named["ID"]) != list(by_p["ID"])
    ax = sensitivity_gallery(table, distinct_images(), k=3, score="combined", ax=new_axes())
    titles = [t.get_text() for t in ax.texts if t.get_gid() == "gallery-title"]
    assert "Cauchy combination (ACAT)" in titles[0] and "mean" not in titles[0]
    ax = sensitivity_gallery(table, distinct_images(), k=3, ax=new_axes())
    assert "mean −log10 p over scores, the paper's ranking" in [t.get_text() for t in ax.texts if t.get_gid() == "gallery-title"][0]


def test_gallery_shows_each_chosen_image_with_class_and_mean_neg_log10_p():
    """Captions give the ranking value, the mean -log10 p of the combined rows."""
    table = simulate_sumstats()
    images = distinct_images()
    ax = sensitivity_gallery(table, images, k=4, ax=new_axes())
    mosaic = ax.images[0].get_array()
    most, least = most_and_least_sensitive(table, k=4)
    shown = set(np.unique(np.round(np.asarray(mosaic)[..., 0] * N_EXAMPLES).astype(int)))
    chosen = set(most["ID"]) | set(least["ID"])
    assert chosen <= shown and shown - chosen <= {N_EXAMPLES}  # plus the white background
    captions = {t.get_gid(): t.get_text() for t in ax.texts if str(t.get_gid()).startswith("caption:")}
    assert len(captions) == 8
    for row in most.to_dict("records"):
        text = captions[f"caption:{row['ID']}"]
        assert row["#CHROM"] in text and format_neg_log10_p(row["MEAN_NEG_LOG10_P"]) in text and f"#{row['ID']}" in text
    titles = [t.get_text() for t in ax.texts if t.get_gid() == "gallery-title"]
    assert titles[0].startswith("Most sensitive") and titles[1].startswith("Least sensitive")
    assert "mean −log10 p over scores" in titles[0]


def test_each_tile_holds_its_own_image():
    table = simulate_sumstats()
    images = np.random.default_rng(0).uniform(size=(N_EXAMPLES, 1, 5, 7))
    ax = sensitivity_gallery(table, images, k=3, ax=new_axes())
    mosaic = np.asarray(ax.images[0].get_array())
    most, _ = most_and_least_sensitive(table, k=3)
    for example_id in most["ID"]:
        tile = images[example_id, 0]
        found = any(
            np.allclose(mosaic[r : r + 5, c : c + 7, 0], tile)
            for r in range(mosaic.shape[0] - 4)
            for c in range(mosaic.shape[1] - 6)
        )
        assert found, f"image of example {example_id} is not in the gallery"


def test_image_layouts_and_values_are_normalised_for_display():
    assert channels_last(np.zeros((4, 3, 8, 9))).shape == (4, 8, 9, 3)
    assert channels_last(np.zeros((4, 8, 9, 3))).shape == (4, 8, 9, 3)
    assert channels_last(np.zeros((4, 8, 9))).shape == (4, 8, 9, 1)
    standardised = np.linspace(-2.0, 3.0, 16).reshape(1, 4, 4, 1)
    tile = image_tile(standardised, 0)
    assert tile.shape == (4, 4, 3) and tile.min() == 0.0 and tile.max() == 1.0


@pytest.mark.parametrize("shape", [(10, 64), (10, 1, 1, 64), (10, 5, 8, 8), (10, 2, 3, 4, 5)])
def test_non_image_inputs_get_a_clear_error(shape):
    with pytest.raises(DataError, match="not an image shape"):
        sensitivity_gallery(simulate_sumstats(), np.zeros(shape), ax=new_axes())


def test_images_of_another_dataset_are_refused():
    table = simulate_sumstats()
    with pytest.raises(DataError, match="training images"):
        sensitivity_gallery(table, distinct_images(n=100), ax=new_axes())
    check_images_match(table, distinct_images(), labels=_labels_by_id(table))  # the right dataset passes
    with pytest.raises(DataError, match="another class"):
        check_images_match(table, distinct_images(), labels=(_labels_by_id(table) + 1) % 4)


def _labels_by_id(table) -> np.ndarray:
    labels = np.zeros(N_EXAMPLES, dtype=np.int64)
    labels[table["ID"].to_numpy()] = table["LABEL"].to_numpy()
    return labels


def test_bad_input_raises_the_library_errors():
    table = simulate_sumstats()
    with pytest.raises(ResultsError, match="#CHROM"):
        sensitivity_gallery(table.drop(columns="#CHROM"), distinct_images(), ax=new_axes())
    with pytest.raises(InputError, match="no score 'grand'"):
        sensitivity_gallery(table, distinct_images(), score="grand", ax=new_axes())
    with pytest.raises(InputError, match="at least 1"):
        sensitivity_gallery(table, distinct_images(), k=0, ax=new_axes())


def test_each_caption_says_which_architecture_finds_the_image_harder():
    table = simulate_sumstats()
    ax = sensitivity_gallery(table, distinct_images(), k=4, ax=Figure(figsize=gallery_figsize(4), layout="constrained").add_subplot())
    most, least = most_and_least_sensitive(table, k=4)
    shown = {t.get_gid(): t.get_text() for t in ax.texts if str(t.get_gid()).startswith("direction:")}
    for row in pd.concat([most, least]).to_dict("records"):
        # "harder in X", shortened to "harder: X" where the tile is too narrow for the words
        assert shown[f"direction:{row['ID']}"] in (f"harder in {row['HARDER_IN']}", f"harder: {row['HARDER_IN']}")


def test_a_combined_row_without_a_direction_takes_its_scores_majority_or_says_nothing():
    """One-way tables: combined_pairs rows may have an empty HARDEST_IN."""
    table = simulate_sumstats().rename(columns={"HARDER_IN": "HARDEST_IN"}).drop(columns=["A", "B"])
    combined = table["SCORE"] == "combined"
    table.loc[combined, "HARDEST_IN"] = "."
    example = int(table.loc[combined, "ID"].iloc[0])
    table.loc[(table["ID"] == example) & ~combined, "HARDEST_IN"] = ["vgg11", "vgg11"]
    row = table[combined & (table["ID"] == example)]
    assert direction_captions(table, row) == ["hardest in vgg11"]
    table.loc[(table["ID"] == example) & ~combined, "HARDEST_IN"] = ["vgg11", "vgg16"]  # a tie
    assert direction_captions(table, row) == [""]
    ax = sensitivity_gallery(table, distinct_images(), k=3, ax=new_axes())
    assert all(t.get_text() for t in ax.texts if str(t.get_gid()).startswith("direction:"))  # never an empty field
