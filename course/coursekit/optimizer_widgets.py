"""Lesson 2's two widgets: the trajectory explorer and live retraining of the seed model.

Both are ``coursekit.widgets.LiveFigure``\\ s: ``update(**settings)`` sets the controls, computes,
redraws and returns what it plotted (tests and the lesson call it directly); displaying the object
shows its controls, readout line and image. Moving a control hands its values to a background
thread that always computes the newest ones (``LatestWins``).
"""

import time

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import LogNorm

from coursekit.widgets import CONTROL_STYLE, FigureImage, LiveFigure, new_figure, slider_layout

OPTIMIZER_COLORS = {"SGD": "tab:blue", "SGD + momentum": "tab:green", "RMSprop": "tab:purple", "Adam": "tab:red"}
# Below this, f − f* is float32 round-off: the log-scale panel shows it as "reached".
GAP_FLOOR = 1e-8
# The right panel's step axis ends at the first of these that holds the path, so that a new
# number of steps only changes the axis (and needs a new background) when it crosses one.
STEP_AXIS_ENDS = (10, 20, 50, 100, 200, 500, 1000, 2000)
ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
# FloatLogSlider moves in steps of its exponent: a typed value snaps to the nearest one.
LOG_STEPS = {"learning_rate": 0.05, "epsilon": 0.1}
SNAP_NOTE = ("learning_rate and epsilon move in steps of ×{:.3g} and ×{:.3g}: a typed value snaps to the nearest "
             "step, and the readout shows the value in use.").format(10 ** LOG_STEPS["learning_rate"],
                                                                    10 ** LOG_STEPS["epsilon"])


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
    common = dict(continuous_update=True, **slider_layout())
    return {
        "learning_rate": widgets.FloatLogSlider(value=learning_rate, base=10, min=learning_rate_range[0],
                                                max=learning_rate_range[1], step=LOG_STEPS["learning_rate"],
                                                readout_format=".3g", description="learning_rate", **common),
        "beta_1": widgets.FloatSlider(value=beta_1, min=0.0, max=0.999, step=0.001, readout_format=".3g",
                                      description="beta_1", **common),
        "beta_2": widgets.FloatSlider(value=beta_2, min=0.9, max=0.9999, step=0.0001, readout_format=".4g",
                                      description="beta_2", **common),
        "epsilon": widgets.FloatLogSlider(value=epsilon, base=10, min=-10, max=0, step=LOG_STEPS["epsilon"],
                                          readout_format=".3g", description="epsilon", **common),
    }


def snap_note():
    return widgets.HTML(f"<small>{SNAP_NOTE}</small>")


def step_axis_end(steps):
    return next(end for end in STEP_AXIS_ENDS if end >= steps)


class TrajectoryExplorer(LiveFigure):
    """Paths of SGD, SGD + momentum, RMSprop and Adam (real Keras optimizers) on a 2-D surface.

    Left: the surface's contour map and each optimizer's path from the start (×) towards the
    minimum (★). Right: how far each is from the lowest value, f − f*, after every step. The
    readout line says where each one ended.
    """

    def __init__(self, surface="bowl", steps=100, learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 optimizers=None, runner=None):
        from coursekit.optimizers import OPTIMIZER_NAMES, SURFACES, TrajectoryRunner

        self.surfaces = SURFACES
        self.trajectory_runner = runner or TrajectoryRunner()
        self.names = self.trajectory_runner.names
        shown = set(OPTIMIZER_NAMES if optimizers is None else optimizers)
        controls = {
            "surface": widgets.Dropdown(options=[(s.title, key) for key, s in SURFACES.items()], value=surface,
                                        description="surface", **slider_layout()),
            **hyperparameter_sliders(learning_rate, beta_1, beta_2, epsilon),
            "steps": widgets.IntSlider(value=steps, min=1, max=1000, step=1, description="steps",
                                       continuous_update=True, **slider_layout()),
        }
        for name in self.names:
            controls[name] = widgets.Checkbox(value=name in shown, description=name, indent=False,
                                              layout=widgets.Layout(width="max-content", margin="0 16px 0 0"))
        self._build_figure()
        self._surface_key = None
        self._connect(controls, FigureImage(self.figure, self._dynamic_artists))
        # Compile every surface's graph and draw its background now, once: choosing a surface later
        # only runs the graph and pastes the background.
        for key in SURFACES:
            if key != surface:
                self.update(surface=key)
        self.update(surface=surface)

    def _build_figure(self):
        self.figure = new_figure(figsize=(11, 4.6))
        self.map_ax, self.gap_ax = self.figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        # A fixed layout: the axes never move, whatever the titles and tick labels say.
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
        self.lines, self.gap_lines = {}, {}
        for name in self.names:
            color = OPTIMIZER_COLORS.get(name)
            (self.lines[name],) = self.map_ax.plot([], [], "-o", color=color, markersize=2, linewidth=1.3,
                                                   label=name, zorder=3)
            (self.gap_lines[name],) = self.gap_ax.plot([], [], color=color, linewidth=1.5, label=name)
        (self.start_marker,) = self.map_ax.plot([], [], "kx", markersize=9, mew=2, zorder=4, label="start")
        (self.minimum_marker,) = self.map_ax.plot([], [], "*", color="gold", markeredgecolor="black",
                                                  markersize=14, zorder=4, label="minimum")
        self.map_ax.set_xlabel("x (parameter 1, no unit)")
        self.map_ax.set_ylabel("y (parameter 2, no unit)")
        self.gap_ax.set_yscale("log")
        self.gap_ax.set_xlabel("step")
        self.gap_ax.set_ylabel("f − f*  (log scale)")
        self.gap_ax.set_title("Distance to the lowest value f*, per step")
        self.gap_ax.grid(alpha=0.3, which="major")
        self.gap_ax.legend(loc="lower left")
        # Each surface's shading and contour lines, made once and shown when it is chosen.
        self.surface_artists = {key: self._surface_artists(surface) for key, surface in self.surfaces.items()}

    def _surface_artists(self, surface):
        xx, yy = np.meshgrid(np.linspace(*surface.xlim, 160), np.linspace(*surface.ylim, 160))
        heights = surface(xx, yy) - surface.minimum_value
        if surface.log_levels:
            levels = np.logspace(-1, np.log10(heights.max()), 14)
            norm = LogNorm(levels[0], levels[-1])
        else:  # spaced by area, so that the flat bottom gets as many lines as the steep walls
            levels = np.unique(np.quantile(heights, np.linspace(0.02, 0.98, 14)))
            norm = None
        image = self.map_ax.imshow(np.clip(heights, levels[0], None), extent=(*surface.xlim, *surface.ylim),
                                   origin="lower", cmap="Greys", alpha=0.35, aspect="auto", norm=norm, zorder=0,
                                   visible=False)
        contours = self.map_ax.contour(xx, yy, heights, levels=levels, colors="0.45", linewidths=0.6, zorder=1)
        contours.set_visible(False)
        return image, contours

    def _set_static(self, surface, steps):
        """Put the figure's static parts in the state for ``surface`` and ``steps``; return its key."""
        if surface.key != self._surface_key:
            for key, artists in self.surface_artists.items():
                for artist in artists:
                    artist.set_visible(key == surface.key)
            self.map_ax.set_xlim(surface.xlim)
            self.map_ax.set_ylim(surface.ylim)
            self.map_ax.set_title(f"{surface.title}: {surface.formula}")
            self.start_marker.set_data([surface.start[0]], [surface.start[1]])
            minima = np.array(surface.minima)
            self.minimum_marker.set_data(minima[:, 0], minima[:, 1])
            self.gap_ax.set_ylim(GAP_FLOOR / 2, self._gap_top(surface))
            self._surface_key = surface.key
        end = step_axis_end(steps)
        self.gap_ax.set_xlim(0, end)
        return surface.key, end

    def _dynamic_artists(self):
        return [*self.lines.values(), *self.gap_lines.values(), self.start_marker, self.minimum_marker]

    def _gap_top(self, surface):
        """The top of the f − f* axis: well above the start, so a diverging path runs off it."""
        return float(surface(*surface.start) - surface.minimum_value) * 30

    def compute(self, request):
        settings = {name: request[name] for name in ADAM_DEFAULTS}
        return self.trajectory_runner.run(request["surface"], steps=int(request["steps"]), **settings)

    def status(self, result, name):
        return "diverged" if result.diverged(name) else f"f − f* = {result.final_gap(name):.2g}"

    def show(self, request, result):
        surface, steps = result.surface, result.settings["steps"]
        background = self._set_static(surface, steps)
        step_numbers = np.arange(steps + 1)
        for name in self.names:
            visible = bool(request[name])
            path = result.paths[name]
            self.lines[name].set_data(path[:, 0], path[:, 1])
            self.lines[name].set_visible(visible)
            with np.errstate(invalid="ignore"):
                gap = np.clip(result.values[name] - surface.minimum_value, GAP_FLOOR, None)
            self.gap_lines[name].set_data(step_numbers, gap)
            self.gap_lines[name].set_visible(visible)
        shown = [name for name in self.names if request[name]]
        ends = " · ".join(f"<b>{name}</b> {self.status(result, name)}" for name in shown) or "no optimizer ticked"
        self.readout.value = f"{format_settings(result.settings)} · after {steps} steps: {ends}"
        description = (f"Contour map of the {surface.title.lower()}, {surface.formula}, with the paths of "
                       f"{', '.join(shown) or 'no optimizer'} from the start at ({surface.start[0]:g}, "
                       f"{surface.start[1]:g}), and their distance to the lowest value per step (log scale). "
                       f"{format_settings(result.settings)}, {steps} steps. At the end: "
                       + "; ".join(f"{name} {self.status(result, name)}" for name in shown) + ".")
        self.view.refresh(description, background=background)

    def plotted_paths(self):
        """The (x, y) points each optimizer's line shows now: what the student sees."""
        return {name: np.column_stack(line.get_data()) for name, line in self.lines.items()}

    def layout(self):
        c = self.controls
        checkboxes = widgets.HBox([widgets.Label("show:", layout=widgets.Layout(width="50px")),
                                   *(c[name] for name in self.names)])
        left = widgets.VBox([c["surface"], c["learning_rate"], c["steps"]])
        right = widgets.VBox([c["beta_1"], c["beta_2"], c["epsilon"]])
        return [widgets.HBox([left, right]), checkboxes, snap_note()]


class RetrainingExplorer(LiveFigure):
    """The seed model retrained by Adam with the sliders' values, live.

    Every change retrains the seed model (same initial weights, same batches) for ``epochs``
    epochs with ``FastTrainer`` and redraws loss and accuracy per epoch (dashed: Keras's default
    ``Adam()``) and the decision boundary.
    """

    LOSS_TOP = 1.2  # nats; a worse loss runs off the top of the panel

    def __init__(self, n_samples=400, noise=0.2, data_seed=0, model_seed=42, epochs=50, batch_size=32,
                 learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, resolution=80):
        import coursekit
        from coursekit.data import make_moons
        from coursekit.fast_training import FastTrainer
        from coursekit.models import build_seed_model

        self.X, self.y = make_moons(n_samples, noise=noise, seed=data_seed)
        coursekit.seed_everything(model_seed)
        self.model = build_seed_model()
        # XLA (jit_compile) makes a retrain of 50 epochs ~7 ms instead of ~50 ms; it fuses the same
        # operations, so the weights agree with fit's to float32 rounding (tests/test_fast_training.py).
        self.trainer = FastTrainer(self.model, self.X, self.y, epochs=epochs, batch_size=batch_size,
                                   seed=data_seed, jit_compile=True)
        self.default_history = self.trainer.train(**ADAM_DEFAULTS)
        x_min, y_min = self.X.min(axis=0) - 0.5
        x_max, y_max = self.X.max(axis=0) + 0.5
        self.extent = (x_min, x_max, y_min, y_max)
        self.xx, self.yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
        self.grid = np.column_stack([self.xx.ravel(), self.yy.ravel()]).astype("float32")
        self.timings = {}
        self._build_figure()
        self._connect(hyperparameter_sliders(learning_rate, beta_1, beta_2, epsilon),
                      FigureImage(self.figure, self._dynamic_artists))
        self.update()

    def _build_figure(self):
        self.figure = new_figure(figsize=(11.2, 4.8))
        grid = self.figure.add_gridspec(2, 2, width_ratios=[1, 1.05], left=0.08, right=0.97, bottom=0.11,
                                        top=0.93, hspace=0.12, wspace=0.28)
        self.loss_ax = self.figure.add_subplot(grid[0, 0])
        self.accuracy_ax = self.figure.add_subplot(grid[1, 0], sharex=self.loss_ax)
        self.boundary_ax = self.figure.add_subplot(grid[:, 1])
        epochs = np.arange(1, self.trainer.epochs + 1)
        self.loss_ax.plot(epochs, self.default_history["loss"], "--", color="0.5", label="Adam() defaults")
        self.accuracy_ax.plot(epochs, self.default_history["accuracy"], "--", color="0.5", label="Adam() defaults")
        (self.loss_line,) = self.loss_ax.plot([], [], color="tab:red", linewidth=2, label="sliders' settings")
        (self.accuracy_line,) = self.accuracy_ax.plot([], [], color="tab:red", linewidth=2, label="sliders' settings")
        for ax in (self.loss_ax, self.accuracy_ax):
            ax.set_xlim(1, max(2, self.trainer.epochs))
            ax.grid(alpha=0.3)
        self.loss_ax.tick_params(labelbottom=False)
        self.loss_ax.legend(loc="upper right")
        self.accuracy_ax.set_xlabel(f"epoch (one pass over the {len(self.X)} points)")
        self.loss_ax.set_ylim(0, self.LOSS_TOP)
        self.loss_ax.set_ylabel("loss (nats)")
        self.loss_ax.set_title("Training loss (binary cross-entropy) and accuracy per epoch")
        self.accuracy_ax.set_ylabel("accuracy")
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
        self.boundary_ax.set_xlabel("feature x₁ (no unit)")
        self.boundary_ax.set_ylabel("feature x₂ (no unit)")
        self.boundary_ax.set_title("Decision boundary (black: P = 0.5)")
        self.boundary_contour = None

    def _dynamic_artists(self):
        # In drawing order: the probability map, then the boundary and the points on top of it.
        return [self.probability_image, self.boundary_contour, *self.points, self.loss_line, self.accuracy_line]

    def compute(self, request):
        started = time.perf_counter()
        history = self.trainer.train(**request)
        trained = time.perf_counter()
        probabilities = np.asarray(self.model(self.grid, training=False)).reshape(self.xx.shape)
        self.timings["train_seconds"] = trained - started
        return {"settings": dict(request), "history": history, "probabilities": probabilities,
                "weights": [np.array(w) for w in self.model.get_weights()], "train_seconds": trained - started}

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
        settings = format_settings(result["settings"])
        final = f"loss {history['loss'][-1]:.3f}, accuracy {history['accuracy'][-1]:.3f}"
        # The line above the image names the settings of the image below it: both change together.
        self.readout.value = (f"Adam({settings}) · after {len(epochs)} epochs: {final} · retrained "
                              f"{self.trainer.epochs} epochs × {self.trainer.steps_per_epoch} batches in "
                              f"{1000 * result['train_seconds']:.0f} ms")
        self.view.refresh(f"Loss and accuracy of the seed model per epoch, retrained with Adam({settings}) (after "
                          f"{len(epochs)} epochs: {final}), next to Keras's defaults, and the decision boundary it "
                          f"learned on the half-moons.")
        self.timings["draw_seconds"] = time.perf_counter() - started

    def plotted_curves(self):
        """The loss and accuracy values the red curves show now."""
        return {"loss": np.array(self.loss_line.get_ydata()), "accuracy": np.array(self.accuracy_line.get_ydata())}

    def layout(self):
        c = self.controls
        return [widgets.HBox([widgets.VBox([c["learning_rate"], c["beta_1"]]),
                              widgets.VBox([c["beta_2"], c["epsilon"]])]), snap_note()]

