"""The interactive widgets of lessons 3 (losses) and 4 (metrics).

Each widget is an ``ipywidgets.VBox`` — control, readout, plot — built on ``FigureImage``: the
figure is drawn once and ``update(value)`` only moves artists, then sends one PNG. ``update`` is
a plain method that tests and benchmarks call headless; it returns the numbers it plotted.
Nothing here trains a model: the lessons train once and hand the results in, so every update is
cheap (the course's budget is 150 ms per update, measured by ``benchmarks/bench_lessons03_04.py``).
"""


import ipywidgets as widgets
import numpy as np

from coursekit import losses as loss_formulas
from coursekit import metrics as metric_formulas
from coursekit.widgets import FigureImage, new_figure

LOSS_COLORS = {"binary_crossentropy": "tab:red", "mean_squared_error": "tab:blue"}
LOSS_LABELS = {"binary_crossentropy": "binary cross-entropy", "mean_squared_error": "squared error"}


def _probability_losses(label, p):
    """BCE and squared error of one prediction p for a true label (NumPy formulas of lesson 3)."""
    p = np.asarray(p, dtype=float)
    return {"binary_crossentropy": loss_formulas.binary_crossentropy(np.full_like(p, label)[..., None], p[..., None]),
            "mean_squared_error": loss_formulas.mean_squared_error(np.full_like(p, label)[..., None], p[..., None])}


class ProbabilityLossWidget(widgets.VBox):
    """Predicted probability (slider) -> loss, for BCE and squared error, for both true labels."""

    def __init__(self, probability=0.2, dpi=80):
        self.slider = widgets.FloatSlider(value=probability, min=0.01, max=0.99, step=0.01,
                                          description="predicted p", readout_format=".2f",
                                          continuous_update=True, layout=widgets.Layout(width="420px"))
        self.readout = widgets.HTML()
        figure = new_figure(figsize=(9.5, 3.4))
        axes = figure.subplots(1, 2, sharey=True)
        grid = np.linspace(0.001, 0.999, 400)
        self.markers, self.axes = {}, dict(zip((1, 0), axes))
        for label, ax in self.axes.items():
            for name, values in _probability_losses(label, grid).items():
                ax.plot(grid, values, color=LOSS_COLORS[name], label=LOSS_LABELS[name])
                (self.markers[label, name],) = ax.plot([], [], "o", color=LOSS_COLORS[name], markersize=8)
            ax.set_title(f"true label y = {label}")
            ax.set_xlabel("predicted probability p of class 1")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 5)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper center")
        axes[0].set_ylabel("loss of this one example\n(BCE in nats; squared error in p²)")
        figure.suptitle("The loss of one prediction: binary cross-entropy vs squared error")
        figure.tight_layout()
        self._set_artists(probability)
        self.plot = FigureImage(figure, dpi=dpi)  # renders the first image
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        super().__init__([self.slider, self.readout, self.plot.widget])

    def update(self, probability):
        """Move the four markers to ``probability`` and re-render; return {(label, loss name): loss}."""
        values = self._set_artists(probability)
        self.plot.refresh()
        return values

    def _set_artists(self, probability):
        values = {}
        for (label, name), marker in self.markers.items():
            value = float(_probability_losses(label, probability)[name])
            marker.set_data([probability], [min(value, 5.0)])
            values[label, name] = value
        self.readout.value = (
            f"p = {probability:.2f} &nbsp;·&nbsp; if y = 1: BCE {values[1, 'binary_crossentropy']:.3f}, "
            f"squared error {values[1, 'mean_squared_error']:.3f} &nbsp;·&nbsp; if y = 0: BCE "
            f"{values[0, 'binary_crossentropy']:.3f}, squared error {values[0, 'mean_squared_error']:.3f}")
        return values


class OutputLossWidget(widgets.VBox):
    """Pick an output-layer/loss pair (buttons) -> its accuracy per epoch and its probability map.

    ``runs`` is what ``coursekit.losses.train_output_loss_pairs`` returns; ``X, y`` are the
    training points drawn over the map.
    """

    def __init__(self, runs, X, y, selected=None, dpi=80):
        self.runs = runs
        labels = list(runs)
        self.buttons = widgets.ToggleButtons(options=labels, value=selected or labels[0],
                                             description="output + loss", style={"button_width": "auto"})
        self.readout = widgets.HTML()
        figure = new_figure(figsize=(10.5, 3.8))
        curves, field = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        self.lines = {}
        for label, run in runs.items():
            epochs = np.arange(1, len(run["accuracy"]) + 1)
            (self.lines[label],) = curves.plot(epochs, run["accuracy"], color="0.75", linewidth=1)
        curves.set_title("training accuracy per epoch (selected run in colour)")
        curves.set_xlabel("epoch (one pass over the training data)")
        curves.set_ylabel("accuracy (fraction correct, 0 to 1)")
        curves.set_ylim(0.3, 1.0)
        curves.grid(alpha=0.3)
        xx, yy, probabilities = runs[labels[0]]["grid"]
        self.image = field.imshow(probabilities, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, aspect="auto",
                                  extent=(xx.min(), xx.max(), yy.min(), yy.max()), alpha=0.7)
        for label_value, color in ((0, "tab:blue"), (1, "tab:orange")):
            points = X[y == label_value]
            field.scatter(points[:, 0], points[:, 1], s=8, color=color, edgecolor="white", linewidth=0.3)
        figure.colorbar(self.image, ax=field, label="P(class 1) the loss reads")
        field.set_xlabel("feature x₁ (arbitrary units)")
        field.set_ylabel("feature x₂ (arbitrary units)")
        self.field = field
        figure.tight_layout()
        self._set_artists(self.buttons.value)
        self.plot = FigureImage(figure, dpi=dpi)  # renders the first image
        self.buttons.observe(lambda change: self.update(change["new"]), names="value")
        super().__init__([self.buttons, self.readout, self.plot.widget])

    def update(self, label):
        """Highlight run ``label``, show its map and re-render; return its final training accuracy."""
        final = self._set_artists(label)
        self.plot.refresh()
        return final

    def _set_artists(self, label):
        for name, line in self.lines.items():
            chosen = name == label
            line.set_color("tab:red" if chosen else "0.75")
            line.set_linewidth(2.5 if chosen else 1)
            line.set_zorder(3 if chosen else 1)
        run = self.runs[label]
        self.image.set_data(run["grid"][2])
        self.field.set_title(f"after training: {label}", fontsize=9)
        low, high = run["output_range"]
        final = float(run["accuracy"][-1])
        self.readout.value = (f"<b>{label}</b>: training accuracy after the last epoch {final:.3f} · raw outputs "
                              f"on the training points from {low:.2f} to {high:.2f}")
        return final


class ThresholdWidget(widgets.VBox):
    """Decision threshold (slider) -> confusion matrix, precision and recall of fixed predictions.

    ``scores`` are a trained model's predicted probabilities for the examples with labels
    ``y_true``; moving the slider only re-thresholds them, the model is not called again.
    """

    def __init__(self, y_true, scores, threshold=0.5, dpi=80):
        self.y_true = np.asarray(y_true, dtype=float).ravel()
        self.scores = np.asarray(scores, dtype=float).ravel()
        self.slider = widgets.FloatSlider(value=threshold, min=0.01, max=0.99, step=0.01,
                                          description="threshold", readout_format=".2f",
                                          continuous_update=True, layout=widgets.Layout(width="420px"))
        self.readout = widgets.HTML()
        figure = new_figure(figsize=(12.5, 3.6))
        matrix_ax, hist_ax, curve_ax = figure.subplots(1, 3, gridspec_kw={"width_ratios": [0.8, 1, 1]})

        self.matrix_image = matrix_ax.imshow(np.zeros((2, 2)), cmap="Blues", vmin=0, vmax=1)
        self.cell_texts = [[matrix_ax.text(col, row, "", ha="center", va="center", fontsize=10)
                            for col in range(2)] for row in range(2)]
        matrix_ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
        matrix_ax.set_yticks([0, 1], ["true 0", "true 1"])
        matrix_ax.set_title("confusion matrix\n(colour: share of the true class)", fontsize=10)

        bins = np.linspace(0, 1, 41)
        for label_value, color in ((0, "tab:blue"), (1, "tab:orange")):
            counts, _ = np.histogram(self.scores[self.y_true == label_value], bins=bins)
            # stairs: one artist per class instead of one rectangle per bin (faster to re-draw)
            hist_ax.stairs(counts, bins, fill=True, color=color, alpha=0.6, label=f"true class {label_value}")
        hist_ax.set_yscale("log")
        hist_ax.set_xlabel("predicted probability of class 1")
        hist_ax.set_ylabel("examples (log scale)")
        hist_ax.set_title("predictions; right of the line = predicted 1", fontsize=10)
        hist_ax.legend(fontsize=8)
        self.hist_line = hist_ax.axvline(threshold, color="black", linestyle="--")

        thresholds = np.linspace(0.01, 0.99, 99)
        curve_ax.plot(thresholds, [metric_formulas.precision(self.y_true, self.scores, t) for t in thresholds],
                      color="tab:green", label="precision")
        curve_ax.plot(thresholds, [metric_formulas.recall(self.y_true, self.scores, t) for t in thresholds],
                      color="tab:purple", label="recall")
        (self.precision_marker,) = curve_ax.plot([], [], "o", color="tab:green")
        (self.recall_marker,) = curve_ax.plot([], [], "o", color="tab:purple")
        self.curve_line = curve_ax.axvline(threshold, color="black", linestyle="--")
        curve_ax.set_xlim(0, 1)
        curve_ax.set_ylim(-0.02, 1.02)
        curve_ax.set_xlabel("threshold")
        curve_ax.set_ylabel("fraction (0 to 1)")
        curve_ax.set_title("precision and recall vs threshold", fontsize=10)
        curve_ax.grid(alpha=0.3)
        curve_ax.legend(fontsize=8, loc="lower left")
        figure.tight_layout()
        self._set_artists(threshold)
        self.plot = FigureImage(figure, dpi=dpi)  # renders the first image
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        super().__init__([self.slider, self.readout, self.plot.widget])

    def update(self, threshold):
        """Re-threshold the scores and re-render; return the confusion matrix and its metrics."""
        result = self._set_artists(threshold)
        self.plot.refresh()
        return result

    def _set_artists(self, threshold):
        matrix = metric_formulas.confusion_matrix(self.y_true, self.scores, threshold)
        (tn, fp), (fn, tp) = matrix
        result = {"threshold": threshold, "confusion_matrix": matrix,
                  "precision": tp / (tp + fp) if tp + fp else 0.0,
                  "recall": tp / (tp + fn) if tp + fn else 0.0,
                  "accuracy": (tp + tn) / matrix.sum(),
                  "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0}
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        self.matrix_image.set_data(shares)
        names = (("TN", "FP"), ("FN", "TP"))
        for row in range(2):
            for col in range(2):
                text = self.cell_texts[row][col]
                text.set_text(f"{names[row][col]}\n{matrix[row, col]}")
                text.set_color("white" if shares[row, col] > 0.6 else "black")
        self.hist_line.set_xdata([threshold, threshold])
        self.curve_line.set_xdata([threshold, threshold])
        self.precision_marker.set_data([threshold], [result["precision"]])
        self.recall_marker.set_data([threshold], [result["recall"]])
        self.readout.value = (f"threshold {threshold:.2f} · precision {result['precision']:.3f} · recall "
                              f"{result['recall']:.3f} · F1 {result['f1']:.3f} · accuracy {result['accuracy']:.3f}")
        return result
