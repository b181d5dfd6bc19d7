"""Lesson 4's claims (metrics), checked against what Keras really does and against the executed lesson.

Tolerances: counts-based metrics (accuracy, precision, recall, F1) agree with Keras to 1e-6 (Keras's
F1Score adds epsilon = 1e-7 to its denominators: 1e-5); MAE and RMSE to float32 rounding (rel 1e-5);
Keras's AUC is approximate (200 thresholds, interpolated), so it is allowed 0.01 from the exact AUC.
"""

import re

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.keras.layers import Activation, Dense, Input
from tensorflow.keras.metrics import (AUC, BinaryAccuracy, CategoricalAccuracy, F1Score, MeanAbsoluteError,
                                      Precision, Recall, RootMeanSquaredError, SparseCategoricalAccuracy)
from tensorflow.keras.models import Sequential

from coursekit import metrics as M
from coursekit.datasets_extra import make_imbalanced
from coursekit.loss_metric_widgets import ThresholdWidget
from support.notebooks import ROOT

LESSON = ROOT / "course" / "04-metrics.ipynb"
SEEDS = range(6)
AUC_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def lesson(executed_notebooks):
    return executed_notebooks(LESSON)


def keras_value(metric, y_true, y_pred):
    metric.update_state(np.reshape(y_true, (-1, 1)), np.reshape(y_pred, (-1, 1)))
    return float(np.squeeze(metric.result()))


def random_binary(seed, n=200):
    """Labels and scores that are related but overlap, like a real classifier's."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < rng.uniform(0.1, 0.6)).astype("float32")
    scores = np.clip(0.35 * y + rng.uniform(0, 0.7, size=n), 0, 1).astype("float32")
    return y, scores


# --- the NumPy formulas against Keras ----------------------------------------------------------

@pytest.mark.claim("l4.by-hand", "l4.threshold-tradeoff")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.72])
def test_threshold_metrics_match_keras(seed, threshold):
    y, scores = random_binary(seed)
    assert M.binary_accuracy(y, scores, threshold) == pytest.approx(
        keras_value(BinaryAccuracy(threshold=threshold), y, scores), abs=1e-6)
    assert M.precision(y, scores, threshold) == pytest.approx(
        keras_value(Precision(thresholds=threshold), y, scores), abs=1e-6)
    assert M.recall(y, scores, threshold) == pytest.approx(
        keras_value(Recall(thresholds=threshold), y, scores), abs=1e-6)
    assert M.f1_score(y, scores, threshold) == pytest.approx(
        keras_value(F1Score(threshold=threshold), y, scores), abs=1e-5)


@pytest.mark.claim("l4.auc")
@pytest.mark.parametrize("seed", SEEDS)
def test_exact_auc_is_within_tolerance_of_keras_approximation(seed):
    y, scores = random_binary(seed)
    exact = M.roc_auc(y, scores)
    assert abs(exact - keras_value(AUC(), y, scores)) < AUC_TOLERANCE
    # the exact formula against a brute-force count over all positive/negative pairs
    pos, neg = scores[y == 1], scores[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert exact == pytest.approx(pairs)


def test_precision_with_no_predicted_positive_is_zero_like_keras():
    y = np.array([1.0, 0.0, 1.0])
    scores = np.array([0.1, 0.2, 0.3])
    assert M.precision(y, scores) == keras_value(Precision(), y, scores) == 0.0


@pytest.mark.claim("l4.by-hand")
@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_accuracies_match_keras(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    labels = rng.integers(0, k, size=50)
    probabilities = rng.dirichlet(np.ones(k), size=50).astype("float32")
    one_hot = np.eye(k, dtype="float32")[labels]
    categorical = CategoricalAccuracy()
    categorical.update_state(one_hot, probabilities)
    sparse = SparseCategoricalAccuracy()
    sparse.update_state(labels, probabilities)
    assert M.categorical_accuracy(one_hot, probabilities) == pytest.approx(float(categorical.result()))
    assert M.sparse_categorical_accuracy(labels, probabilities) == pytest.approx(float(sparse.result()))


@pytest.mark.claim("l4.mae-rmse")
@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_match_keras(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 5, size=100).astype("float32")
    predicted = (y + rng.standard_t(2, size=100)).astype("float32")
    assert M.mean_absolute_error(y, predicted) == pytest.approx(
        keras_value(MeanAbsoluteError(), y, predicted), rel=1e-5)
    assert M.root_mean_squared_error(y, predicted) == pytest.approx(
        keras_value(RootMeanSquaredError(), y, predicted), rel=1e-5)


@pytest.mark.claim("l4.confusion-matrix")
def test_confusion_matrix_layout_and_strict_threshold():
    y = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.5, 0.5, 0.7, 0.2])  # 0.5 is *not* above 0.5
    np.testing.assert_array_equal(M.confusion_matrix(y, scores, 0.5), [[2, 0], [2, 1]])


@pytest.mark.claim("l4.stateful-f1")
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_binary_f1_custom_metric_equals_numpy_and_keras_over_batches(seed):
    y, scores = random_binary(seed)
    metric = M.BinaryF1()
    for start in range(0, len(y), 32):  # batch by batch, as fit does
        metric.update_state(y[start:start + 32, None], scores[start:start + 32, None])
    assert float(metric.result()) == pytest.approx(M.f1_score(y, scores), abs=1e-6)
    assert float(metric.result()) == pytest.approx(keras_value(F1Score(threshold=0.5), y, scores), abs=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0


# --- the table -----------------------------------------------------------------------------------

@pytest.mark.claim("l4.metric-table")
def test_metric_table_strings_resolve_to_the_named_classes():
    for row in M.METRIC_TABLE:
        assert callable(getattr(M, row.numpy_name))
        if row.in_compile == "'accuracy'":
            continue  # resolved by compile from the loss, checked below
        code = row.in_compile
        built = tf.keras.metrics.get(code.strip("'")) if code.startswith("'") else eval(code, vars(tf.keras.metrics))
        assert type(built).__name__ == row.keras_class


MULTI_HOT = np.eye(3)[[0, 1, 2, 0]] + np.eye(3)[[1, 2, 0, 2]]


@pytest.mark.claim("keras.accuracy-from-shapes")
@pytest.mark.parametrize("loss, units, activation, labels, expected", [
    ("binary_crossentropy", 1, "sigmoid", np.array([0.0, 1.0, 1.0, 0.0]), BinaryAccuracy),
    ("mean_squared_error", 1, "sigmoid", np.array([0.0, 1.0, 1.0, 0.0]), BinaryAccuracy),
    ("categorical_crossentropy", 3, "softmax", np.eye(3)[[0, 1, 2, 0]], CategoricalAccuracy),
    ("sparse_categorical_crossentropy", 3, "softmax", np.array([0, 1, 2, 0]), SparseCategoricalAccuracy),
    ("sparse_categorical_crossentropy", 3, "softmax", np.array([[0], [1], [2], [0]]), SparseCategoricalAccuracy),
    ("binary_crossentropy", 3, "sigmoid", MULTI_HOT, CategoricalAccuracy),
    ("mean_squared_error", 3, "softmax", np.eye(3)[[0, 1, 2, 0]], CategoricalAccuracy),
])
def test_accuracy_string_resolves_from_the_shapes_never_from_the_loss(loss, units, activation, labels, expected):
    model = Sequential([Input(shape=(2,)), Dense(units), Activation(activation)])
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.evaluate(np.zeros((4, 2)), labels, verbose=0)
    assert type(model.metrics[-1].metrics[0]) is expected
    assert expected.__name__ in M.METRIC_TABLE[0].keras_class


@pytest.mark.claim("keras.accuracy-from-shapes")
def test_lesson_shows_the_accuracy_string_by_shape(lesson):
    text = lesson.text_of(lesson.code_cell("from tensorflow.keras.models import Sequential"))
    resolved = dict(re.findall(r"^(.+?)\s{2,}\w+\s+'accuracy' -> (\w+)$", text, re.M))
    assert resolved == {"1 sigmoid, labels 0/1": "BinaryAccuracy", "1 sigmoid, labels 0/1 (MSE)": "BinaryAccuracy",
                        "3 softmax, one-hot labels": "CategoricalAccuracy",
                        "3 softmax, integer labels": "SparseCategoricalAccuracy",
                        "3 sigmoids, multi-hot labels": "CategoricalAccuracy"}
    markdown = " ".join(" ".join(c.source for c in lesson.notebook.cells if c.cell_type == "markdown").split())
    assert "from the **shapes** of the labels and of the model's output, not from the loss" in markdown
    assert "from the loss and the output shape" not in markdown


@pytest.mark.claim("l4.auc", "l4.metric-table")
def test_keras_defaults_the_table_states():
    assert AUC().num_thresholds == 200 and AUC().get_config()["curve"] == "ROC"
    assert F1Score().threshold is None and BinaryAccuracy().get_config()["threshold"] == 0.5
    f1_row = next(row for row in M.METRIC_TABLE if row.keras_class == "F1Score")
    assert "threshold=0.5" in f1_row.in_compile


@pytest.mark.claim("l4.f1-threshold")
def test_f1score_without_threshold_counts_every_single_output_as_positive():
    y, scores = random_binary(0)
    assert keras_value(F1Score(), y, scores) == pytest.approx(M.f1_score(y, np.ones_like(scores)), abs=1e-5)


@pytest.mark.claim("l4.metric-table")
def test_lesson_shows_the_table_from_coursekit(lesson):
    markdown = "\n".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown")
    assert M.metric_table_markdown() in markdown


# --- loss vs metric ------------------------------------------------------------------------------

def small_classifier():
    coursekit.seed_everything(0)
    model = Sequential([Input(shape=(2,)), Dense(3), Activation("relu"), Dense(1), Activation("sigmoid")])
    return model


@pytest.mark.claim("l4.accuracy-no-gradient")
def test_accuracy_has_no_gradient_and_a_step_version_has_zero_gradient():
    X, y = make_imbalanced(n_samples=200, positive_fraction=0.3, seed=0)
    model = small_classifier()
    # sign(0) = 0 would count a prediction of exactly 0.5 as half right; keep the others
    off_the_line = np.asarray(model(X))[:, 0] != 0.5
    X, y = X[off_the_line], tf.constant(y[off_the_line, None])
    assert len(X) > 100
    with tf.GradientTape(persistent=True) as tape:
        p = model(X)
        loss = tf.keras.losses.BinaryCrossentropy()(y, p)
        accuracy = tf.reduce_mean(tf.keras.metrics.binary_accuracy(y, p))
        by_sign = tf.reduce_mean(y * (tf.sign(p - 0.5) + 1) / 2 + (1 - y) * (1 - tf.sign(p - 0.5)) / 2)
    assert float(accuracy) == pytest.approx(float(by_sign))
    assert any(float(tf.norm(g)) > 0 for g in tape.gradient(loss, model.trainable_weights))
    assert all(g is None for g in tape.gradient(accuracy, model.trainable_weights))
    assert all(float(tf.norm(g)) == 0 for g in tape.gradient(by_sign, model.trainable_weights))


@pytest.mark.claim("l4.staircase")
def test_accuracy_along_a_weight_is_a_staircase_and_the_loss_is_smooth():
    X, y = make_imbalanced(n_samples=200, positive_fraction=0.3, seed=0)
    model = small_classifier()
    weights = [w.copy() for w in model.get_weights()]
    losses, accuracies = M.loss_and_accuracy_along_bias(model, X, y, np.linspace(-3, 3, 121))
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())), "weights restored"
    assert len(np.unique(accuracies)) < len(accuracies) / 3          # mostly flat
    assert np.mean(np.diff(accuracies) == 0) > 0.5                    # zero slope almost everywhere
    assert np.all(np.diff(losses) != 0)                               # the loss always moves


def errors_shown(lesson, first_line):
    return [lesson.text_of(i).strip() for i, cell in enumerate(lesson.notebook.cells)
            if cell.cell_type == "code" and cell.source.startswith(first_line)]


@pytest.mark.claim("l4.accuracy-as-loss")
def test_accuracy_as_a_loss_errors_are_the_ones_keras_raises(lesson):
    X, y = make_imbalanced(n_samples=40, positive_fraction=0.3, seed=0)
    messages = []
    for loss in ("accuracy", tf.keras.metrics.binary_accuracy):
        model = small_classifier()
        model.compile(optimizer="adam", loss=loss)
        with pytest.raises(ValueError) as raised:
            model.fit(X, y, epochs=1, verbose=0)
        messages.append(f"ValueError: {raised.value}")
    assert messages[0] == "ValueError: Could not interpret loss identifier: accuracy"
    assert messages[1] == "ValueError: No gradients provided for any variable."
    assert errors_shown(lesson, "accuracy_as_loss = build_seed_model(compile_model=False)") == messages


@pytest.mark.claim("l4.accuracy-no-gradient", "l4.staircase")
def test_lesson_gradient_demo(lesson):
    text = lesson.text_of(lesson.code_cell("from tensorflow.keras.losses import BinaryCrossentropy"))
    lines = dict(line.strip().split("  ", 1) for line in text.splitlines()[2:])
    assert "None" not in lines["loss"] and any(float(v) > 0 for v in re.findall(r"[\d.]+", lines["loss"]))
    assert lines["accuracy"].strip() == "[None, None, None, None]"
    assert lines["accuracy via sign"].strip() == "[0.0, 0.0, 0.0, 0.0]"
    steps = lesson.text_of(lesson.code_cell("from coursekit.plots import plot_loss_and_accuracy_along_bias"))
    assert int(steps.splitlines()[0].split(": ")[1]) < 161 / 4


@pytest.mark.claim("l4.loss-falls-accuracy-still")
def test_lesson_loss_falls_while_accuracy_stands_still(lesson):
    text = lesson.text_of(lesson.code_cell("losses_sep, accuracies_sep = "))
    epoch = int(re.search(r"accuracy first reaches 1\.000 at epoch (\d+) and ends at 1\.000", text).group(1))
    loss_then, loss_end = map(float, re.search(r"loss at epoch \d+: ([\d.]+) → at epoch 40: ([\d.]+)", text).groups())
    assert epoch < 30 and loss_end < 0.8 * loss_then


@pytest.mark.claim("l4.imbalanced")
def test_lesson_imbalanced_accuracy_hides_a_useless_model(lesson):
    scores = eval(lesson.text_of(lesson.code_cell("from coursekit.datasets_extra import make_imbalanced")
                                 ).splitlines()[1])
    text = lesson.text_of(lesson.code_cell("always_no = "))
    always_no = float(re.search(r'always answers "no":\s+([\d.]+)', text).group(1))
    assert scores["accuracy"] > 0.9 and abs(scores["accuracy"] - always_no) < 0.02
    assert scores["recall"] < 0.3 and scores["auc"] > 0.8
    _, y = make_imbalanced(n_samples=2000, positive_fraction=0.05, separation=1.5, seed=0)
    assert y.sum() == 100


@pytest.mark.claim("l4.auc", "l4.by-hand", "l4.mae-rmse")
def test_lesson_metrics_by_hand_match_keras(lesson):
    text = lesson.text_of(lesson.code_cell("from tensorflow.keras.metrics import BinaryAccuracy"))
    values = {name.strip(): (float(ours), float(theirs))
              for name, ours, theirs in re.findall(r"^(.+?)NumPy ([\d.]+)\s+Keras ([\d.]+)", text, re.M)}
    assert set(values) == {"binary accuracy", "precision", "recall", "F1", "AUC"}
    for name, (ours, theirs) in values.items():
        assert abs(ours - theirs) <= (0.002 if name == "AUC" else 0.0), name  # "about three decimals"
    f1 = lesson.text_of(lesson.code_cell("print('F1Score():"))
    no_threshold, every_positive = re.findall(r"F1Score\(\):\s+([\d.]+)|predicted 1: ([\d.]+)", f1)
    assert no_threshold[0] == every_positive[1]
    regression = lesson.text_of(lesson.code_cell("from coursekit.datasets_extra import make_regression_with_outliers"))
    (mae, mae_k), (rmse, rmse_k) = re.findall(r"NumPy ([\d.]+)\s+Keras ([\d.]+)", regression)
    assert mae == mae_k and rmse == rmse_k and float(rmse) > 2 * float(mae)


@pytest.mark.claim("l4.threshold-tradeoff")
def test_lesson_threshold_table_recall_rises_as_threshold_falls(lesson):
    text = lesson.text_of(lesson.code_cell("for threshold in (0.5, 0.3, 0.1):"))
    recalls = [float(r) for r in re.findall(r"recall ([\d.]+)", text)]
    precisions = [float(p) for p in re.findall(r"precision ([\d.]+)", text)]
    assert recalls == sorted(recalls) and recalls[-1] > 2 * recalls[0]
    assert precisions[-1] < precisions[0]


@pytest.mark.claim("l1.history", "l4.custom-metric")
def test_lesson_custom_metrics_appear_in_history_and_evaluate(lesson):
    keys = eval(lesson.text_of(lesson.code_cell("def predicted_positive_rate(")))
    for name in ("loss", "accuracy", "recall", "predicted_positive_rate"):
        assert name in keys and f"val_{name}" in keys
    text = lesson.text_of(lesson.code_cell("evaluated = watched.evaluate("))
    evaluated = eval(text.splitlines()[0])
    assert f"positive rate by NumPy: {evaluated['predicted_positive_rate']}" in text


@pytest.mark.claim("l4.stateful-f1")
def test_lesson_stateful_f1_is_f1_of_the_whole_set_not_the_mean_of_batches(lesson):
    text = lesson.text_of(lesson.code_cell("coursekit.seed_everything(42)\ncounted"))
    keras_f1, numpy_f1, averaged = map(float, re.search(
        r"BinaryF1 in evaluate: ([\d.]+) · F1 by NumPy on the same predictions: ([\d.]+) · mean of \d+ per-batch "
        r"F1s: ([\d.]+)", text).groups())
    assert keras_f1 == numpy_f1 and abs(keras_f1 - averaged) > 0.01


# --- the threshold widget, headless --------------------------------------------------------------

@pytest.mark.claim("l4.threshold-widget")
def test_threshold_widget_matches_numpy_and_a_higher_threshold_lowers_recall():
    y, scores = random_binary(3, n=300)
    widget = ThresholdWidget(y, scores, threshold=0.5)
    before = bytes(widget.view.widget.value)
    results = {}
    for threshold in (0.2, 0.5, 0.8):
        widget.slider.value = threshold  # the observer hands the value to the update thread
        widget.runner.wait()
        result = results[threshold] = widget.result
        np.testing.assert_array_equal(result["confusion_matrix"], M.confusion_matrix(y, scores, threshold))
        texts = [[t.get_text().split("\n")[1] for t in row] for row in widget.cell_texts]
        assert np.array_equal(np.array(texts, dtype=int), result["confusion_matrix"])
        assert result["precision"] == pytest.approx(keras_value(Precision(thresholds=threshold), y, scores))
        assert result["recall"] == pytest.approx(keras_value(Recall(thresholds=threshold), y, scores))
        assert widget.recall_marker.get_data()[1][0] == pytest.approx(result["recall"])
        assert list(widget.hist_line.get_xdata()) == [threshold, threshold]
        assert f"recall {result['recall']:.3f}" in widget.readout.value
        (tn, fp), (fn, tp) = result["confusion_matrix"]
        assert f"TN {tn}, FP {fp}, FN {fn}, TP {tp}" in widget.view.widget.tooltip
    assert results[0.2]["recall"] > results[0.5]["recall"] > results[0.8]["recall"]
    assert widget.update(threshold=0.3)["threshold"] == 0.3 and widget.slider.value == 0.3
    assert bytes(widget.view.widget.value) != before
    widget.view.close()


def test_lesson_structure(lesson):
    first = lesson.notebook.cells[0].source
    assert first.startswith("# Lesson 4")
    markdown = "\n".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown")
    assert "## Key terms" in markdown and "## Check your understanding" in markdown
    assert "(../exercises/README.md)" in markdown


@pytest.mark.claim("l4.metrics-only-report")
def test_metrics_do_not_change_training():
    """'Metrics never change a weight': the same training with no metric and with five gives the same weights."""
    from tensorflow.keras.optimizers import Adam

    from coursekit.datasets_extra import as_batches
    from coursekit.models import build_seed_model

    X, y = make_imbalanced(n_samples=400, positive_fraction=0.3, seed=0)

    def trained(metrics):
        coursekit.seed_everything(42)
        model = build_seed_model(compile_model=False)
        model.compile(optimizer=Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=metrics)
        model.fit(as_batches(X, y), epochs=3, shuffle=False, verbose=0)
        return model.get_weights()

    plain = trained([])
    watched = trained(["accuracy", Precision(), Recall(), AUC(), M.BinaryF1()])
    assert all(np.array_equal(a, b) for a, b in zip(plain, watched))


@pytest.mark.claim("l4.loss-falls-accuracy-still")
def test_a_straight_line_splits_the_separable_clouds():
    """§ 3: 'a straight line classifies all of them' — the line across the two clouds' means does."""
    from coursekit.datasets_extra import make_separable

    X, y = make_separable(n_samples=200, gap=3.0, seed=0)
    along = X @ (X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0))
    assert along[y == 0].max() < along[y == 1].min()
