"""Lesson 2's two widgets: the trajectory explorer and live retraining of the seed model.

Each is a class whose ``update(**settings)`` sets the sliders, computes and redraws, and returns
what it plotted (tests and the lesson call it directly), plus a ``*_widget()`` function that
returns the ipywidgets box. Moving a slider submits the sliders' values to a ``LatestWins``
runner: it computes on a background thread, skips requests a newer one replaced, and shows a
result only if the sliders still show the values it was computed for.
"""

import threading
import time
from contextlib import contextmanager


import ipywidgets as widgets
import numpy as np
from matplotlib.colors import LogNorm

from coursekit.widgets import FigureImage, LatestWins, new_figure

OPTIMIZER_COLORS = {"SGD": "tab:blue", "SGD + momentum": "tab:green", "RMSprop": "tab:purple", "Adam": "tab:red"}
# Below this, f − f* is float32 round-off: the log-scale panel shows it as "reached".
GAP_FLOOR = 1e-8


def format_settings(settings):
    """``learning_rate=0.01, beta_1=0.9, ...`` with 3 significant figures (4 for beta_2)."""
    parts = []
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        if name in settings:
            digits = 4 if name == "beta_2" else 3
            parts.append(f"{name}={settings[name]:.{digits}g}")
    return ", ".join(parts)


def hyperparameter_sliders(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, learning_rate_range=(-4, 0)):
    """The four Adam sliders: log scale for the learning rate and epsilon."""
    style = {"description_width": "100px"}
    layout = widgets.Layout(width="420px")
    common = dict(continuous_update=True, style=style, layout=layout)
    return {
        "learning_rate": widgets.FloatLogSlider(value=learning_rate, base=10, min=learning_rate_range[0],
                                                max=learning_rate_range[1], step=0.05,
                                                readout_format=".3g", description="learning_rate", **common),
        "beta_1": widgets.FloatSlider(value=beta_1, min=0.0, max=0.999, step=0.001, readout_format=".3g",
                                      description="beta_1", **common),
        "beta_2": widgets.FloatSlider(value=beta_2, min=0.9, max=0.9999, step=0.0001, readout_format=".4g",
                                      description="beta_2", **common),
        "epsilon": widgets.FloatLogSlider(value=epsilon, base=10, min=-10, max=0, step=0.1, readout_format=".2g",
                                          description="epsilon", **common),
    }


class BlittedFigureImage(FigureImage):
    """A ``FigureImage`` that redraws only the artists that change ("blitting").

    Axes, ticks, labels and contour maps stay the same while a slider moves, and drawing their
    text is most of Matplotlib's time. They are drawn once into a saved background; ``refresh``
    pastes it and draws only ``dynamic()``'s artists on top, in that order, then encodes the PNG.
    Call ``refresh(full=True)`` after changing anything static (limits, titles of axes, layout).
    """

    def __init__(self, figure, dynamic, dpi=72):
        self.dynamic = dynamic
        self._background = None
        super().__init__(figure, dpi=dpi)

    def refresh(self, full=False):
        canvas = self.figure.canvas
        artists = [artist for artist in self.dynamic() if artist is not None]
        if full or self._background is None:
            shown = [artist.get_visible() for artist in artists]
            for artist in artists:
                artist.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            for artist, visible in zip(artists, shown):
                artist.set_visible(visible)
        else:
            canvas.restore_region(self._background)
        for artist in artists:
            if artist.get_visible():
                self.figure.draw_artist(artist)
        self.publish()


class _SliderDrivenFigure:
    """Shared plumbing: controls -> request dict -> LatestWins(compute, show) -> FigureImage."""

    def _connect(self, controls):
        self.controls = controls
        self._lock = threading.RLock()
        self._holding = False
        self.runner = LatestWins(self._compute_locked, self._show_locked, self.current)
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


class TrajectoryExplorer(_SliderDrivenFigure):
    """Paths of SGD, SGD + momentum, RMSprop and Adam (real Keras optimizers) on a 2-D surface.

    Left: the surface's contour map and each optimizer's path from the start (×) towards the
    minimum (★). Right: how far each is from the lowest value, f − f*, after every step.
    """

    def __init__(self, surface="bowl", steps=100, learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 optimizers=None, runner=None, dpi=72):
        from coursekit.optimizers import OPTIMIZER_NAMES, SURFACES, TrajectoryRunner

        self.surfaces = SURFACES
        self.trajectory_runner = runner or TrajectoryRunner()
        self.names = self.trajectory_runner.names
        shown = set(OPTIMIZER_NAMES if optimizers is None else optimizers)
        wide = dict(style={"description_width": "100px"}, layout=widgets.Layout(width="420px"))
        controls = {
            "surface": widgets.Dropdown(options=[(s.title, key) for key, s in SURFACES.items()], value=surface,
                                        description="surface", **wide),
            **hyperparameter_sliders(learning_rate, beta_1, beta_2, epsilon),
            "steps": widgets.IntSlider(value=steps, min=1, max=1000, step=1, description="steps",
                                       continuous_update=True, **wide),
        }
        for name in self.names:
            controls[name] = widgets.Checkbox(value=name in shown, description=name, indent=False,
                                              layout=widgets.Layout(width="150px"))
        self._build_figure()
        self._connect(controls)
        self._static_key = None
        self.view = BlittedFigureImage(self.figure, self._dynamic_artists, dpi=dpi)
        self.result = None

    def _build_figure(self):
        self.figure = new_figure(figsize=(11, 4.4))
        self.map_ax, self.gap_ax = self.figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        self.lines, self.gap_lines = {}, {}
        for name in self.names:
            color = OPTIMIZER_COLORS.get(name)
            (self.lines[name],) = self.map_ax.plot([], [], "-o", color=color, markersize=2, linewidth=1.3,
                                                   label=name, zorder=3)
            (self.gap_lines[name],) = self.gap_ax.plot([], [], color=color, linewidth=1.5, label=name)
        (self.start_marker,) = self.map_ax.plot([], [], "kx", markersize=9, mew=2, zorder=4, label="start")
        (self.minimum_marker,) = self.map_ax.plot([], [], "*", color="gold", markeredgecolor="black",
                                                  markersize=14, zorder=4, label="minimum")
        self.map_ax.set_xlabel("x (parameter 1, arbitrary units)")
        self.map_ax.set_ylabel("y (parameter 2, arbitrary units)")
        self.gap_ax.set_yscale("log")
        self.gap_ax.set_xlabel("step")
        self.gap_ax.set_ylabel("f − f*  (log scale)")
        self.gap_ax.set_title("Distance to the lowest value, per step", fontsize=10)
        self.gap_ax.grid(alpha=0.3, which="major")
        self.gap_legend = self.gap_ax.legend(loc="lower left", fontsize=8)
        self.suptitle = self.figure.suptitle(" ", fontsize=11)
        self._background = []

    def _dynamic_artists(self):
        return [*self.lines.values(), *self.gap_lines.values(), self.gap_legend, self.suptitle]

    def _draw_surface(self, surface):
        for artist in self._background:
            artist.remove()
        xx, yy = np.meshgrid(np.linspace(*surface.xlim, 160), np.linspace(*surface.ylim, 160))
        heights = surface(xx, yy) - surface.minimum_value
        if surface.log_levels:
            levels = np.logspace(-1, np.log10(heights.max()), 14)
            norm = LogNorm(levels[0], levels[-1])
        else:  # spaced by area, so that the flat bottom gets as many lines as the steep walls
            levels = np.unique(np.quantile(heights, np.linspace(0.02, 0.98, 14)))
            norm = None
        image = self.map_ax.imshow(np.clip(heights, levels[0], None), extent=(*surface.xlim, *surface.ylim),
                                   origin="lower", cmap="Greys", alpha=0.35, aspect="auto", norm=norm, zorder=0)
        contours = self.map_ax.contour(xx, yy, heights, levels=levels, colors="0.45", linewidths=0.6, zorder=1)
        self._background = [image, contours]
        self.map_ax.set_xlim(surface.xlim)
        self.map_ax.set_ylim(surface.ylim)
        self.map_ax.set_title(f"{surface.title}: {surface.formula}", fontsize=10)
        self.start_marker.set_data([surface.start[0]], [surface.start[1]])
        minima = np.array(surface.minima)
        self.minimum_marker.set_data(minima[:, 0], minima[:, 1])

    def _gap_top(self, surface):
        """The top of the f − f* axis: well above the start, so a diverging path runs off it."""
        return float(surface(*surface.start) - surface.minimum_value) * 30

    def compute(self, request):
        settings = {name: request[name] for name in ("learning_rate", "beta_1", "beta_2", "epsilon")}
        return self.trajectory_runner.run(request["surface"], steps=int(request["steps"]), **settings)

    def show(self, request, result):
        surface, steps = result.surface, result.settings["steps"]
        # What the background shows depends only on the surface and the number of steps.
        static_key = (surface.key, steps)
        if static_key != self._static_key:
            if surface.key != (self._static_key or (None,))[0]:
                self._draw_surface(surface)
            self.gap_ax.set_xlim(0, max(1, steps))
            self.gap_ax.set_ylim(GAP_FLOOR / 2, self._gap_top(surface))
        step_numbers = np.arange(steps + 1)
        for name, text in zip(self.names, self.gap_legend.get_texts()):
            visible = bool(request[name])
            path = result.paths[name]
            self.lines[name].set_data(path[:, 0], path[:, 1])
            self.lines[name].set_visible(visible)
            with np.errstate(invalid="ignore"):
                gap = np.clip(result.values[name] - surface.minimum_value, GAP_FLOOR, None)
            self.gap_lines[name].set_data(step_numbers, gap)
            self.gap_lines[name].set_visible(visible)
            status = "diverged" if result.diverged(name) else f"f − f* = {result.final_gap(name):.2g}"
            text.set_text(f"{name}: {status}")
        self.suptitle.set_text(f"{format_settings(result.settings)} · {steps} steps")
        if static_key != self._static_key:
            if surface.key != (self._static_key or (None,))[0]:
                self.figure.tight_layout()  # titles and tick labels changed size
            self.view.refresh(full=True)
            self._static_key = static_key
        else:
            self.view.refresh()
        self.result = result

    def plotted_paths(self):
        """The (x, y) points each optimizer's line shows now: what the student sees."""
        return {name: np.column_stack(line.get_data()) for name, line in self.lines.items()}

    @property
    def widget(self):
        if not hasattr(self, "_box"):
            c = self.controls
            checkboxes = widgets.HBox([widgets.Label("show:", layout=widgets.Layout(width="50px")),
                                       *(c[name] for name in self.names)])
            left = widgets.VBox([c["surface"], c["learning_rate"], c["steps"]])
            right = widgets.VBox([c["beta_1"], c["beta_2"], c["epsilon"]])
            self._box = widgets.VBox([widgets.HBox([left, right]), checkboxes, self.view.widget])
        return self._box


def trajectory_widget(**settings):
    """The trajectory explorer as an ipywidgets box (its ``.explorer`` holds the update logic)."""
    explorer = TrajectoryExplorer(**settings)
    explorer.update()
    box = explorer.widget
    box.explorer = explorer
    return box


class RetrainingExplorer(_SliderDrivenFigure):
    """The seed model retrained by Adam with the sliders' values, live.

    Every change retrains the seed model (same initial weights, same batches) for ``epochs``
    epochs with ``FastTrainer`` and redraws loss and accuracy per epoch (dashed: Keras's default
    ``Adam()``) and the decision boundary.
    """

    LOSS_TOP = 1.2  # nats; a worse loss runs off the top of the panel

    def __init__(self, n_samples=400, noise=0.2, data_seed=0, model_seed=42, epochs=50, batch_size=32,
                 learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, resolution=80, dpi=72):
        import coursekit
        from coursekit.data import make_moons
        from coursekit.fast_training import FastTrainer
        from coursekit.models import build_seed_model

        self.X, self.y = make_moons(n_samples, noise=noise, seed=data_seed)
        coursekit.seed_everything(model_seed)
        self.model = build_seed_model()
        self.trainer = FastTrainer(self.model, self.X, self.y, epochs=epochs, batch_size=batch_size,
                                   seed=data_seed)
        self.defaults = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
        self.default_history = self.trainer.train(**self.defaults)
        x_min, y_min = self.X.min(axis=0) - 0.5
        x_max, y_max = self.X.max(axis=0) + 0.5
        self.extent = (x_min, x_max, y_min, y_max)
        self.xx, self.yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
        self.grid = np.column_stack([self.xx.ravel(), self.yy.ravel()]).astype("float32")
        self.timings = {}
        self._build_figure()
        self._connect(hyperparameter_sliders(learning_rate, beta_1, beta_2, epsilon))
        self.status = widgets.HTML()
        self.view = BlittedFigureImage(self.figure, self._dynamic_artists, dpi=dpi)
        self.result = None

    def _build_figure(self):
        self.figure = new_figure(figsize=(13, 3.9))
        self.loss_ax, self.accuracy_ax, self.boundary_ax = self.figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
        epochs = np.arange(1, self.trainer.epochs + 1)
        self.loss_ax.plot(epochs, self.default_history["loss"], "--", color="0.5", label="Adam() defaults")
        self.accuracy_ax.plot(epochs, self.default_history["accuracy"], "--", color="0.5", label="Adam() defaults")
        (self.loss_line,) = self.loss_ax.plot([], [], color="tab:red", linewidth=2, label="sliders' settings")
        (self.accuracy_line,) = self.accuracy_ax.plot([], [], color="tab:red", linewidth=2, label="sliders' settings")
        for ax, name in ((self.loss_ax, "loss"), (self.accuracy_ax, "accuracy")):
            ax.set_xlim(1, max(2, self.trainer.epochs))
            ax.set_xlabel(f"epoch (one pass over the {len(self.X)} points)")
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right" if name == "loss" else "lower right", fontsize=8)
        self.loss_ax.set_ylim(0, self.LOSS_TOP)
        self.loss_ax.set_ylabel("training loss (binary cross-entropy, nats)")
        self.loss_ax.set_title("Loss per epoch")
        self.accuracy_ax.set_ylabel("training accuracy (fraction correct)")
        self.accuracy_ax.set_title("Accuracy per epoch")
        self.accuracy_ax.set_ylim(0.3, 1.0)
        self.probability_image = self.boundary_ax.imshow(
            np.full(self.xx.shape, 0.5), extent=self.extent, origin="lower", cmap="RdBu_r", vmin=0, vmax=1,
            alpha=0.6, aspect="auto")
        self.figure.colorbar(self.probability_image, ax=self.boundary_ax, label="predicted P(class 1)")
        self.points = []
        for label, color in enumerate(("tab:blue", "tab:orange")):
            points = self.X[self.y == label]
            self.points.append(self.boundary_ax.scatter(points[:, 0], points[:, 1], s=8, color=color,
                                                        edgecolor="white", linewidth=0.3, label=f"class {label}"))
        self.boundary_ax.set_xlabel("feature x₁ (arbitrary units)")
        self.boundary_ax.set_ylabel("feature x₂ (arbitrary units)")
        self.boundary_ax.set_title("Decision boundary (black: P = 0.5)")
        self.boundary_contour = None
        self.suptitle = self.figure.suptitle(" ", fontsize=11)
        self.figure.tight_layout()

    def _dynamic_artists(self):
        # In drawing order: the probability map, then the boundary and the points on top of it.
        return [self.probability_image, self.boundary_contour, *self.points, self.loss_line,
                self.accuracy_line, self.suptitle]

    def compute(self, request):
        started = time.perf_counter()
        history = self.trainer.train(**request)
        trained = time.perf_counter()
        probabilities = np.asarray(self.model(self.grid, training=False)).reshape(self.xx.shape)
        self.timings["train_seconds"] = trained - started
        return {"settings": dict(request), "history": history, "probabilities": probabilities,
                "weights": [np.array(w) for w in self.model.get_weights()]}

    def show(self, request, result):
        started = time.perf_counter()
        history = result["history"]
        epochs = np.arange(1, len(history["loss"]) + 1)
        self.loss_line.set_data(epochs, history["loss"])
        self.accuracy_line.set_data(epochs, history["accuracy"])
        self.probability_image.set_data(result["probabilities"])
        if self.boundary_contour is not None:
            self.boundary_contour.remove()
            self.boundary_contour = None
        p = result["probabilities"]
        if np.isfinite(p).all() and p.min() < 0.5 < p.max():
            self.boundary_contour = self.boundary_ax.contour(self.xx, self.yy, p, levels=[0.5], colors="black",
                                                             linewidths=1.5)
        self.suptitle.set_text(f"Adam({format_settings(request)}) · after {len(epochs)} epochs: "
                               f"loss {history['loss'][-1]:.3f}, accuracy {history['accuracy'][-1]:.3f}")
        self.view.refresh()
        self.timings["draw_seconds"] = time.perf_counter() - started
        self.status.value = (f"retrained {self.trainer.epochs} epochs × {self.trainer.steps_per_epoch} batches in "
                             f"{1000 * self.timings['train_seconds']:.0f} ms, redrawn in "
                             f"{1000 * self.timings['draw_seconds']:.0f} ms")
        self.result = result

    def plotted_curves(self):
        """The loss and accuracy values the red curves show now."""
        return {"loss": np.array(self.loss_line.get_ydata()), "accuracy": np.array(self.accuracy_line.get_ydata())}

    @property
    def widget(self):
        if not hasattr(self, "_box"):
            c = self.controls
            sliders = widgets.HBox([widgets.VBox([c["learning_rate"], c["beta_1"]]),
                                    widgets.VBox([c["beta_2"], c["epsilon"]])])
            self._box = widgets.VBox([sliders, self.status, self.view.widget])
        return self._box


def retraining_widget(**settings):
    """The live-retraining explorer as an ipywidgets box (its ``.explorer`` holds the logic)."""
    explorer = RetrainingExplorer(**settings)
    explorer.update()
    box = explorer.widget
    box.explorer = explorer
    return box
