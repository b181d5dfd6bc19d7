"""The interactive widgets of lessons 3 (losses) and 4 (metrics).

Each is a ``coursekit.widgets.LiveFigure`` — control, readout line, image — like lesson 2's: the
figure is drawn once, and an update only moves its changing artists and sends one PNG.
``update(...)`` is a plain method that tests and benchmarks call headless; it returns the numbers
it plotted. Nothing here trains a model: the lessons train once and hand the results in, so every
update is cheap.
"""

import ipywidgets as widgets
import numpy as np

from coursekit import losses as loss_formulas
from coursekit import metrics as metric_formulas
from coursekit.widgets import FigureImage, LiveFigure, new_figure, slider_layout

LOSS_COLORS = {"binary_crossentropy": "tab:red", "mean_squared_error": "tab:blue"}
LOSS_LABELS = {"binary_crossentropy": "binary cross-entropy", "mean_squared_error": "squared error"}
LOSS_AXIS_TOP = 5.0


def _probability_losses(label, p):
    """BCE and squared error of one prediction p for a true label (NumPy formulas of lesson 3)."""
    p = np.asarray(p, dtype=float)
    return {"binary_crossentropy": loss_formulas.binary_crossentropy(np.full_like(p, label)[..., None], p[..., None]),
            "mean_squared_error": loss_formulas.mean_squared_error(np.full_like(p, label)[..., None], p[..., None])}


class ProbabilityLossWidget(LiveFigure):
    """Predicted probability (slider) -> loss, for BCE and squared error, for both true labels."""

    def __init__(self, probability=0.2):
        slider = widgets.FloatSlider(value=probability, min=0.01, max=0.99, step=0.01, description="predicted p",
                                     readout_format=".2f", continuous_update=True, **slider_layout())
        self.figure = figure = new_figure(figsize=(9.5, 3.6))
        axes = figure.subplots(1, 2, sharey=True)
        figure.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.8, wspace=0.08)
        grid = np.linspace(0.001, 0.999, 400)
        self.markers, self.axes = {}, dict(zip((1, 0), axes))
        for label, ax in self.axes.items():
            for name, values in _probability_losses(label, grid).items():
                ax.plot(grid, values, color=LOSS_COLORS[name], label=LOSS_LABELS[name])
                (self.markers[label, name],) = ax.plot([], [], "o", color=LOSS_COLORS[name], markersize=8)
            ax.set_title(f"true label y = {label}")
            ax.set_xlabel("predicted probability p of class 1")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, LOSS_AXIS_TOP)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper center")
        axes[0].set_ylabel("loss of one example\n(BCE in nats; squared error: no unit)")
        figure.suptitle("The loss of one prediction: binary cross-entropy vs squared error")
        self.slider = slider
        self._connect({"probability": slider}, FigureImage(figure, lambda: self.markers.values()))
        self.update()

    def compute(self, request):
        p = request["probability"]
        return {(label, name): float(_probability_losses(label, p)[name])
                for label in (1, 0) for name in LOSS_COLORS}

    def show(self, request, values):
        p = request["probability"]
        for (label, name), marker in self.markers.items():
            marker.set_data([p], [min(values[label, name], LOSS_AXIS_TOP)])
        self.readout.value = (
            f"p = {p:.2f} &nbsp;·&nbsp; if y = 1: BCE {values[1, 'binary_crossentropy']:.3f}, "
            f"squared error {values[1, 'mean_squared_error']:.3f} &nbsp;·&nbsp; if y = 0: BCE "
            f"{values[0, 'binary_crossentropy']:.3f}, squared error {values[0, 'mean_squared_error']:.3f}")
        self.view.refresh(
            f"Binary cross-entropy and squared error against the predicted probability p, for a true label 1 "
            f"(left) and 0 (right); the dots mark p = {p:.2f}: for y = 1, BCE "
            f"{values[1, 'binary_crossentropy']:.3f} and squared error {values[1, 'mean_squared_error']:.3f}; for "
            f"y = 0, BCE {values[0, 'binary_crossentropy']:.3f} and squared error "
            f"{values[0, 'mean_squared_error']:.3f}.")


class OutputLossWidget(LiveFigure):
    """Pick an output-layer/loss pair -> its accuracy per epoch and its probability map.

    ``runs`` is what ``coursekit.losses.train_output_loss_pairs`` returns; ``X, y`` are the
    training points drawn over the map.
    """

    def __init__(self, runs, X, y, selected=None):
        self.runs = runs
        labels = list(runs)
        choice = widgets.RadioButtons(options=labels, value=selected or labels[0], description="output + loss",
                                      style={"description_width": "100px"},
                                      layout=widgets.Layout(width="max-content"))
        self.figure = figure = new_figure(figsize=(10.5, 4.0))
        curves, field = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        figure.subplots_adjust(left=0.08, right=0.97, bottom=0.14, top=0.9, wspace=0.25)
        self.lines = {}
        for label, run in runs.items():
            epochs = np.arange(1, len(run["accuracy"]) + 1)
            (self.lines[label],) = curves.plot(epochs, run["accuracy"], color="0.75", linewidth=1)
        curves.set_title("Training accuracy per epoch (chosen run in red)")
        curves.set_xlabel("epoch (one pass over the training data)")
        curves.set_ylabel("accuracy (fraction correct)")
        curves.set_ylim(0.3, 1.0)
        curves.grid(alpha=0.3)
        xx, yy, probabilities = runs[labels[0]]["grid"]
        self.image = field.imshow(probabilities, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, aspect="auto",
                                  extent=(xx.min(), xx.max(), yy.min(), yy.max()), alpha=0.7)
        self.points = []
        for label_value, color in ((0, "tab:blue"), (1, "tab:orange")):
            points = X[y == label_value]
            self.points.append(field.scatter(points[:, 0], points[:, 1], s=8, color=color, edgecolor="white",
                                             linewidth=0.3))
        figure.colorbar(self.image, ax=field, label="P(class 1) the loss reads")
        field.set_title("After training: the probability map")
        field.set_xlabel("feature x₁ (no unit)")
        field.set_ylabel("feature x₂ (no unit)")
        self.field = field
        self.choice = choice
        self._connect({"run": choice}, FigureImage(figure, self._dynamic_artists))
        self.update()

    def _dynamic_artists(self):
        chosen = self.lines[self.shown_label]
        return [*(line for line in self.lines.values() if line is not chosen), chosen, self.image, *self.points]

    def compute(self, request):
        return self.runs[request["run"]]

    def show(self, request, run):
        label = request["run"]
        self.shown_label = label
        for name, line in self.lines.items():
            chosen = name == label
            line.set_color("tab:red" if chosen else "0.75")
            line.set_linewidth(2.5 if chosen else 1)
        self.image.set_data(run["grid"][2])
        low, high = run["output_range"]
        final = float(run["accuracy"][-1])
        self.readout.value = (f"<b>{label}</b>: training accuracy after the last epoch {final:.3f} · raw outputs "
                              f"on the training points from {low:.2f} to {high:.2f}")
        self.view.refresh(f"Training accuracy per epoch of four output-layer and loss pairs, {label} highlighted "
                          f"(final accuracy {final:.3f}), and the probability its loss reads at each point of the "
                          f"plane after training, with the training points.")

    def final_accuracy(self):
        return float(self.runs[self.shown_label]["accuracy"][-1])


class ThresholdWidget(LiveFigure):
    """Decision threshold (slider) -> confusion matrix, precision and recall of fixed predictions.

    ``scores`` are a trained model's predicted probabilities for the examples with labels
    ``y_true``; moving the slider only re-thresholds them, the model is not called again.
    """

    def __init__(self, y_true, scores, threshold=0.5):
        self.y_true = np.asarray(y_true, dtype=float).ravel()
        self.scores = np.asarray(scores, dtype=float).ravel()
        slider = widgets.FloatSlider(value=threshold, min=0.01, max=0.99, step=0.01, description="threshold",
                                     readout_format=".2f", continuous_update=True, **slider_layout())
        self.figure = figure = new_figure(figsize=(11.4, 3.9))
        matrix_ax, hist_ax, curve_ax = figure.subplots(1, 3, gridspec_kw={"width_ratios": [0.8, 1, 1]})
        figure.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.84, wspace=0.38)

        self.matrix_image = matrix_ax.imshow(np.zeros((2, 2)), cmap="Blues", vmin=0, vmax=1)
        self.cell_texts = [[matrix_ax.text(col, row, "", ha="center", va="center")
                            for col in range(2)] for row in range(2)]
        matrix_ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
        matrix_ax.set_yticks([0, 1], ["true 0", "true 1"])
        matrix_ax.set_title("Confusion matrix\n(colour: share of the true class)", fontsize=11)

        bins = np.linspace(0, 1, 41)
        for label_value, color in ((0, "tab:blue"), (1, "tab:orange")):
            counts, _ = np.histogram(self.scores[self.y_true == label_value], bins=bins)
            # stairs: one artist per class instead of one rectangle per bin (faster to draw)
            hist_ax.stairs(counts, bins, fill=True, color=color, alpha=0.6, label=f"true class {label_value}")
        hist_ax.set_yscale("log")
        hist_ax.set_xlabel("predicted probability of class 1")
        hist_ax.set_ylabel("examples (log scale)")
        hist_ax.set_title("Predictions; right of the line:\npredicted 1", fontsize=11)
        hist_ax.legend()
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
        curve_ax.set_title("Precision and recall\nagainst the threshold", fontsize=11)
        curve_ax.grid(alpha=0.3)
        curve_ax.legend(loc="lower left")
        self.slider = slider
        self._connect({"threshold": slider}, FigureImage(figure, self._dynamic_artists))
        self.update()

    def _dynamic_artists(self):
        return [self.matrix_image, *(text for row in self.cell_texts for text in row), self.hist_line,
                self.curve_line, self.precision_marker, self.recall_marker]

    def compute(self, request):
        threshold = request["threshold"]
        matrix = metric_formulas.confusion_matrix(self.y_true, self.scores, threshold)
        (tn, fp), (fn, tp) = matrix
        return {"threshold": threshold, "confusion_matrix": matrix,
                "precision": metric_formulas.precision(self.y_true, self.scores, threshold),
                "recall": metric_formulas.recall(self.y_true, self.scores, threshold),
                "accuracy": metric_formulas.binary_accuracy(self.y_true, self.scores, threshold),
                "f1": metric_formulas.f1_score(self.y_true, self.scores, threshold)}

    def show(self, request, result):
        threshold, matrix = result["threshold"], result["confusion_matrix"]
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
        (tn, fp), (fn, tp) = matrix
        scores = (f"precision {result['precision']:.3f} · recall {result['recall']:.3f} · F1 {result['f1']:.3f} · "
                  f"accuracy {result['accuracy']:.3f}")
        self.readout.value = f"threshold {threshold:.2f} · {scores}"
        self.view.refresh(f"At threshold {threshold:.2f}: confusion matrix TN {tn}, FP {fp}, FN {fn}, TP {tp}; "
                          f"{scores}. Histogram of the predicted probabilities of both classes, and precision and "
                          f"recall against the threshold.")
