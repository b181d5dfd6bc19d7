"""Lesson 3's losses: each written once in NumPy, the table of which loss for which task, and the
training runs the lesson compares.

The NumPy functions follow Keras 3's own formulas, details included, so that the tests can compare
them with Keras number for number:

* probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` with ``EPSILON = 1e-7``
  (``keras.backend.epsilon()``) before the logarithm; the clipping happens in the input's dtype,
  so float32 inputs reproduce Keras's float32 results even at the clip boundary;
* like the functions in ``keras.losses``, they return **one value per example** (the mean or
  sum over the last axis); the loss that ``fit`` minimises is the mean of these over the batch.
"""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

EPSILON = 1e-7
HUBER_DELTA = 1.0


# --- the losses in NumPy --------------------------------------------------------------------

def sigmoid(z):
    """1 / (1 + e^(-z)), computed without overflow for large |z|."""
    z = np.asarray(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype if z.dtype.kind == "f" else float)


def binary_crossentropy(y_true, y_pred, epsilon=EPSILON):
    """-[y log p + (1 - y) log(1 - p)], p clipped to [ε, 1 - ε], averaged over the last axis."""
    p = np.clip(np.asarray(y_pred), epsilon, 1 - epsilon)
    y = np.asarray(y_true, dtype=p.dtype)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)


def binary_crossentropy_from_logits(y_true, logits):
    """The same loss from the raw score z (p = sigmoid(z)), without ever forming p:

    -[y log σ(z) + (1 - y) log(1 - σ(z))] = max(z, 0) - z·y + log(1 + e^(-|z|)).
    No clipping is needed and nothing saturates, however large |z| is.
    """
    z = np.asarray(logits)
    y = np.asarray(y_true, dtype=z.dtype)
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)


def categorical_crossentropy(y_true, y_pred, epsilon=EPSILON):
    """-Σ_k y_k log p_k over the classes (last axis); y one-hot, p rescaled to sum 1, then clipped."""
    p = np.asarray(y_pred)
    p = np.clip(p / p.sum(axis=-1, keepdims=True), epsilon, 1 - epsilon)
    return -np.sum(np.asarray(y_true, dtype=p.dtype) * np.log(p), axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, epsilon=EPSILON):
    """-log p_y for an integer label y: the categorical loss without building one-hot rows.

    Keras clips p, takes its log and applies a softmax cross-entropy to it, which rescales the
    clipped probabilities to sum 1 — reproduced here.
    """
    log_p = np.log(np.clip(np.asarray(y_pred), epsilon, 1 - epsilon))
    labels = np.asarray(y_true).astype(int).reshape(log_p.shape[:-1])
    log_normaliser = np.log(np.sum(np.exp(log_p), axis=-1))
    return log_normaliser - np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def mean_squared_error(y_true, y_pred):
    """mean of (y - ŷ)² over the last axis."""
    return np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2, axis=-1)


def mean_absolute_error(y_true, y_pred):
    """mean of |y - ŷ| over the last axis."""
    return np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred)), axis=-1)


def huber(y_true, y_pred, delta=HUBER_DELTA):
    """½e² where |e| ≤ δ, δ(|e| - ½δ) beyond: quadratic near 0, linear for large errors."""
    error = np.abs(np.asarray(y_pred) - np.asarray(y_true))
    return np.mean(np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta)), axis=-1)


# The Keras name of each loss -> its NumPy twin above.
NUMPY_LOSSES = {
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "huber": huber,
}


# --- gradients with respect to the logit, for one example ----------------------------------

def bce_gradient_wrt_logit(z, y):
    """d BCE(y, σ(z)) / dz = σ(z) - y: large whenever the prediction is wrong."""
    return sigmoid(np.asarray(z, dtype=float)) - y


def mse_gradient_wrt_logit(z, y):
    """d (σ(z) - y)² / dz = 2 (σ(z) - y) σ(z) (1 - σ(z)): fades when σ saturates, right or wrong."""
    p = sigmoid(np.asarray(z, dtype=float))
    return 2 * (p - y) * p * (1 - p)


def steps_to_escape(loss, z0=-8.0, y=1.0, learning_rate=1.0, max_steps=100_000):
    """Plain gradient descent on one logit z, starting confidently wrong (σ(z0) ≈ 0 while y = 1).

    Returns how many steps it takes until σ(z) > 0.5, i.e. until the prediction is right, or
    ``None`` if it takes more than ``max_steps``. ``loss`` is ``'binary_crossentropy'`` or
    ``'mean_squared_error'``.
    """
    gradient = {"binary_crossentropy": bce_gradient_wrt_logit, "mean_squared_error": mse_gradient_wrt_logit}[loss]
    z = float(z0)
    for step in range(1, max_steps + 1):
        z -= learning_rate * float(gradient(z, y))
        if z > 0:
            return step
    return None


# --- the table: which output layer and loss for which task ----------------------------------

@dataclass(frozen=True)
class LossRow:
    """One row of lesson 3's table, with what a test needs to check it against Keras."""

    task: str
    labels: str                 # what one example's label looks like
    units: str                  # output units, as the table writes them
    activation: str             # the output layer's activation ('linear' = none)
    loss: str                   # what to pass to compile, as the table writes it
    loss_name: str              # the function keras.losses.get(loss_name) returns
    why: str
    dataset: str                # the generated data set a test trains this row on
    output_layer: str           # the output layer as code (K = number of classes or tags)
    metrics: str                # what to pass as compile(metrics=...) for this task, as code
    accuracy_becomes: str       # the metric class compile makes of metrics=['accuracy'] for this row
    accuracy_fits: bool         # whether that is the accuracy this task means
    accuracy_note: str          # what that metric counts here
    loss_options: dict = field(default_factory=dict)  # constructor arguments when `loss` is an object

    def make_loss(self):
        """What to pass as ``compile(loss=...)``: the string, or the configured loss object."""
        import keras

        if not self.loss_options:
            return self.loss_name
        return getattr(keras.losses, self.loss.split("(")[0])(**self.loss_options)

    def build_model(self, n_inputs, n_outputs, hidden_units=8):
        """Input -> Dense(hidden) + ReLU -> Dense(n_outputs) + this row's activation."""
        from tensorflow.keras.layers import Activation, Dense, Input
        from tensorflow.keras.models import Sequential

        return Sequential([Input(shape=(n_inputs,)), Dense(hidden_units), Activation("relu"),
                           Dense(n_outputs), Activation(self.activation)])


LOSS_TABLE = [
    LossRow("binary classification", "0 or 1", "1", "sigmoid", "'binary_crossentropy'",
            "binary_crossentropy",
            "the sigmoid turns the output into a probability in (0, 1); the loss is −log of the "
            "probability given to the true class, huge for a confident mistake",
            "moons", "Dense(1, activation='sigmoid')", "['accuracy']", "BinaryAccuracy", True,
            "the share of examples on the right side of p = 0.5"),
    LossRow("binary classification, raw scores (logits)", "0 or 1", "1", "linear",
            "BinaryCrossentropy(from_logits=True)", "binary_crossentropy",
            "the same loss computed from the score z before the sigmoid: exact and never saturates; "
            "apply a sigmoid to the predictions to read probabilities",
            "moons", "Dense(1)", "[BinaryAccuracy(threshold=0.0)]", "BinaryAccuracy", False,
            "threshold 0.5 on the logit z: class 1 only when p > 0.62, not p > 0.5",
            {"from_logits": True}),
    LossRow("multi-class, one-hot labels", "[0, 1, 0]", "K (one per class)", "softmax",
            "'categorical_crossentropy'", "categorical_crossentropy",
            "softmax gives K probabilities that sum to 1; the loss is −log of the true class's probability",
            "blobs_one_hot", "Dense(K, activation='softmax')", "['accuracy']", "CategoricalAccuracy", True,
            "the share of examples whose most probable class is the true one"),
    LossRow("multi-class, integer labels", "1 (the class index)", "K (one per class)", "softmax",
            "'sparse_categorical_crossentropy'", "sparse_categorical_crossentropy",
            "the same loss read from the class index: no one-hot conversion needed",
            "blobs", "Dense(K, activation='softmax')", "['accuracy']", "SparseCategoricalAccuracy", True,
            "the share of examples whose most probable class is the true one"),
    LossRow("multi-label (several tags can be true)", "[1, 0, 1]", "K (one per tag)", "sigmoid",
            "'binary_crossentropy'", "binary_crossentropy",
            "each tag is its own yes/no question with its own probability; a softmax would make the "
            "tags compete",
            "multilabel", "Dense(K, activation='sigmoid')", "[BinaryAccuracy()]", "CategoricalAccuracy", False,
            "argmax: right only if the most probable tag is the first true tag; other tags ignored"),
    LossRow("regression", "a real number", "1", "linear", "'mean_squared_error'", "mean_squared_error",
            "the output must be free to take any value; squaring punishes large errors most "
            "(the best constant prediction is the mean)",
            "regression", "Dense(1)", "['mae']", "BinaryAccuracy", False,
            "real-valued targets compared with 0 or 1 (prediction > 0.5): meaningless"),
    LossRow("regression with outliers", "a real number", "1", "linear", "'mean_absolute_error'",
            "mean_absolute_error",
            "every error counts in proportion to its size, so a few huge errors do not dominate "
            "(the best constant prediction is the median)",
            "regression_outliers", "Dense(1)", "['mae']", "BinaryAccuracy", False,
            "real-valued targets compared with 0 or 1 (prediction > 0.5): meaningless"),
    LossRow("regression with outliers, smooth", "a real number", "1", "linear", "'huber'", "huber",
            "quadratic for errors up to delta = 1.0 (smooth near the minimum, like MSE), linear beyond "
            "(robust, like MAE)",
            "regression_outliers", "Dense(1)", "['mae']", "BinaryAccuracy", False,
            "real-valued targets compared with 0 or 1 (prediction > 0.5): meaningless"),
]

def loss_table_markdown():
    """The rows of ``LOSS_TABLE`` as the markdown table lesson 3 shows."""
    lines = ["| task | labels look like | output units | output activation | loss in `compile` | why |",
             "|---|---|---|---|---|---|"]
    for row in LOSS_TABLE:
        activation = "none (linear)" if row.activation == "linear" else row.activation
        lines.append(f"| {row.task} | `{row.labels}` | {row.units} | {activation} | `{row.loss}` | {row.why} |")
    return "\n".join(lines)


def accuracy_table_markdown():
    """What ``metrics=['accuracy']`` becomes for each row of ``LOSS_TABLE``, and what to use instead."""
    lines = ["| task | `'accuracy'` becomes | what it counts here | `metrics=` to use |", "|---|---|---|---|"]
    for row in LOSS_TABLE:
        verdict = "" if row.accuracy_fits else " ✗"
        lines.append(f"| {row.task} | `{row.accuracy_becomes}`{verdict} | {row.accuracy_note} | `{row.metrics}` |")
    return "\n".join(lines)


def build_output_layer(row, n_outputs):
    """The row's ``output_layer`` code as a Keras layer, with ``K = n_outputs``."""
    from tensorflow.keras.layers import Dense

    return eval(row.output_layer, {"Dense": Dense, "K": n_outputs})  # code from LOSS_TABLE, not user input


def make_metrics(row):
    """The row's ``metrics`` code as the list to pass to ``compile``."""
    import keras

    return eval(row.metrics, vars(keras.metrics))  # code from LOSS_TABLE, not user input


def task_data(name, n_samples=240, seed=0):
    """The generated data set of a table row: ``(X, y, n_outputs)``."""
    from coursekit import datasets_extra as extra
    from coursekit.data import make_moons

    if name == "moons":
        X, y = make_moons(n_samples, noise=0.15, seed=seed)
        return X, y, 1
    if name in ("blobs", "blobs_one_hot"):
        X, y = extra.make_blobs(n_samples, n_classes=3, seed=seed)
        return X, (extra.one_hot(y, 3) if name == "blobs_one_hot" else y), 3
    if name == "multilabel":
        X, Y = extra.make_multilabel(n_samples, seed=seed)
        return X, Y, Y.shape[1]
    if name in ("regression", "regression_outliers"):
        fraction = 0.1 if name == "regression_outliers" else 0.0
        X, y, _ = extra.make_regression_with_outliers(n_samples, outlier_fraction=fraction, seed=seed)
        return X, y, 1
    raise ValueError(f"unknown data set {name!r}")


# --- the training runs lesson 3 compares ------------------------------------------------------

@contextmanager
def quiet_retracing_warnings():
    """Training several small models in a row makes TensorFlow warn (on stderr) that its
    functions are being re-traced; that is expected here, and not something a student can act on."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# Output activation and loss of the runs in "what a wrong loss does to training". The accuracy
# threshold is 0.5 for outputs read as probabilities and 0 for logits (σ(0) = 0.5).
OUTPUT_LOSS_PAIRS = {
    "sigmoid + binary_crossentropy": ("sigmoid", "binary_crossentropy", 0.5),
    "sigmoid + mean_squared_error": ("sigmoid", "mean_squared_error", 0.5),
    "linear + binary_crossentropy": ("linear", "binary_crossentropy", 0.5),
    "linear + BinaryCrossentropy(from_logits=True)": ("linear", "from_logits", 0.0),
}


def train_output_loss_pairs(X, y, epochs=60, learning_rate=0.01, seed=42, grid_resolution=60):
    """Train the seed chapter's network (Dense(3) + ReLU hidden layer) once per entry of
    ``OUTPUT_LOSS_PAIRS``, from the same initial weights.

    Returns ``{label: {"accuracy": [...per epoch], "loss": [...], "grid": (xx, yy, P(class 1)),
    "output_range": (min, max), "clipped_share": float}}``. The grid holds P(class 1) as the loss
    reads it: logits passed through a sigmoid, raw linear outputs clipped to [0, 1].
    ``clipped_share`` is the share of training examples whose raw output the loss clips after
    training — examples that no longer contribute any gradient.
    """
    import coursekit
    from coursekit.datasets_extra import as_batches
    from tensorflow.keras.layers import Activation, Dense, Input
    from tensorflow.keras.losses import BinaryCrossentropy
    from tensorflow.keras.metrics import BinaryAccuracy
    from tensorflow.keras.models import Sequential
    from tensorflow.keras.optimizers import Adam

    margin = 0.5
    (x_min, y_min), (x_max, y_max) = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, grid_resolution), np.linspace(y_min, y_max, grid_resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype("float32")
    runs = {}
    with quiet_retracing_warnings():
        for label, (activation, loss, threshold) in OUTPUT_LOSS_PAIRS.items():
            coursekit.seed_everything(seed)
            model = Sequential([Input(shape=(2,)), Dense(3), Activation("relu"), Dense(1), Activation(activation)])
            model.compile(optimizer=Adam(learning_rate),
                          loss=BinaryCrossentropy(from_logits=True) if loss == "from_logits" else loss,
                          metrics=[BinaryAccuracy(threshold=threshold, name="accuracy")])
            history = model.fit(as_batches(X, y, seed=seed), epochs=epochs, shuffle=False, verbose=0).history
            outputs = np.asarray(model(grid, training=False)).reshape(xx.shape)
            train_outputs = np.asarray(model(X, training=False))
            probabilities = sigmoid(outputs) if loss == "from_logits" else np.clip(outputs, 0.0, 1.0)
            runs[label] = {"accuracy": history["accuracy"], "loss": history["loss"],
                           "grid": (xx, yy, probabilities),
                           "output_range": (float(train_outputs.min()), float(train_outputs.max())),
                           # share of training examples the clipping silences (no gradient)
                           "clipped_share": 0.0 if activation == "sigmoid" or loss == "from_logits" else
                           float(np.mean((train_outputs <= EPSILON) | (train_outputs >= 1 - EPSILON)))}
    return runs


def fit_line(X, y, loss, epochs=300, learning_rate=0.1, seed=42):
    """Fit y ≈ w·x + b with one Dense(1) unit and the given loss (full batch, Adam); return (w, b).

    All ``epochs`` full-batch steps run as one ``fit`` epoch over a repeated data set: Keras's
    per-epoch set-up would otherwise cost more than the steps.
    """
    import coursekit
    import tensorflow as tf
    from tensorflow.keras.layers import Dense, Input
    from tensorflow.keras.models import Sequential
    from tensorflow.keras.optimizers import Adam

    coursekit.seed_everything(seed)
    model = Sequential([Input(shape=(1,)), Dense(1)])
    model.compile(optimizer=Adam(learning_rate), loss=loss)
    with quiet_retracing_warnings():
        model.fit(tf.data.Dataset.from_tensors((X, y)).repeat(epochs), epochs=1, shuffle=False, verbose=0)
    weight, bias = model.get_weights()
    return float(weight[0, 0]), float(bias[0])
