"""Building blocks shared by the lessons' interactive widgets.

A lesson widget is a function that returns an ``ipywidgets`` box; its update logic is a plain
function of the slider values that tests call directly. Two pieces sit between them:

``FigureImage``
    A persistent Matplotlib figure shown as an ``ipywidgets.Image``. Updating artists in place
    and sending one PNG avoids re-creating the figure per slider step (and works the same in a
    browser, in nbclient and on Binder, with no front-end extension beyond ipywidgets).

``LatestWins``
    Runs a slow update (a retrain) on a background thread and always for the *newest* slider
    values: while one run is going, further requests only replace the pending one, so dragging a
    slider never queues a backlog, and a result is shown only if the sliders still show the
    values it was computed for. ipywidgets' own ``interact`` runs every queued change in order on
    the kernel's main thread, which is exactly the backlog we avoid; ``continuous_update=False``
    would avoid it only by not updating until the mouse is released.
"""

import io
import threading

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


def new_figure(**kwargs):
    """A Matplotlib figure outside pyplot, drawn with Agg whatever the notebook's backend.

    Jupyter's inline backend does not show it by itself at the end of a cell (the widget shows
    it), and nothing here changes pyplot's backend, so a lesson's ordinary plots keep working.
    """
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


class FigureImage:
    """A Matplotlib figure displayed as an ``ipywidgets.Image`` that ``refresh()`` re-renders.

    One Agg draw at the figure's own dpi and a lightly compressed PNG: ``savefig`` would draw
    twice (layout, then rendering) and compress harder, and on every slider step the time
    matters more than a few kilobytes crossing a local socket.
    """

    def __init__(self, figure, dpi=80):
        figure.set_dpi(dpi)
        self.figure = figure
        self.dpi = dpi
        self.widget = widgets.Image(format="png", layout=widgets.Layout(width="auto"))
        self.renders = 0
        self.refresh()

    def refresh(self):
        self.figure.canvas.draw()
        self.publish()

    def publish(self):
        """Send what the canvas holds now to the browser as a PNG."""
        canvas = self.figure.canvas
        width, height = canvas.get_width_height(physical=True)
        image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)
        self.widget.value = buffer.getvalue()
        self.renders += 1

    def close(self):
        plt.close(self.figure)


class LatestWins:
    """Compute ``work(request)`` for the newest request only, off the kernel's main thread.

    ``work`` returns a result; ``show(request, result)`` displays it and is called only if no
    newer request arrived while ``work`` ran (``current()`` must return the request the
    widgets show *now*). Call ``submit(request)`` from a widget observer. ``wait()`` blocks
    until everything submitted has been shown (for tests and benchmarks).
    """

    def __init__(self, work, show, current):
        self._work, self._show, self._current = work, show, current
        self._pending = None
        self._has_pending = False
        self._condition = threading.Condition()
        self._busy = False
        self.completed = 0
        self.dropped = 0
        self.errors = []
        self._thread = threading.Thread(target=self._loop, daemon=True, name="LatestWins")
        self._thread.start()

    def submit(self, request):
        with self._condition:
            if self._has_pending:
                self.dropped += 1  # an older request never started: skip it
            self._pending, self._has_pending = request, True
            self._condition.notify_all()

    def wait(self, timeout=60):
        with self._condition:
            done = self._condition.wait_for(lambda: not self._has_pending and not self._busy, timeout)
        if not done:
            raise TimeoutError("widget update did not finish in time")
        if self.errors:
            raise self.errors[-1]

    def _loop(self):
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._has_pending)
                request, self._has_pending, self._busy = self._pending, False, True
            try:
                result = self._work(request)
                with self._condition:
                    stale = self._has_pending or request != self._current()
                if stale:
                    self.dropped += 1
                else:
                    self._show(request, result)
                    self.completed += 1
            except Exception as error:  # keep the widget alive; the lesson shows the error
                self.errors.append(error)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
