"""Lesson 4's metrics: each written once in NumPy, the confusion matrix, the table of which metric
for which task, a custom stateful metric, and the helpers of the lesson's demonstrations.

Conventions follow Keras 3, so that the tests can compare number for number:

* a prediction counts as positive when its score is **strictly greater** than the threshold
  (``score > threshold``), the rule of ``BinaryAccuracy``, ``Precision``, ``Recall`` and ``F1Score``;
* a ratio whose denominator is 0 (precision when nothing is predicted positive) is reported as 0;
* ``AUC`` in Keras is approximate: it evaluates the ROC curve at ``num_thresholds=200`` evenly
  spaced thresholds; ``roc_auc`` here is exact (the rank formula). The tests allow 0.01 between them.
"""

from dataclasses import dataclass

import keras  # coursekit/__init__ has already quietened TensorFlow
import numpy as np
from keras import ops

# --- the metrics in NumPy ---------------------------------------------------------------------


def _as_flat(y_true, scores):
    return np.asarray(y_true, dtype=float).ravel(), np.asarray(scores, dtype=float).ravel()


def confusion_matrix(y_true, scores, threshold=0.5):
    """2 × 2 counts: rows = true class (0, 1), columns = predicted class (0, 1).

    ``[[TN, FP], [FN, TP]]`` — the layout of the lesson's widget.
    """
    truth, scores = _as_flat(y_true, scores)
    predicted = scores > threshold
    positive = truth == 1
    return np.array([[np.sum(~positive & ~predicted), np.sum(~positive & predicted)],
                     [np.sum(positive & ~predicted), np.sum(positive & predicted)]])


def _safe_ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else 0.0


def binary_accuracy(y_true, scores, threshold=0.5):
    """(TP + TN) / all: the share of examples on the right side of the threshold."""
    (tn, fp), (fn, tp) = confusion_matrix(y_true, scores, threshold)
    return _safe_ratio(tp + tn, tn + fp + fn + tp)


def precision(y_true, scores, threshold=0.5):
    """TP / (TP + FP): of the examples the model calls positive, the share that are."""
    (_, fp), (_, tp) = confusion_matrix(y_true, scores, threshold)
    return _safe_ratio(tp, tp + fp)


def recall(y_true, scores, threshold=0.5):
    """TP / (TP + FN): of the truly positive examples, the share the model finds."""
    _, (fn, tp) = confusion_matrix(y_true, scores, threshold)
    return _safe_ratio(tp, tp + fn)


def f1_score(y_true, scores, threshold=0.5):
    """2·P·R / (P + R) = 2TP / (2TP + FP + FN): high only if precision *and* recall are."""
    (_, fp), (fn, tp) = confusion_matrix(y_true, scores, threshold)
    return _safe_ratio(2 * tp, 2 * tp + fp + fn)


def categorical_accuracy(y_true_one_hot, probabilities):
    """Share of rows whose largest predicted probability is at the true class (one-hot labels)."""
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.argmax(y_true_one_hot, axis=-1)))


def sparse_categorical_accuracy(y_true, probabilities):
    """The same for integer labels."""
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(y_true).ravel().astype(int)))


def roc_auc(y_true, scores):
    """Exact area under the ROC curve: the probability that a random positive example scores
    higher than a random negative one (ties count one half)."""
    truth, scores = _as_flat(y_true, scores)
    positives, negatives = scores[truth == 1], scores[truth == 0]
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("AUC needs at least one positive and one negative example")
    # Average ranks handle ties: the Mann–Whitney U statistic divided by n₊·n₋.
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    u = ranks[truth == 1].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def mean_absolute_error(y_true, y_pred):
    """mean |y - ŷ|, in the units of y."""
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def root_mean_squared_error(y_true, y_pred):
    """√(mean (y - ŷ)²), in the units of y; weighs large errors more than MAE does."""
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


# --- the table: which metric for which task --------------------------------------------------

@dataclass(frozen=True)
class MetricRow:
    """One row of lesson 4's table, with what a test needs to check it against Keras."""

    metric: str
    in_compile: str        # what to write in compile(metrics=[...])
    keras_class: str       # the class keras.metrics.get(string) returns (or 'accuracy' resolves to)
    task: str
    formula: str
    use_when: str
    numpy_name: str        # the NumPy twin in this module


METRIC_TABLE = [
    MetricRow("accuracy", "'accuracy'", "BinaryAccuracy / CategoricalAccuracy / SparseCategoricalAccuracy",
              "classification", "correct / all",
              "classes are roughly balanced and every mistake costs the same; compile picks the variant "
              "from the shapes of the labels and the output, never from the loss", "binary_accuracy"),
    MetricRow("binary accuracy", "BinaryAccuracy(threshold=0.5)", "BinaryAccuracy", "binary, multi-label",
              "(TP + TN) / all, positive when p > threshold",
              "a single sigmoid output; set threshold=0.0 if the model outputs logits", "binary_accuracy"),
    MetricRow("precision", "Precision()", "Precision", "binary", "TP / (TP + FP)",
              "false alarms are expensive (spam filter): of what the model flags, how much is right",
              "precision"),
    MetricRow("recall", "Recall()", "Recall", "binary", "TP / (TP + FN)",
              "misses are expensive (disease screening): of the real positives, how many are found",
              "recall"),
    MetricRow("F1", "F1Score(threshold=0.5)", "F1Score", "binary, multi-label", "2·P·R / (P + R)",
              "one number that is high only if precision and recall both are (imbalanced classes); "
              "without threshold= it takes the argmax, wrong for a single sigmoid output", "f1_score"),
    MetricRow("AUC (ROC)", "AUC()", "AUC", "binary", "area under recall vs false-positive rate, over all thresholds",
              "how well the scores rank positives above negatives, before choosing a threshold; "
              "approximate, 200 thresholds", "roc_auc"),
    MetricRow("mean absolute error", "'mae'", "MeanAbsoluteError", "regression", "mean |y − ŷ|",
              "the typical error in the target's own units; not dominated by outliers",
              "mean_absolute_error"),
    MetricRow("root mean squared error", "RootMeanSquaredError()", "RootMeanSquaredError", "regression",
              "√ mean (y − ŷ)²", "large errors matter more than small ones; same units as the target",
              "root_mean_squared_error"),
]


def metric_table_markdown():
    """The rows of ``METRIC_TABLE`` as the markdown table lesson 4 shows."""
    lines = ["| metric | in `compile` | task | formula | use it when |", "|---|---|---|---|---|"]
    for row in METRIC_TABLE:
        lines.append(f"| {row.metric} | `{row.in_compile}` | {row.task} | {row.formula} | {row.use_when} |")
    return "\n".join(lines)


# --- a custom stateful metric ----------------------------------------------------------------

class BinaryF1(keras.metrics.Metric):
    """F1 of a single sigmoid output, over *all* examples seen since the last reset.

    A metric keeps running counts (its state) and computes the result from them, so the value
    after an epoch is F1 of the whole epoch — not an average of per-batch F1s, which would be
    a different, wrong number.
    """

    def __init__(self, threshold=0.5, name="f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.true_positives = self.add_variable(shape=(), initializer="zeros", name="tp")
        self.false_positives = self.add_variable(shape=(), initializer="zeros", name="fp")
        self.false_negatives = self.add_variable(shape=(), initializer="zeros", name="fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        predicted = ops.reshape(ops.cast(ops.greater(y_pred, self.threshold), "float32"), (-1,))
        self.true_positives.assign_add(ops.sum(truth * predicted))
        self.false_positives.assign_add(ops.sum((1 - truth) * predicted))
        self.false_negatives.assign_add(ops.sum(truth * (1 - predicted)))

    def result(self):
        denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
        return ops.divide_no_nan(2 * self.true_positives, denominator)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


# --- demonstrations ---------------------------------------------------------------------------

def loss_and_accuracy_along_bias(model, X, y, biases):
    """Move the output unit's bias over ``biases`` (all other weights fixed) and record the
    binary cross-entropy and the accuracy at each value. The model's weights are restored.

    Accuracy changes in jumps (only when a point crosses the 0.5 line) and is flat in between;
    the loss changes smoothly everywhere — which is why only the loss can give gradients.
    """
    from coursekit.losses import binary_crossentropy

    output_dense = [layer for layer in model.layers if layer.get_weights()][-1]
    kernel, bias = output_dense.get_weights()
    losses, accuracies = [], []
    try:
        for value in biases:
            output_dense.set_weights([kernel, np.full_like(bias, value)])
            p = np.asarray(model(X, training=False)).ravel()
            losses.append(float(np.mean(binary_crossentropy(y[:, None], p[:, None]))))
            accuracies.append(binary_accuracy(y, p))
    finally:
        output_dense.set_weights([kernel, bias])
    return np.array(losses), np.array(accuracies)
