"""Figures for the lessons: every plot has a title, axis labels and units."""

import matplotlib.pyplot as plt
import numpy as np

CLASS_COLORS = ("tab:blue", "tab:orange")


def plot_learning_curves(history, title="Learning curves", axes=None):
    """Loss and every metric in a Keras ``History``, one panel each, against the epoch.

    ``history`` is what ``model.fit`` returns (or its ``.history`` dict). Validation curves
    (``val_*`` keys) are drawn dashed in the panel of their training twin.
    """
    logs = getattr(history, "history", history)
    # The loss first: it is what training minimises; metrics only report.
    names = sorted((name for name in logs if not name.startswith("val_")), key=lambda name: name != "loss")
    if axes is None:
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    for ax, name in zip(axes, names):
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], label=f"training {name}")
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], "--", label=f"validation {name}")
        ax.set_title(f"{name} per epoch")
        ax.set_xlabel("epoch (one pass over the training data)")
        ax.set_ylabel(_axis_label(name))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _axis_label(name):
    if name == "loss":
        return "loss (nats; lower is better)"
    if "accuracy" in name:
        return "accuracy (fraction correct, 0 to 1)"
    return name


def probability_grid(model, X, resolution=120, margin=0.5):
    """The model's predicted P(class 1) on a grid covering ``X``: (xx, yy, probabilities)."""
    x_min, y_min = X.min(axis=0) - margin
    x_max, y_max = X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype("float32")
    # Calling the model directly skips predict()'s per-call set-up, which costs more than
    # the 14,400-point forward pass itself.
    probabilities = np.asarray(model(grid, training=False)).reshape(xx.shape)
    return xx, yy, probabilities


def plot_decision_boundary(model, X, y, title="Decision boundary", ax=None):
    """Predicted probability of class 1 as a colour map, the 0.5 contour, and the data."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
    else:
        fig = ax.figure
    xx, yy, probabilities = probability_grid(model, X)
    shading = ax.contourf(xx, yy, probabilities, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, probabilities, levels=[0.5], colors="black", linewidths=1.5)
    for label, color in enumerate(CLASS_COLORS):
        points = X[y == label]
        ax.scatter(points[:, 0], points[:, 1], s=12, color=color, edgecolor="white",
                   linewidth=0.3, label=f"class {label}")
    fig.colorbar(shading, ax=ax, label="predicted P(class 1)")
    ax.set_title(title)
    ax.set_xlabel("feature x₁ (no unit)")
    ax.set_ylabel("feature x₂ (no unit)")
    ax.legend(loc="upper right")
    return fig


def plot_data(X, y, title="The data set", ax=None):
    """Scatter plot of a 2-D binary data set, coloured by class."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4))
    else:
        fig = ax.figure
    for label, color in enumerate(CLASS_COLORS):
        points = X[y == label]
        ax.scatter(points[:, 0], points[:, 1], s=12, color=color, label=f"class {label}")
    ax.set_title(title)
    ax.set_xlabel("feature x₁ (no unit)")
    ax.set_ylabel("feature x₂ (no unit)")
    ax.legend()
    return fig


def plot_sigmoid(ax=None):
    """σ(z) = 1 / (1 + e^(-z)) for logits from -8 to 8, with its two asymptotes."""
    from coursekit.losses import sigmoid

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
    else:
        fig = ax.figure
    z = np.linspace(-8, 8, 200)
    ax.plot(z, sigmoid(z))
    for level in (0, 1):
        ax.axhline(level, color="grey", linewidth=0.8)
    ax.set_title("The sigmoid squashes any logit into (0, 1)")
    ax.set_xlabel("logit z (raw output of Dense(1), no unit)")
    ax.set_ylabel("σ(z) = predicted P(class 1)")
    ax.grid(alpha=0.3)
    return fig


def plot_line_fits(X, y, is_outlier, fitted, title="A line fitted with three losses; 10 % outliers"):
    """The points (outliers in red) and one fitted line per loss; ``fitted``: {loss: (slope, intercept)}."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.asarray(X)[:, 0]
    ax.scatter(x[~is_outlier], y[~is_outlier], s=10, color="tab:gray", label="data")
    ax.scatter(x[is_outlier], y[is_outlier], s=14, color="tab:red", label="outliers")
    ends = np.array([x.min(), x.max()])
    for (loss, (slope, intercept)), style in zip(fitted.items(), ("-", "--", ":", "-.")):
        ax.plot(ends, slope * ends + intercept, style, linewidth=2, label=f"{loss}: slope {slope:.2f}")
    ax.set_title(title)
    ax.set_xlabel("x (no unit)")
    ax.set_ylabel("y (no unit)")
    ax.legend()
    return fig


def plot_loss_and_accuracy_along_bias(biases, losses, accuracies):
    """Two panels: binary cross-entropy and accuracy against the output unit's bias."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.4))
    ax_loss.plot(biases, losses)
    ax_loss.set_title("Loss: smooth, a slope everywhere")
    ax_loss.set_ylabel("binary cross-entropy (nats)")
    ax_acc.plot(biases, accuracies, drawstyle="steps-mid", color="tab:orange")
    ax_acc.set_title("Accuracy: flat steps, slope 0 or undefined")
    ax_acc.set_ylabel("accuracy (fraction correct)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("bias of the output unit (other weights fixed)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
