"""Small data sets generated in code, so that no lesson downloads anything.

Every generator takes a ``seed`` and returns the same arrays for the same arguments.
Features are float32 (what Keras computes in), labels are float32 0/1 for binary tasks.
"""

import numpy as np


def make_moons(n_samples=400, noise=0.2, seed=0):
    """Two interleaving half circles in 2-D: a binary task no straight line separates.

    Returns ``X`` of shape (n_samples, 2) and ``y`` of shape (n_samples,) with values 0 or 1;
    half of the points (rounded down) belong to class 0.
    """
    rng = np.random.default_rng(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    angle_outer = rng.uniform(0.0, np.pi, n_outer)
    angle_inner = rng.uniform(0.0, np.pi, n_inner)
    outer = np.column_stack([np.cos(angle_outer), np.sin(angle_outer)])
    inner = np.column_stack([1.0 - np.cos(angle_inner), 0.5 - np.sin(angle_inner)])
    X = np.vstack([outer, inner]) + rng.normal(0.0, noise, size=(n_samples, 2))
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    order = rng.permutation(n_samples)
    return X[order].astype("float32"), y[order].astype("float32")


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """Shuffle and split into (X_train, y_train, X_test, y_test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]
