"""The shared widget machinery: latest-wins updates and figure rendering."""

import threading
import time

import matplotlib.pyplot as plt

from coursekit.widgets import FigureImage, LatestWins


def test_figure_image_renders_a_png_and_rerenders_on_refresh():
    figure, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1])
    view = FigureImage(figure)
    first = bytes(view.widget.value)
    assert first.startswith(b"\x89PNG")
    line.set_ydata([1, 0])
    view.refresh()
    assert bytes(view.widget.value) != first and view.renders == 2
    view.close()


def test_latest_wins_skips_stale_requests_and_shows_only_current_values():
    slider = {"value": 0}
    shown, started = [], []
    release = threading.Event()

    def work(request):
        started.append(request)
        if request == 1:
            release.wait(5)  # the first run is slow; the user keeps dragging meanwhile
        return request * 10

    runner = LatestWins(work, lambda request, result: shown.append((request, result)), lambda: slider["value"])
    slider["value"] = 1
    runner.submit(1)
    while not started:
        time.sleep(0.01)
    for value in (2, 3, 4, 5):  # a drag: four changes while run 1 is busy
        slider["value"] = value
        runner.submit(value)
    release.set()
    runner.wait()
    assert started == [1, 5], "requests 2-4 were stale before they started and must be skipped"
    assert shown == [(5, 50)], "the result for 1 no longer matched the slider and must not be shown"
    assert runner.dropped == 4  # 2, 3 and 4 replaced, 1 discarded


def test_latest_wins_keeps_working_after_an_error():
    state = {"value": None}

    def work(request):
        if request == "bad":
            raise ValueError("boom")
        return request

    shown = []
    runner = LatestWins(work, lambda request, result: shown.append(result), lambda: state["value"])
    state["value"] = "bad"
    runner.submit("bad")
    try:
        runner.wait()
    except ValueError:
        pass
    runner.errors.clear()
    state["value"] = "good"
    runner.submit("good")
    runner.wait()
    assert shown == ["good"]
