"""Manhattan plots: what is drawn, where, and which points may be thinned.

``simulate_sumstats`` builds summary statistics with the columns ``gwasm associate`` writes; the
other plot tests import it from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy import stats

from gwas_models.analysis.combine import cauchy_combination
from gwas_models.errors import DataError, InputError, ResultsError
from gwas_models.plots._style import HARDER_IN_A_COLOUR, HARDER_IN_B_COLOUR, UNDEFINED_DIRECTION_COLOUR
from gwas_models.plots.manhattan import class_layout, class_summary, manhattan, manhattan_facets, place_labels

SCORES = ("loss", "aum")
ARCHS = ("resnet20", "vgg16")


# ------------------------------------------------------------------------------------------
# Simulated summary statistics
# ------------------------------------------------------------------------------------------


def simulate_sumstats(
    n_per_class: int = 60,
    n_classes: int = 4,
    scores: tuple[str, ...] = SCORES,
    n_signal: int = 6,
    n_failed: int = 3,
    n_runs: int = 8,
    seed: int = 0,
    class_names: list[str] | None = None,
    shuffle: bool = True,
    legacy: bool = False,
) -> pd.DataFrame:
    """Summary statistics of ``n_classes × n_per_class`` examples for ``scores`` and ``combined``.

    Each score is a Welch t-test of ``n_runs`` v ``n_runs`` runs. ``n_signal`` examples (the first
    ids of the first classes, spread over classes) shift strongly, half harder under A and half
    under B; ``n_failed`` examples per score have ``ERRCODE`` set and no p-value. The combined
    rows hold the Cauchy combination p and, in ``MEAN_NEG_LOG10_P``, the mean -log10 p; with
    ``legacy``, as tables did before that column: the mean in ``NEG_LOG10_P``. Rows are shuffled
    (``shuffle``) so that plots must order them themselves.
    """
    rng = np.random.default_rng(seed)
    names = class_names or [f"class{c}" for c in range(n_classes)]
    n = n_per_class * n_classes
    labels = np.repeat(np.arange(n_classes), n_per_class)
    example_id = rng.permutation(n)  # ids need not follow class order
    position = np.tile(np.arange(1, n_per_class + 1), n_classes)
    signal = np.zeros(n)
    signal_rows = np.arange(n_signal) * (n // max(n_signal, 1))  # spread over the classes
    signal[signal_rows] = np.where(np.arange(n_signal) % 2 == 0, 4.0, -4.0)
    frames = []
    per_score_nlp = []
    for score_index, score in enumerate(scores):
        a = rng.normal(0.0, 1.0, (n_runs, n))
        b = rng.normal(signal, 1.0, (n_runs, n))
        frame = _welch_frame(a, b, score)
        failed = rng.choice(n, size=n_failed, replace=False)
        frame.loc[failed, ["T_STAT", "P", "NEG_LOG10_P", "BETA", "SE", "COHEN_D"]] = np.nan
        frame.loc[failed, "ERRCODE"] = "CONST"
        frame.loc[failed, "HARDER_IN"] = "."
        per_score_nlp.append(frame["NEG_LOG10_P"].to_numpy())
        frames.append(frame)
    combined = frames[0].copy()
    combined["SCORE"] = "combined"
    evidence = np.vstack(per_score_nlp)
    n_done = np.isfinite(evidence).sum(axis=0)
    mean_nlp = np.where(n_done > 0, np.nansum(evidence, axis=0) / np.maximum(n_done, 1), np.nan)
    if legacy:
        combined["NEG_LOG10_P"] = mean_nlp
        combined["P"] = 10.0 ** -mean_nlp
    else:
        combined["P"], combined["NEG_LOG10_P"] = cauchy_combination(evidence)
        for frame in frames:
            frame["MEAN_NEG_LOG10_P"] = np.nan
        combined["MEAN_NEG_LOG10_P"] = mean_nlp
    combined["ERRCODE"] = np.where(n_done > 0, ".", "CONST")
    frames.append(combined)
    table = pd.concat(frames, ignore_index=True)
    n_rows = len(table)
    table.insert(0, "#CHROM", np.tile(np.array(names, dtype=object)[labels], len(frames)))
    table.insert(1, "POS", np.tile(position, len(frames)))
    table.insert(2, "ID", np.tile(example_id, len(frames)))
    table.insert(3, "LABEL", np.tile(labels, len(frames)))
    tested = table["ERRCODE"] == "."
    table["BONF"] = np.where(tested, np.minimum(table["P"] * n, 1.0), np.nan)
    table["FDR_BH"] = np.nan
    for score in table["SCORE"].unique():
        mask = (table["SCORE"] == score) & tested
        table.loc[mask, "FDR_BH"] = stats.false_discovery_control(table.loc[mask, "P"].to_numpy())
    table["ERRCODE"] = table.pop("ERRCODE")
    assert len(table) == n_rows
    if shuffle:
        table = table.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return table


def _welch_frame(a: np.ndarray, b: np.ndarray, score: str) -> pd.DataFrame:
    n_a, n_b = len(a), len(b)
    mean_a, mean_b = a.mean(0), b.mean(0)
    sd_a, sd_b = a.std(0, ddof=1), b.std(0, ddof=1)
    se = np.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
    beta = mean_b - mean_a
    t_stat = beta / se
    df = se**4 / ((sd_a**2 / n_a) ** 2 / (n_a - 1) + (sd_b**2 / n_b) ** 2 / (n_b - 1))
    log_p = stats.t.logsf(np.abs(t_stat), df) + np.log(2.0)
    # Higher score = harder, so a positive BETA (mean B − mean A) means harder under B.
    harder_in = np.where(beta > 0, ARCHS[1], ARCHS[0])
    return pd.DataFrame(
        {
            "SCORE": score,
            "A": ARCHS[0],
            "B": ARCHS[1],
            "N_A": n_a,
            "N_B": n_b,
            "MEAN_A": mean_a,
            "MEAN_B": mean_b,
            "SD_A": sd_a,
            "SD_B": sd_b,
            "BETA": beta,
            "SE": se,
            "COHEN_D": beta / np.sqrt((sd_a**2 + sd_b**2) / 2),
            "T_STAT": t_stat,
            "DF": df,
            "P": np.exp(log_p),
            "NEG_LOG10_P": -log_p / np.log(10.0),
            "HARDER_IN": harder_in,
            "ERRCODE": ".",
        }
    )


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def new_axes(size: tuple[float, float] = (10.0, 4.5)):
    """Axes of a bare Figure (no pyplot state), with the layout the CLI uses."""
    return Figure(figsize=size, layout="constrained").add_subplot()


def direction_collections(ax) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection) and str(c.get_gid()).startswith("direction:")]


def direction_collection(ax, name: str) -> PathCollection:
    return next(c for c in direction_collections(ax) if c.get_gid() == f"direction:{name}")


def drawn_offsets(ax) -> np.ndarray:
    """(x, y) of every point drawn in the axes."""
    offsets = [np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]
    return np.vstack(offsets) if offsets else np.empty((0, 2))


def done_rows(table: pd.DataFrame, score: str) -> pd.DataFrame:
    rows = table[table["SCORE"] == score]
    return rows[rows["ERRCODE"] == "."]


def line_y(ax, gid: str) -> list[float]:
    return sorted(float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_gid() == gid)


def hit_ids(ax) -> set[int]:
    artists = list(ax.texts) + list(ax.artists)
    return {int(a.get_gid().split(":")[1]) for a in artists if str(a.get_gid()).startswith("hit:")}


def render(figure):
    """Draw the figure on an Agg canvas and return its renderer (to measure drawn text)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def overlapping_pairs(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


# ------------------------------------------------------------------------------------------
# Layout of the examples
# ------------------------------------------------------------------------------------------


def test_class_layout_orders_classes_by_label_and_examples_by_position():
    names = ["zebra", "apple", "mango"]  # not alphabetical: LABEL order must win
    table = simulate_sumstats(n_per_class=5, n_classes=3, class_names=names)
    layout = class_layout(table)
    assert layout.class_names == names
    rows = table[table["SCORE"] == "loss"].sort_values(["LABEL", "POS"])
    x = layout.positions(rows["ID"].to_numpy())
    assert np.all(np.diff(x) > 0)
    assert np.all(layout.starts[1:] - layout.ends[:-1] > 1.0)  # a visible gap between classes
    np.testing.assert_allclose(layout.centres, (layout.starts + layout.ends) / 2)


# ------------------------------------------------------------------------------------------
# What is drawn
# ------------------------------------------------------------------------------------------


def test_every_tested_example_is_drawn_once_at_its_place_and_failed_tests_are_not():
    table = simulate_sumstats()
    ax = manhattan(table, "loss", thin=False, ax=new_axes())
    rows = done_rows(table, "loss")
    layout = class_layout(table[table["SCORE"] == "loss"])
    expected = np.column_stack([layout.positions(rows["ID"].to_numpy()), rows["NEG_LOG10_P"].to_numpy()])
    drawn = drawn_offsets(ax)
    assert len(drawn) == len(rows) == len(table[table["SCORE"] == "loss"]) - 3
    order = np.lexsort(drawn.T[::-1])
    expected_order = np.lexsort(expected.T[::-1])
    np.testing.assert_allclose(drawn[order], expected[expected_order])


def test_points_are_coloured_by_the_architecture_that_finds_them_harder():
    """Replaces the test of alternating class colours: colour now shows HARDER_IN (A, B, grey
    when undefined), one scatter per direction; every other class band is shaded instead."""
    names = ["zebra", "apple", "mango", "kiwi"]
    table = simulate_sumstats(class_names=names)
    rows = done_rows(table, "loss")
    rows.loc[rows.index[:4], "HARDER_IN"] = "."  # BETA 0: no direction
    table.loc[rows.index[:4], "HARDER_IN"] = "."
    ax = manhattan(table, "loss", thin=False, ax=new_axes())
    layout = class_layout(table)
    for gid, arch, colour in (("A", "resnet20", HARDER_IN_A_COLOUR), ("B", "vgg16", HARDER_IN_B_COLOUR), ("undefined", ".", UNDEFINED_DIRECTION_COLOUR)):
        drawn = direction_collection(ax, gid)
        assert to_hex(drawn.get_facecolor()[0]) == colour and len(drawn.get_facecolor()) == 1 and drawn.get_rasterized()
        expected = rows[rows["HARDER_IN"] == arch]
        np.testing.assert_allclose(np.sort(drawn.get_offsets()[:, 0]), np.sort(layout.positions(expected["ID"].to_numpy())))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["harder in resnet20", "harder in vgg16"]
    bands = [p.get_gid() for p in ax.patches if str(p.get_gid()).startswith("class-band:")]
    assert bands == ["class-band:apple", "class-band:kiwi"]  # every other class
    assert [label.get_text() for label in ax.get_xticklabels()] == names
    np.testing.assert_allclose(ax.get_xticks(), layout.centres)


def test_a_one_way_table_is_drawn_in_one_colour_without_a_direction_legend():
    oneway = simulate_sumstats().drop(columns=["A", "B", "HARDER_IN"])
    ax = manhattan(oneway, "loss", ax=new_axes())
    assert [c.get_gid() for c in ax.collections if isinstance(c, PathCollection)] == ["direction:none"]
    assert ax.get_legend() is None


def test_class_summary_is_the_class_median_split_by_the_share_harder_in_b():
    table = simulate_sumstats(n_signal=0, shuffle=False)
    loss = table["SCORE"] == "loss"
    class1 = loss & (table["LABEL"] == 1) & (table["ERRCODE"] == ".")
    table.loc[class1, "NEG_LOG10_P"] += 3.0  # a whole class shifts...
    table.loc[class1, "HARDER_IN"] = "vgg16"  # ...in one direction
    summary = class_summary(table, "loss")
    rows = done_rows(table, "loss")
    np.testing.assert_allclose(summary["median"], rows.groupby("LABEL")["NEG_LOG10_P"].median())
    share = rows.groupby("LABEL")["HARDER_IN"].apply(lambda h: np.mean(h == "vgg16"))
    np.testing.assert_allclose(summary["share_harder_in_b"], share)
    assert summary.loc[1, "share_harder_in_b"] == 1.0 and summary["median"].idxmax() == 1
    ax = manhattan(table, "loss", ax=new_axes())
    layout = class_layout(table)
    segments = {line.get_gid(): line for line in ax.get_lines() if str(line.get_gid()).startswith("class-summary:")}
    a, b = segments["class-summary:class0:A"], segments["class-summary:class0:B"]
    assert a.get_ydata()[0] == pytest.approx(summary.loc[0, "median"])
    split = layout.starts[0] + (1 - summary.loc[0, "share_harder_in_b"]) * (layout.ends[0] - layout.starts[0])
    assert a.get_xdata()[1] == pytest.approx(split) == b.get_xdata()[0]
    assert "one finding" in ax.get_xlabel()


def test_lambda_and_its_relabelling_null_are_in_the_title_of_a_p_value_plot_only():
    table = simulate_sumstats()
    ax = manhattan(table, "loss", ax=new_axes())
    assert "λGC = " in ax.get_title(loc="right") and "no relabelling null" in ax.get_title(loc="right")
    ax = manhattan(table, "loss", lambda_null={"loss": 1.37}, ax=new_axes())
    assert "null 95%: 1.37" in ax.get_title(loc="right")
    assert manhattan(table, ranking=True, ax=new_axes()).get_title(loc="right") == ""


def test_threshold_lines_sit_at_bonferroni_and_suggestive_levels():
    table = simulate_sumstats()
    n_tests = len(done_rows(table, "aum"))
    ax = manhattan(table, "aum", ax=new_axes())
    assert line_y(ax, "bonferroni") == pytest.approx([-np.log10(0.01 / n_tests)])
    assert line_y(ax, "suggestive") == pytest.approx([np.log10(n_tests)])
    styles = {line.get_gid(): line.get_linestyle() for line in ax.get_lines()}
    assert styles["bonferroni"] == "-" and styles["suggestive"] == "--"

    ax = manhattan(table, "aum", alpha=0.05, suggestive=1e-3, ax=new_axes())
    assert line_y(ax, "bonferroni") == pytest.approx([-np.log10(0.05 / n_tests)])
    assert line_y(ax, "suggestive") == pytest.approx([3.0])
    assert ax.get_ylim()[1] > max(done_rows(table, "aum")["NEG_LOG10_P"])


def test_thinning_keeps_every_point_above_the_suggestive_line_and_hides_only_covered_points():
    table = simulate_sumstats(n_per_class=10_000, n_classes=3, scores=("loss",), n_failed=0, n_runs=4)
    ax = manhattan(table, "loss", annotate="none", ax=new_axes((6.0, 3.0)))
    rows = done_rows(table, "loss")
    drawn = drawn_offsets(ax)
    assert len(drawn) < 0.8 * len(rows)  # the dense band is thinned
    suggestive = line_y(ax, "suggestive")[0]
    strong = np.sort(rows.loc[rows["NEG_LOG10_P"] >= suggestive, "NEG_LOG10_P"].to_numpy())
    np.testing.assert_allclose(np.sort(drawn[drawn[:, 1] >= suggestive, 1]), strong)
    # Every dropped point lies under a drawn marker: within 0.36 marker diameters, in points.
    from scipy.spatial import cKDTree

    to_points = 72.0 / ax.figure.dpi
    drawn_pt = ax.transData.transform(drawn) * to_points
    layout = class_layout(table)
    everything = np.column_stack([layout.positions(rows["ID"].to_numpy()), rows["NEG_LOG10_P"].to_numpy()])
    distance, _ = cKDTree(drawn_pt).query(ax.transData.transform(everything) * to_points)
    assert distance.max() <= 0.36 * np.sqrt(4.0)


def test_thinning_is_deterministic():
    table = simulate_sumstats(n_per_class=3000, n_classes=2, scores=("loss",))
    first = drawn_offsets(manhattan(table, "loss", ax=new_axes()))
    second = drawn_offsets(manhattan(table, "loss", ax=new_axes()))
    np.testing.assert_array_equal(first, second)


# ------------------------------------------------------------------------------------------
# Annotations
# ------------------------------------------------------------------------------------------


def test_per_class_annotation_labels_the_best_example_of_each_class_above_the_suggestive_line():
    table = simulate_sumstats(n_classes=6, n_signal=12)
    ax = manhattan(table, "loss", ax=new_axes())
    rows = done_rows(table, "loss")
    suggestive = line_y(ax, "suggestive")[0]
    strong = rows[rows["NEG_LOG10_P"] >= suggestive]
    best = strong.sort_values("NEG_LOG10_P", ascending=False).groupby("LABEL").head(1)
    assert hit_ids(ax) == set(best["ID"])


def test_top_k_annotation_labels_the_k_best_overall_without_overlaps_or_clipping():
    table = simulate_sumstats(n_classes=4, n_signal=12)
    ax = manhattan(table, "combined", annotate="top", top_k=5, ax=new_axes())
    rows = done_rows(table, "combined")
    assert hit_ids(ax) == set(rows.nlargest(5, "NEG_LOG10_P")["ID"])
    renderer = render(ax.figure)
    boxes = [t.get_window_extent(renderer) for t in ax.texts if str(t.get_gid()).startswith("hit:")]
    assert overlapping_pairs(boxes) == []
    axes_box = ax.get_window_extent(renderer)
    assert all(axes_box.x0 <= b.x0 and b.x1 <= axes_box.x1 and axes_box.y0 <= b.y0 and b.y1 <= axes_box.y1 for b in boxes)


def test_place_labels_avoids_overlaps_keeps_inside_and_gives_up_when_full():
    anchors = np.array([[50.0, 50.0], [52.0, 50.0], [54.0, 50.0], [56.0, 50.0]])
    sizes = np.full((4, 2), [20.0, 10.0])
    bounds = np.array([[0.0, 0.0], [200.0, 200.0]])
    offsets = place_labels(anchors, sizes, bounds, np.zeros(4, dtype=bool))
    boxes = [
        (x + dx - 10, y + dy - 5, x + dx + 10, y + dy + 5) for (x, y), (dx, dy) in zip(anchors, offsets) if (dx, dy) is not None
    ]
    assert len(boxes) == 4
    assert all(not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(box[0] >= 0 and box[1] >= 0 and box[2] <= 200 and box[3] <= 200 for box in boxes)
    tight = place_labels(anchors, sizes, np.array([[40.0, 40.0], [70.0, 70.0]]), np.zeros(4, dtype=bool))
    assert tight[0] is not None and None in tight
    downward = place_labels(anchors[:1], sizes[:1], bounds, np.array([True]))
    assert downward[0][1] < 0


# ------------------------------------------------------------------------------------------
# Variants
# ------------------------------------------------------------------------------------------


def test_signed_plot_points_up_when_harder_under_a_and_down_when_harder_under_b():
    table = simulate_sumstats()
    ax = manhattan(table, "loss", signed=True, thin=False, ax=new_axes())
    rows = done_rows(table, "loss")
    drawn = drawn_offsets(ax)
    assert np.sum(drawn[:, 1] < 0) == np.sum(rows["HARDER_IN"] == "vgg16")
    assert np.sum(drawn[:, 1] > 0) == np.sum(rows["HARDER_IN"] == "resnet20")
    n_tests = len(rows)
    bonferroni = -np.log10(0.01 / n_tests)
    assert line_y(ax, "bonferroni") == pytest.approx([-bonferroni, bonferroni])
    assert ax.get_ylim()[0] == pytest.approx(-ax.get_ylim()[1])
    assert "vgg16" in ax.get_ylabel() and "resnet20" in ax.get_ylabel()
    down = rows[rows["HARDER_IN"] == "vgg16"].nlargest(1, "NEG_LOG10_P")
    assert down["NEG_LOG10_P"].iloc[0] >= np.log10(n_tests)  # above the suggestive line: labelled...
    label = next(t for t in ax.texts if t.get_gid() == f"hit:{down['ID'].iloc[0]}")
    assert label.xyann[1] < 0  # ...below its point


def test_facets_draw_one_panel_per_score_sharing_x_with_class_names_on_the_bottom_panel():
    table = simulate_sumstats(scores=("loss", "aum", "el2n"), shuffle=False)
    figure = Figure(figsize=(8, 8), layout="constrained")
    axes = manhattan_facets(table, figure=figure)
    assert [ax.get_title(loc="left").split(" ·")[0] for ax in axes] == ["loss", "aum", "el2n", "combined"]
    for ax in axes:
        assert {c.get_gid() for c in direction_collections(ax)} <= {"direction:A", "direction:B", "direction:undefined"}
    assert axes[0].get_legend() is not None and all(ax.get_legend() is None for ax in axes[1:])
    x_first = np.sort(drawn_offsets(axes[0])[:, 0])
    assert x_first.min() >= axes[-1].get_xlim()[0] and x_first.max() <= axes[-1].get_xlim()[1]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[-1])
    assert [t.get_text() for t in axes[-1].get_xticklabels()] == [f"class{c}" for c in range(4)]
    assert not any(tick.label1.get_visible() for tick in axes[0].xaxis.get_major_ticks())


def test_hundred_classes_get_thinned_upright_tick_labels_that_do_not_touch():
    names = [f"class_with_long_name_{c}" for c in range(100)]
    table = simulate_sumstats(n_per_class=20, n_classes=100, scores=("loss",), class_names=names)
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    ax = manhattan(table, ax=figure.add_subplot())
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert 10 <= len(labels) <= 100
    assert all(t.get_rotation() == 90 for t in labels)
    shown = [names.index(t.get_text()) for t in labels]  # every k-th class, from the first
    assert shown[0] == 0 and len(set(np.diff(shown))) == 1
    renderer = render(figure)
    assert overlapping_pairs([t.get_window_extent(renderer) for t in labels]) == []


def test_thumbnails_show_the_labelled_examples_images():
    table = simulate_sumstats()
    images = np.random.default_rng(0).uniform(size=(240, 3, 8, 8))
    ax = manhattan(table, "loss", annotate="top", top_k=3, images=images, ax=new_axes())
    boxes = [a for a in ax.artists if str(a.get_gid()).startswith("hit:")]
    assert 1 <= len(boxes) <= 3
    assert hit_ids(ax) <= set(done_rows(table, "loss").nlargest(3, "NEG_LOG10_P")["ID"])
    with pytest.raises(DataError, match="not an image shape"):
        manhattan(table, "loss", images=np.zeros((240, 16)), ax=new_axes())


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_bad_input_raises_the_library_errors():
    table = simulate_sumstats()
    with pytest.raises(ResultsError, match="NEG_LOG10_P"):
        manhattan(table.drop(columns="NEG_LOG10_P"), ax=new_axes())
    with pytest.raises(InputError, match="no score 'grand'.*scores there: .*aum"):
        manhattan(table, "grand", ax=new_axes())
    with pytest.raises(InputError, match="alpha"):
        manhattan(table, alpha=1.5, ax=new_axes())
    with pytest.raises(ResultsError, match="signed"):
        manhattan(table.drop(columns=["HARDER_IN"]), signed=True, ax=new_axes())
    mixed = pd.concat([table, table.assign(B="vgg11")])
    with pytest.raises(InputError, match="several architecture pairs"):
        manhattan(mixed, ax=new_axes())


def test_combined_p_gets_thresholds_and_its_ranking_gets_none():
    """The combined rows' NEG_LOG10_P is now a Cauchy combination p: thresholds apply. Their ranking,
    the mean -log10 p (and the combined rows of an older table, which held that mean), is drawn
    without any threshold and says it is a ranking. Before, a Bonferroni line was drawn on the mean."""
    table = simulate_sumstats()
    rows = table[(table["SCORE"] == "combined") & (table["ERRCODE"] == ".")]
    ax = manhattan(table, ax=new_axes())  # default: combined
    assert line_y(ax, "bonferroni") == pytest.approx([-np.log10(0.01 / len(rows))])
    np.testing.assert_allclose(np.sort(drawn_offsets(ax)[:, 1]), np.sort(rows["NEG_LOG10_P"]))
    for ranked in (manhattan(table, ranking=True, ax=new_axes()), manhattan(simulate_sumstats(legacy=True), ax=new_axes())):
        assert not any(line.get_gid() in ("bonferroni", "suggestive") for line in ranked.lines)
        assert "ranking" in ranked.get_ylabel() and "not a p-value" in ranked.get_title(loc="left")
        assert not any(str(t.get_gid()).endswith("-label") for t in ranked.texts)
    ranked = manhattan(table, ranking=True, annotate="none", thin=False, ax=new_axes())
    np.testing.assert_allclose(np.sort(drawn_offsets(ranked)[:, 1]), np.sort(rows["MEAN_NEG_LOG10_P"]))
    panels = manhattan_facets(table, figure=Figure(figsize=(10, 6)), ranking=True)
    assert [any(line.get_gid() == "bonferroni" for line in ax.lines) for ax in panels] == [True, True, False]
    with pytest.raises(InputError, match="ranking draws a combined score") as refused:
        manhattan(table, "loss", ranking=True, ax=new_axes())
    assert refused.value.parameter == "ranking"


def test_plots_a_table_written_by_the_association_study():
    """The real producer of summary statistics: a pair table and a one-way table of 3 archs."""
    from gwas_models.analysis.simulate import simulate_scores
    from gwas_models.analysis.study import associate

    matrices = simulate_scores(
        np.random.default_rng(1), n_examples=300, runs={"r20": 6, "v16": 6, "v11": 6}, effect_examples=[3, 40, 77], effect_size=6.0, effect_arch="v16"
    )
    study = associate(matrices)
    pair = study.pairs[0].sumstats
    ax = manhattan(pair, signed=True, ax=new_axes())
    assert {3, 40, 77} <= hit_ids(ax)
    oneway = study.oneway.sumstats
    ax = manhattan(oneway, "combined_pairs", ax=new_axes())
    assert len(drawn_offsets(ax)) > 0 and ax.get_title(loc="left").startswith("combined_pairs")


def test_without_axes_each_plot_makes_its_own_figure_and_never_shows_it(monkeypatch):
    import matplotlib.pyplot as plt

    from gwas_models.plots.gallery import sensitivity_gallery
    from gwas_models.plots.qq import qq

    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: pytest.fail("a plot called show()"))
    table = simulate_sumstats()
    images = np.zeros((240, 1, 4, 4))
    try:
        for ax in (manhattan(table), qq(table), sensitivity_gallery(table, images, k=2)):
            assert ax.figure.get_layout_engine() is not None  # constrained: labels are not clipped
        assert len(manhattan_facets(table)) == 3
    finally:
        plt.close("all")
