"""The one idiom behind every lesson widget: controls -> compute -> a figure redrawn by blitting.

A lesson widget is a ``LiveFigure`` subclass. Its ``compute(request)`` turns the controls' values
(a dict) into a result, its ``show(request, result)`` moves the figure's artists and writes the
readout line; tests and the lessons call ``update(**settings)``, which does both at once and
returns the result. Three pieces sit between the controls and the screen:

``LatestWins``
    Every control change is handed to one background thread that always works on the *newest*
    values: while a computation runs, further changes only replace the pending one, so a drag
    never queues a backlog, and the kernel stays free to receive the next slider value. Each
    finished result is shown (it is newer than the one on screen, and its readout and image say
    which settings it shows); the last result shown is always the one for the controls' final
    values. ipywidgets' own ``interact`` runs every queued change in order on the kernel's main
    thread, which is exactly the backlog avoided here; ``continuous_update=False`` would avoid it
    only by not updating until the mouse is released.

``FigureImage``
    A Matplotlib figure shown as an ``ipywidgets.Image``. It works the same in a browser, in
    nbclient and on Binder, with no front-end extension beyond ipywidgets (ipympl's canvas would
    need its own extension and redraws the whole figure per change). It is rendered at
    ``PIXEL_RATIO`` (2) device pixels per CSS pixel and displayed at ``DISPLAY_DPI`` (72) CSS pixels
    per inch, so 1 pt of font is 1 CSS px at 100 % zoom and text stays sharp on HiDPI screens.
    Only the artists that change are redrawn ("blitting"): axes, ticks, labels and colour maps are
    drawn once into a saved background per static state, and most of Matplotlib's time goes into
    drawing their text. The image's ``tooltip`` (its ``title``, the accessible name of the
    ``<img>``) describes what it shows, in words.

``encode_png``
    A PNG without row filters: see its docstring for why it is not Pillow's.
"""

import struct
import threading
import zlib
from collections import OrderedDict
from contextlib import contextmanager

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from traitlets import Unicode

DISPLAY_DPI = 72  # CSS pixels per inch: a 10 pt font is 10 px at 100 % zoom
PIXEL_RATIO = 2  # device pixels per CSS pixel: sharp on HiDPI ("retina") screens
MIN_FONT_PT = 10  # the smallest text in a widget figure (= 10 px on screen)
CONTROL_STYLE = {"description_width": "100px"}
SLIDER_WIDTH = "400px"  # two slider columns fit JupyterLab's notebook at 1280 px with the file browser open


class DescribedImage(widgets.Image):
    """``ipywidgets.Image`` whose ``tooltip`` becomes the ``<img>``'s ``title``: its text alternative.

    ipywidgets 8's front end shows a tooltip only when the widget's ``description`` is empty, and
    reads that description without checking that the widget has one; ``Image`` has none, so its
    tooltip fails with "Cannot read properties of undefined (reading 'length')". An empty synced
    ``description`` is all it needs. (The title is the image's accessible name, which screen
    readers announce, and appears when the mouse rests on the image.)
    """

    description = Unicode("").tag(sync=True)


def new_figure(figsize):
    """A Matplotlib figure outside pyplot, drawn with Agg whatever the notebook's backend.

    Jupyter's inline backend does not show it by itself at the end of a cell (the widget shows
    it), and nothing here changes pyplot's backend, so a lesson's ordinary plots keep working.
    """
    # Whole CSS pixels, so that the PNG is exactly PIXEL_RATIO times the size on screen.
    figsize = tuple(round(inches * DISPLAY_DPI) / DISPLAY_DPI for inches in figsize)
    figure = Figure(figsize=figsize, dpi=DISPLAY_DPI * PIXEL_RATIO)
    FigureCanvasAgg(figure)
    return figure


def encode_png(rgba):
    """PNG bytes of an ``(height, width, 4)`` uint8 RGBA array, written with ``zlib`` directly.

    Why not Pillow (``Image.save(format="png")``): Pillow chooses a row filter for every row
    adaptively and has no option to skip that; for a 2x figure it is 60 % of its encoding time
    (measured: 23 ms vs 9 ms for a 1584 x 633 frame), while flat-coloured plots compress as well
    without filters (226 KB vs 235 KB). The format is the PNG specification's simplest case: one
    IHDR, one IDAT (zlib stream of rows, each prefixed with filter type 0), one IEND chunk.
    """
    height, width, channels = rgba.shape
    if channels != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected an (height, width, 4) uint8 array, got {rgba.shape} {rgba.dtype}")
    rows = np.empty((height, 1 + 4 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type 0: the row as it is
    rows[:, 1:] = rgba.reshape(height, 4 * width)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits per channel, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


class FigureImage:
    """A Matplotlib figure displayed as an ``ipywidgets.Image``, redrawn by blitting.

    ``dynamic()`` returns the artists that change between refreshes, in drawing order (an artist
    that must stay on top of a dynamic one, e.g. data points over a colour map, belongs in it
    too). ``refresh(description, background=key)`` pastes the saved background for ``key`` (drawn
    once with every dynamic artist hidden), draws the dynamic artists and sends one PNG. ``key``
    names the static state (say, which surface and axis range are shown): the caller sets that
    state up before refreshing, and a few backgrounds are kept, so switching back is cheap.
    """

    BACKGROUNDS_KEPT = 8

    def __init__(self, figure, dynamic=lambda: ()):
        if figure.dpi != DISPLAY_DPI * PIXEL_RATIO:
            raise ValueError("make the figure with coursekit.widgets.new_figure (it sets the HiDPI resolution)")
        self.figure = figure
        self.dynamic = dynamic
        width, height = (round(size * DISPLAY_DPI) for size in figure.get_size_inches())
        # width/height: the size on screen, in CSS pixels; the PNG has PIXEL_RATIO times as many.
        self.widget = DescribedImage(format="png", width=str(width), height=str(height))
        self._backgrounds = OrderedDict()
        self.renders = 0  # the first refresh() renders the first image

    def _background(self, key, artists):
        canvas = self.figure.canvas
        if key in self._backgrounds:
            self._backgrounds.move_to_end(key)
            return self._backgrounds[key]
        shown = [artist.get_visible() for artist in artists]
        for artist in artists:
            artist.set_visible(False)
        canvas.draw()
        for artist, visible in zip(artists, shown):
            artist.set_visible(visible)
        self._backgrounds[key] = canvas.copy_from_bbox(self.figure.bbox)
        while len(self._backgrounds) > self.BACKGROUNDS_KEPT:
            self._backgrounds.popitem(last=False)
        return self._backgrounds[key]

    def forget_backgrounds(self):
        """Call after changing something static without changing the background key."""
        self._backgrounds.clear()

    def refresh(self, description=None, background=None):
        """Redraw the dynamic artists over the background ``background`` and publish the image."""
        canvas = self.figure.canvas
        artists = [artist for artist in self.dynamic() if artist is not None]
        canvas.restore_region(self._background(background, artists))
        for artist in artists:
            if artist.get_visible():
                self.figure.draw_artist(artist)
        png = encode_png(np.asarray(canvas.buffer_rgba()))
        with self.widget.hold_sync():  # one message: the new image and its description together
            if description is not None:
                self.widget.tooltip = description
            self.widget.value = png
        self.renders += 1

    def close(self):
        plt.close(self.figure)


class LatestWins:
    """Compute ``work(request)`` for the newest request only, off the kernel's main thread.

    ``submit(request)`` from a control's observer; ``show(request, result)`` is called with every
    finished result, in the order the requests were submitted (older ones that never started
    are skipped). ``wait()`` blocks until everything submitted has been shown (for tests,
    benchmarks and ``LiveFigure.update``) and re-raises an error of the work, if any.
    """

    def __init__(self, work, show):
        self._work, self._show = work, show
        self._pending = None
        self._has_pending = False
        self._condition = threading.Condition()
        self._busy = False
        self.completed = 0
        self.skipped = 0
        self.errors = []
        self._thread = threading.Thread(target=self._loop, daemon=True, name="LatestWins")
        self._thread.start()

    def submit(self, request):
        with self._condition:
            if self._has_pending:
                self.skipped += 1  # an older request never started: a newer one replaces it
            self._pending, self._has_pending = request, True
            self._condition.notify_all()

    def wait(self, timeout=60):
        with self._condition:
            done = self._condition.wait_for(lambda: not self._has_pending and not self._busy, timeout)
        if not done:
            raise TimeoutError("widget update did not finish in time")
        if self.errors:
            raise self.errors.pop()

    def _loop(self):
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._has_pending)
                request, self._has_pending, self._busy = self._pending, False, True
            try:
                self._show(request, self._work(request))
                self.completed += 1
            except Exception as error:  # keep the widget alive; wait() reports it
                self.errors.append(error)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()


class LiveFigure:
    """Controls -> ``LatestWins(compute, show)`` -> ``FigureImage``: the lessons' widget idiom.

    A subclass builds its figure, then calls ``_connect(controls, view)`` with its ipywidgets
    controls (name -> widget) and its ``FigureImage``, and implements ``compute(request)`` and
    ``show(request, result)``; ``request`` is ``{name: control.value}``. ``show`` must end with
    ``self.view.refresh(...)``. Displaying the object displays ``widget``: the controls, a readout
    line and the image.
    """

    def _connect(self, controls, view, readout=None):
        self.controls = controls
        self.view = view
        self.readout = readout or widgets.HTML()
        self._lock = threading.RLock()
        self._holding = False
        self.result = None
        self.shown_request = None
        self.runner = LatestWins(self._compute_locked, self._show_locked)
        for control in controls.values():
            control.observe(self._on_change, names="value")

    def current(self):
        """The request the controls show now."""
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, _change):
        if not self._holding:
            self.runner.submit(self.current())

    @contextmanager
    def _hold(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def set_controls(self, **settings):
        """Move the controls without starting an update."""
        unknown = set(settings) - set(self.controls)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; choose from {sorted(self.controls)}")
        with self._hold():
            for name, value in settings.items():
                self.controls[name].value = value

    def update(self, **settings):
        """Set the controls to ``settings``, compute and redraw now; return the result."""
        self.runner.wait()  # let a background update finish first
        self.set_controls(**settings)
        request = self.current()
        result = self._compute_locked(request)
        self._show_locked(request, result)
        return result

    def _compute_locked(self, request):
        with self._lock:
            return self.compute(request)

    def _show_locked(self, request, result):
        with self._lock:
            self.show(request, result)
            self.shown_request = dict(request)
            self.result = result

    def compute(self, request):
        raise NotImplementedError

    def show(self, request, result):
        raise NotImplementedError

    def layout(self):
        """The widget's controls, top to bottom (override for several columns)."""
        return list(self.controls.values())

    @property
    def widget(self):
        if not hasattr(self, "_box"):
            self._box = widgets.VBox([*self.layout(), self.readout, self.view.widget])
        return self._box

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def slider_layout():
    return dict(style=CONTROL_STYLE, layout=widgets.Layout(width=SLIDER_WIDTH))
