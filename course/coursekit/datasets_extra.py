"""More small data sets for lessons 3 and 4, generated in code like ``coursekit.data``.

One generator per task in lesson 3's loss table (multi-class, multi-label, regression with
outliers) and the imbalanced binary set of lesson 4. Every generator takes a ``seed`` and
returns the same float32 arrays for the same arguments; nothing is downloaded.
"""

import numpy as np


def make_blobs(n_samples=300, n_classes=3, spread=0.6, seed=0):
    """Gaussian clouds in 2-D, one per class, centred on a circle of radius 2.

    Returns ``X`` (n_samples, 2) float32 and integer labels ``y`` (n_samples,) in
    ``0 .. n_classes - 1``, the classes as equal in size as ``n_samples`` allows.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    X = centres[y] + rng.normal(0.0, spread, size=(n_samples, 2))
    order = rng.permutation(n_samples)
    return X[order].astype("float32"), y[order].astype("int64")


def one_hot(labels, n_classes):
    """Integer labels (n,) -> one-hot rows (n, n_classes), float32."""
    return np.eye(n_classes, dtype="float32")[np.asarray(labels, dtype="int64")]


def make_multilabel(n_samples=300, seed=0):
    """Points in the square [-2, 2]², each with three yes/no tags that can all be true at once.

    Tag 0: x₁ > 0 ("right"), tag 1: x₂ > 0 ("top"), tag 2: the point is within distance 1.2 of
    the origin ("near the centre"). Returns ``X`` (n, 2) and ``Y`` (n, 3) of 0/1 float32.
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n_samples, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, np.hypot(X[:, 0], X[:, 1]) < 1.2])
    return X.astype("float32"), Y.astype("float32")


def make_regression_with_outliers(n_samples=200, outlier_fraction=0.1, slope=2.0, intercept=1.0,
                                  noise=0.3, outlier_shift=15.0, seed=0):
    """A straight line with Gaussian noise, plus a few points far *above* it.

    ``y = slope * x + intercept + noise`` for x in [-2, 2]; a share ``outlier_fraction`` of the
    points (those with the largest x, so that they tilt the fitted line) get ``outlier_shift``
    added. Returns ``X`` (n, 1), ``y`` (n,) float32 and a boolean mask of the outliers.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n_samples)
    y = slope * x + intercept + rng.normal(0.0, noise, n_samples)
    n_outliers = int(round(n_samples * outlier_fraction))
    is_outlier = np.zeros(n_samples, dtype=bool)
    if n_outliers:
        is_outlier[np.argsort(x)[-n_outliers:]] = True
    y = y + outlier_shift * is_outlier
    return x[:, None].astype("float32"), y.astype("float32"), is_outlier


def make_imbalanced(n_samples=1000, positive_fraction=0.05, separation=1.5, seed=0):
    """A rare positive class: two overlapping Gaussian clouds in 2-D, few points in class 1.

    Class 0 is centred at the origin, class 1 at distance ``separation`` along the diagonal,
    both with unit spread, so the classes overlap and no threshold is perfect. Exactly
    ``round(n_samples * positive_fraction)`` points are positive. Returns ``X`` (n, 2) float32
    and ``y`` (n,) float32 0/1.
    """
    rng = np.random.default_rng(seed)
    n_positive = int(round(n_samples * positive_fraction))
    y = np.zeros(n_samples)
    y[:n_positive] = 1.0
    centre = separation / np.sqrt(2.0) * np.ones(2)
    X = rng.normal(0.0, 1.0, size=(n_samples, 2)) + y[:, None] * centre
    order = rng.permutation(n_samples)
    return X[order].astype("float32"), y[order].astype("float32")


def make_separable(n_samples=200, gap=3.0, seed=0):
    """Two well-separated Gaussian clouds: a straight line classifies every point correctly."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % 2).astype("float32")
    X = rng.normal(0.0, 0.5, size=(n_samples, 2)) + (y[:, None] - 0.5) * gap
    order = rng.permutation(n_samples)
    return X[order].astype("float32"), y[order]


def as_batches(X, y, batch_size=32, seed=0):
    """A ``tf.data`` pipeline over (X, y): cached, reshuffled every epoch, in batches.

    ``fit`` on NumPy arrays rebuilds its input pipeline every epoch, which costs more than the
    epoch itself for data sets this small; a cached ``tf.data.Dataset`` trains about three times
    faster. Pass ``shuffle=False`` to ``fit``: the data set shuffles itself.
    """
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices((X, y)).cache()
            .shuffle(len(X), seed=seed, reshuffle_each_iteration=True).batch(batch_size))
