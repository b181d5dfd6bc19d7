"""The one widget idiom of the lessons: controls -> LatestWins -> FigureImage (blitting, HiDPI PNG).

The lesson widgets themselves are tested in tests/test_lesson0N.py; here are the shared pieces and
what every widget must do: fit JupyterLab at 1280 px, text of at least 10 px, a text alternative.
"""

import io
import re
import threading
import time

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
from coursekit.widgets import (DISPLAY_DPI, MIN_FONT_PT, PIXEL_RATIO, DescribedImage, FigureImage, LatestWins,
                               LiveFigure, encode_png, new_figure)

# JupyterLab 4 at a 1280 px wide window, file browser open: a cell's output area is about 847 px wide.
OUTPUT_WIDTH_AT_1280 = 840


def png_pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.mark.claim("readme.widget-speed")
def test_encode_png_is_a_png_pillow_reads_back_pixel_for_pixel():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    png = encode_png(rgba)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    np.testing.assert_array_equal(png_pixels(png), rgba)


def figure_with_a_line():
    figure = new_figure(figsize=(4, 3))
    ax = figure.subplots()
    ax.set_title("A title")
    (line,) = ax.plot([0, 1], [0, 1], color="red")
    return figure, ax, line


@pytest.mark.claim("readme.widget-images")
def test_figure_image_is_rendered_at_twice_the_pixels_of_its_size_on_screen():
    figure, _, line = figure_with_a_line()
    view = FigureImage(figure, lambda: [line])
    view.refresh("a red line")
    width, height = Image.open(io.BytesIO(bytes(view.widget.value))).size
    assert (int(view.widget.width), int(view.widget.height)) == (4 * DISPLAY_DPI, 3 * DISPLAY_DPI)
    assert (width, height) == (PIXEL_RATIO * int(view.widget.width), PIXEL_RATIO * int(view.widget.height))
    assert PIXEL_RATIO == 2


def test_every_figure_size_is_a_whole_number_of_css_pixels():
    figure = new_figure(figsize=(11.4, 3.9))  # 820.8 x 280.8 px asked for
    view = FigureImage(figure)
    view.refresh()
    assert Image.open(io.BytesIO(bytes(view.widget.value))).size == (2 * 821, 2 * 281)
    assert (view.widget.width, view.widget.height) == ("821", "281")


def test_figures_not_made_for_hidpi_are_refused():
    from matplotlib.figure import Figure

    with pytest.raises(ValueError, match="new_figure"):
        FigureImage(Figure(figsize=(4, 3), dpi=72))


@pytest.mark.claim("readme.widget-speed")
def test_blitting_gives_the_same_pixels_as_a_full_redraw():
    figure, _, line = figure_with_a_line()
    view = FigureImage(figure, lambda: [line])
    view.refresh("first")
    line.set_ydata([1, 0])
    view.refresh("second")  # the saved background, the line drawn again on top
    blitted = png_pixels(bytes(view.widget.value))
    figure.canvas.draw()  # everything drawn from scratch
    full = np.asarray(figure.canvas.buffer_rgba())
    np.testing.assert_array_equal(blitted, full)
    assert view.renders == 2 and view.widget.tooltip == "second"


@pytest.mark.claim("readme.widget-speed")
def test_a_background_is_drawn_once_per_static_state():
    figure, ax, line = figure_with_a_line()
    draws = []
    figure.canvas.mpl_connect("draw_event", lambda event: draws.append(1))
    view = FigureImage(figure, lambda: [line])
    for key in ("a", "a", "b", "a", "b"):
        ax.set_xlim(0, 1 if key == "a" else 2)
        view.refresh(background=key)
    assert len(draws) == 2, "a full draw for 'a' and one for 'b'; the rest paste saved backgrounds"


def test_the_image_carries_its_text_alternative_without_breaking_ipywidgets():
    # ipywidgets 8's front end reads `description` to decide whether to show a tooltip; an Image has none.
    image = DescribedImage()
    assert image.get_state()["description"] == ""
    assert "description" in image.keys


@pytest.mark.claim("readme.widget-speed")
def test_latest_wins_skips_requests_that_never_started_and_shows_results_in_order():
    shown, started = [], []
    release = threading.Event()

    def work(request):
        started.append(request)
        if request == 1:
            release.wait(5)  # the first run is slow; the student keeps dragging meanwhile
        return request * 10

    runner = LatestWins(work, lambda request, result: shown.append((request, result)))
    runner.submit(1)
    while not started:
        time.sleep(0.01)
    for value in (2, 3, 4, 5):  # a drag: four changes while run 1 is busy
        runner.submit(value)
    release.set()
    runner.wait()
    assert started == [1, 5], "2, 3 and 4 were replaced before they started and must be skipped"
    assert shown == [(1, 10), (5, 50)], "each finished result is shown, the newest last"
    assert runner.skipped == 3


def test_latest_wins_reports_an_error_and_keeps_working():
    def work(request):
        if request == "bad":
            raise ValueError("boom")
        return request

    shown = []
    runner = LatestWins(work, lambda request, result: shown.append(result))
    runner.submit("bad")
    with pytest.raises(ValueError, match="boom"):
        runner.wait()
    runner.submit("good")
    runner.wait()
    assert shown == ["good"]


class Counter(LiveFigure):
    """The smallest LiveFigure: a slider whose value is drawn as a bar."""

    def __init__(self):
        self.figure = new_figure(figsize=(3, 2))
        ax = self.figure.subplots()
        ax.set_ylim(0, 10)
        (self.bar,) = ax.bar([0], [0])
        self._connect({"n": widgets.IntSlider(value=1, min=0, max=10)}, FigureImage(self.figure, lambda: [self.bar]))
        self.update()

    def compute(self, request):
        return request["n"] * 1.0

    def show(self, request, result):
        self.bar.set_height(result)
        self.readout.value = f"n = {request['n']}"
        self.view.refresh(f"A bar of height {result:g}.")


def test_a_live_figure_updates_from_its_control_and_displays_as_its_widget_box():
    counter = Counter()
    counter.controls["n"].value = 7
    counter.runner.wait()
    assert counter.bar.get_height() == 7.0 and counter.readout.value == "n = 7"
    assert counter.shown_request == {"n": 7} and counter.view.widget.tooltip == "A bar of height 7."
    assert counter.update(n=3) == 3.0 and counter.controls["n"].value == 3
    bundle = counter._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == counter.widget.model_id
    assert counter.view.widget in counter.widget.children and counter.readout in counter.widget.children
    with pytest.raises(TypeError, match="unknown settings"):
        counter.update(m=1)


# --------------------------------------------------------------------------- every lesson widget


def lesson_widgets():
    """One of each widget the lessons show, built small but as the lessons build them."""
    from coursekit.data import make_moons
    from coursekit.loss_metric_widgets import OutputLossWidget, ProbabilityLossWidget, ThresholdWidget
    from coursekit.optimizer_widgets import RetrainingExplorer, TrajectoryExplorer

    rng = np.random.default_rng(0)
    grid = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    runs = {name: {"accuracy": list(rng.uniform(0.5, 1, 10)), "loss": [1.0] * 10,
                   "grid": (*grid, rng.uniform(0, 1, (5, 5))), "output_range": (0.0, 1.0), "clipped_share": 0.0}
            for name in ("sigmoid + binary_crossentropy", "linear + BinaryCrossentropy(from_logits=True)")}
    X, y = make_moons(60, seed=0)
    scores = np.clip(0.4 * y + rng.uniform(0, 0.6, len(y)), 0, 1)
    return {"trajectory explorer": TrajectoryExplorer(), "live retraining": RetrainingExplorer(epochs=2),
            "probability → loss": ProbabilityLossWidget(), "output + loss": OutputLossWidget(runs, X, y),
            "threshold": ThresholdWidget(y, scores)}


@pytest.fixture(scope="module")
def every_widget():
    return lesson_widgets()


def test_every_widget_figure_fits_jupyterlab_at_1280_px(every_widget):
    for name, widget in every_widget.items():
        assert int(widget.view.widget.width) <= OUTPUT_WIDTH_AT_1280, name


@pytest.mark.claim("readme.widget-images")
def test_every_text_in_every_widget_figure_is_at_least_10_px_on_screen(every_widget):
    for name, widget in every_widget.items():
        figure = widget.figure
        texts = [text for text in figure.findobj(lambda artist: hasattr(artist, "get_fontsize")) if text.get_text()]
        assert texts, name
        smallest = min(text.get_fontsize() for text in texts) * DISPLAY_DPI / 72  # points -> CSS px
        assert smallest >= MIN_FONT_PT == 10, f"{name}: text of {smallest:.1f} px"


@pytest.mark.claim("readme.widget-images")
def test_every_widget_image_has_a_text_alternative_that_follows_it(every_widget):
    for name, widget in every_widget.items():
        description = widget.view.widget.tooltip
        assert description and len(description) > 60, name
        assert re.search(r"\d", description), f"{name}: the description should carry the numbers shown"


def test_every_loss_axis_names_its_unit(every_widget):
    """Cross-entropy is in nats (lesson 1 explains the unit); squared error of a probability has none."""
    labels = [label for widget in every_widget.values() for ax in widget.figure.axes
              for label in (ax.get_xlabel(), ax.get_ylabel()) if label.startswith("loss") or "cross-entropy" in label]
    assert labels
    for label in labels:
        assert "nats" in label, label
    assert any("squared error: no unit" in label for label in labels)
