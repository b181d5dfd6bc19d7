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
    ax.set_xlabel("feature x₁ (arbitrary units)")
    ax.set_ylabel("feature x₂ (arbitrary units)")
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
    ax.set_xlabel("feature x₁ (arbitrary units)")
    ax.set_ylabel("feature x₂ (arbitrary units)")
    ax.legend()
    return fig
