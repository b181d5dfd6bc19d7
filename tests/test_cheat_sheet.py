"""course/cheat-sheet.md, checked against Keras: its table and every pitfall it lists.

The table's rows are ``coursekit.losses.LOSS_TABLE``; tests/test_lesson03.py trains each row with its
output layer, loss and ``metrics=`` and checks its "'accuracy' becomes" column
(test_each_rows_output_layer_loss_and_metrics_train_together, test_accuracy_string_for_each_loss_table_row).
tests/test_course_pages.py checks that the page is what ``coursekit.cheat_sheet`` writes. Here:
one test per pitfall, named after it, and the optimizer defaults.
"""

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.keras.layers import Activation, Dense, Input
from tensorflow.keras.metrics import BinaryAccuracy, CategoricalAccuracy, F1Score, SparseCategoricalAccuracy
from tensorflow.keras.models import Sequential

from coursekit import cheat_sheet
from coursekit.losses import LOSS_TABLE
from support.notebooks import ROOT

PAGE = ROOT / "course" / cheat_sheet.PAGE


def model(units, activation, loss, **compile_options):
    coursekit.seed_everything(0)
    built = Sequential([Input(shape=(2,)), Dense(4), Activation("relu"), Dense(units), Activation(activation)])
    built.compile(optimizer="adam", loss=loss, **compile_options)
    return built


def accuracy_class(units, activation, loss, labels):
    built = model(units, activation, loss, metrics=["accuracy"])
    built.evaluate(np.zeros((len(labels), 2), dtype="float32"), labels, verbose=0)
    return type(built.metrics[-1].metrics[0])


@pytest.mark.claim("readme.cheat-sheet")
def test_the_page_lists_every_task_row_and_every_pitfall():
    text = PAGE.read_text()
    for row in LOSS_TABLE:
        assert f"| {row.task} |" in text and f"`{row.output_layer}`" in text and f"`{row.metrics}`" in text
    for title, _ in cheat_sheet.PITFALLS:
        assert f"**{title}.**" in text
    assert len(cheat_sheet.PITFALLS) == 7  # one test below for each


@pytest.mark.claim("keras.accuracy-from-shapes")
def test_pitfall_accuracy_looks_at_shapes_not_at_the_loss():
    two_labels = np.array([0.0, 1.0, 1.0, 0.0])
    assert accuracy_class(1, "sigmoid", "binary_crossentropy", two_labels) is BinaryAccuracy
    assert accuracy_class(1, "sigmoid", "mean_squared_error", two_labels) is BinaryAccuracy
    assert accuracy_class(3, "softmax", "sparse_categorical_crossentropy", np.array([0, 1, 2, 0])) is \
        SparseCategoricalAccuracy
    tags = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype="float32")
    assert accuracy_class(3, "sigmoid", "binary_crossentropy", tags) is CategoricalAccuracy  # argmax, not per tag
    # ...and the fixes the page gives
    assert BinaryAccuracy().get_config()["threshold"] == 0.5 and BinaryAccuracy(threshold=0.0).threshold == 0.0


@pytest.mark.claim("l1.misspelled-loss")
def test_pitfall_a_misspelled_loss_is_found_at_fit_not_at_compile():
    built = model(1, "sigmoid", "binary_crossentropi")  # no error
    with pytest.raises(ValueError, match="Could not interpret loss identifier: binary_crossentropi"):
        built.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        Sequential([Input(shape=(2,)), Dense(1)]).compile(optimizer="adamm", loss="mse")


@pytest.mark.claim("l3.label-format-errors")
def test_pitfall_labels_in_the_format_the_loss_expects():
    X, classes = np.zeros((6, 2), dtype="float32"), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="shape"):
        model(3, "softmax", "categorical_crossentropy").fit(X, classes, epochs=1, verbose=0)
    one_hot = tf.keras.utils.to_categorical(classes, 3)
    np.testing.assert_array_equal(one_hot, np.eye(3)[classes])
    with pytest.raises(ValueError, match="shape"):
        model(3, "softmax", "sparse_categorical_crossentropy").fit(X, one_hot, epochs=1, verbose=0)
    model(3, "softmax", "categorical_crossentropy").fit(X, one_hot, epochs=1, verbose=0)  # the fix works


@pytest.mark.claim("l3.clipping")
def test_pitfall_no_sigmoid_no_from_logits_clips_and_gives_zero_gradient():
    raw = tf.Variable([[-2.0], [0.5], [3.0]])
    with tf.GradientTape() as tape:
        loss = tf.keras.losses.binary_crossentropy(tf.ones_like(raw), raw)
    gradient = tape.gradient(loss, raw).numpy()[:, 0]
    assert gradient[0] == 0 and gradient[2] == 0 and gradient[1] != 0
    assert float(loss[0]) == pytest.approx(-np.log(1e-7), rel=1e-5) and tf.keras.backend.epsilon() == 1e-7
    with tf.GradientTape() as tape:
        fixed = tf.keras.losses.binary_crossentropy(tf.ones_like(raw), raw, from_logits=True)
    assert np.all(tape.gradient(fixed, raw).numpy() != 0)


@pytest.mark.claim("l4.f1-threshold")
def test_pitfall_f1score_needs_a_threshold_for_one_sigmoid_output():
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    p = np.array([[0.9], [0.1], [0.2], [0.3]])
    without, with_threshold = F1Score(), F1Score(threshold=0.5)
    without.update_state(y, p)
    with_threshold.update_state(y, p)
    every_positive = 2 * 2 / (2 * 2 + 2)  # TP 2, FP 2, FN 0
    assert float(np.squeeze(without.result())) == pytest.approx(every_positive, abs=1e-5)
    assert float(np.squeeze(with_threshold.result())) == pytest.approx(2 * 1 / (2 * 1 + 0 + 1), abs=1e-5)


@pytest.mark.claim("l4.accuracy-as-loss")
def test_pitfall_accuracy_cannot_be_a_loss():
    X, y = np.zeros((4, 2), dtype="float32"), np.array([0.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="Could not interpret loss identifier: accuracy"):
        model(1, "sigmoid", "accuracy").fit(X, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        model(1, "sigmoid", tf.keras.metrics.binary_accuracy).fit(X, y, epochs=1, verbose=0)


@pytest.mark.claim("l4.imbalanced")
def test_pitfall_on_imbalanced_data_accuracy_flatters():
    y = np.zeros(1000)
    y[:50] = 1  # 5 % positives
    metric = BinaryAccuracy()
    metric.update_state(y[:, None], np.zeros((1000, 1)))  # always "no"
    assert float(metric.result()) == pytest.approx(0.95)


@pytest.mark.claim("readme.cheat-sheet")
def test_optimizer_strings_give_the_defaults_the_page_lists():
    defaults = cheat_sheet.optimizer_defaults()
    assert defaults["Adam"] == {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert defaults["SGD"] == {"learning_rate": 0.01, "momentum": 0.0}
    built = Sequential([Input(shape=(2,)), Dense(1)])
    built.compile(optimizer="adam", loss="mse")
    assert type(built.optimizer).__name__ == "Adam"
    assert float(built.optimizer.learning_rate) == pytest.approx(defaults["Adam"]["learning_rate"])
    assert "`learning_rate=0.001`, `beta_1=0.9`, `beta_2=0.999`, `epsilon=1e-07`" in PAGE.read_text()
