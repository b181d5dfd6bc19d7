"""Lesson 1's claims, checked against what Keras really does and against the executed lesson."""

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.keras.layers import Activation, Dense, Input
from tensorflow.keras.losses import BinaryCrossentropy
from tensorflow.keras.metrics import BinaryAccuracy
from tensorflow.keras.models import Sequential
from tensorflow.keras.optimizers import Adam

from coursekit.data import make_moons, train_test_split
from coursekit.models import build_seed_model
from support.notebooks import ROOT

LESSON = ROOT / "course" / "01-compiling-a-model.ipynb"

# The chapter's example, line by line, as the seed page writes it.
SEED_EXAMPLE_LINES = [
    "from tensorflow.keras.models import Sequential",
    "from tensorflow.keras.layers import Dense, Activation, Input",
    "from tensorflow.keras.optimizers import Adam",
    "model = Sequential()",
    "model.add(Input(shape=(2,)))",
    "model.add(Dense(3))",
    "model.add(Activation('relu'))",
    "model.add(Dense(1))",
    "model.add(Activation('sigmoid'))",
    "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
    "model.summary()",
]


def fresh_seed_model():
    coursekit.seed_everything(42)
    return build_seed_model(compile_model=False)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=400, noise=0.2, seed=0)
    return train_test_split(X, y, test_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def lesson(executed_notebooks):
    return executed_notebooks(LESSON)


def test_lesson_contains_the_seed_example_verbatim(lesson):
    cell = lesson.notebook.cells[lesson.code_cell("from tensorflow.keras.models import Sequential\n"
                                                   "from tensorflow.keras.layers import Dense, Activation, Input\n"
                                                   "from tensorflow.keras.optimizers import Adam")]
    code_lines = [line.strip() for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
    assert code_lines == SEED_EXAMPLE_LINES


def test_fitting_an_uncompiled_model_raises_the_error_the_lesson_shows(lesson):
    with pytest.raises(ValueError, match=r"You must call `compile\(\)` before using the model") as raised:
        fresh_seed_model().fit(np.zeros((4, 2)), np.zeros(4), verbose=0)
    shown = lesson.text_of(lesson.code_cell("with coursekit.expect_error(ValueError):\n    uncompiled.fit"))
    assert shown.strip() == f"ValueError: {raised.value}"


def test_an_uncompiled_model_can_already_predict():
    predictions = fresh_seed_model().predict(np.array([[0.0, 1.0], [1.0, 0.0]]), verbose=0)
    assert predictions.shape == (2, 1)


def test_parameter_counts_follow_inputs_times_units_plus_biases():
    model = build_seed_model()
    counts = [layer.count_params() for layer in model.layers]
    assert counts == [2 * 3 + 3, 0, 3 * 1 + 1, 0]
    assert model.count_params() == 13


def test_compile_does_not_change_the_weights():
    model = fresh_seed_model()
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    assert all(np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def test_compile_config_keeps_strings_as_written_and_adam_defaults():
    config = build_seed_model().get_compile_config()
    assert config["loss"] == "binary_crossentropy"
    assert config["metrics"] == ["accuracy"]
    assert config["optimizer"]["class_name"] == "Adam"
    adam = config["optimizer"]["config"]
    assert adam["learning_rate"] == float(np.float32(0.001)) != 0.001  # stored as float32
    assert (adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (0.9, 0.999, 1e-7)
    assert {"loss_weights", "run_eagerly", "jit_compile"} <= config.keys()


def test_sigmoid_output_is_a_probability(moons):
    X_train, *_ = moons
    predictions = build_seed_model().predict(X_train * 100, verbose=0)  # even for extreme inputs
    assert np.all((predictions >= 0) & (predictions <= 1))


def test_optimizer_string_becomes_a_default_adam_object():
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    assert isinstance(model.optimizer, Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)


def test_loss_string_and_loss_object_compute_the_same_value(moons):
    X_train, y_train, *_ = moons
    predictions = fresh_seed_model()(X_train)
    from_string = tf.reduce_mean(tf.keras.losses.get("binary_crossentropy")(y_train[:, None], predictions))
    from_object = BinaryCrossentropy()(y_train[:, None], predictions)
    assert float(from_string) == pytest.approx(float(from_object), rel=1e-6)


def test_accuracy_string_means_binary_accuracy_for_a_bce_model(moons):
    X_train, y_train, X_test, y_test = moons
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=3, verbose=0)
    _, reported = model.evaluate(X_test, y_test, verbose=0)
    by_hand = np.mean((model.predict(X_test, verbose=0)[:, 0] > 0.5) == y_test)
    metric = BinaryAccuracy()
    metric.update_state(y_test[:, None], model.predict(X_test, verbose=0))
    assert reported == pytest.approx(by_hand) == pytest.approx(float(metric.result()))


def test_misspelled_optimizer_fails_at_compile():
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier: adamm"):
        fresh_seed_model().compile(optimizer="adamm", loss="binary_crossentropy")


def test_misspelled_loss_compiles_but_fails_at_fit(moons):
    X_train, y_train, *_ = moons
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropi", metrics=["accuracy"])
    with pytest.raises(ValueError, match="Could not interpret loss identifier: binary_crossentropi"):
        model.fit(X_train, y_train, epochs=1, verbose=0)


def test_training_in_the_lesson_lowers_the_loss_and_learns_the_moons(lesson):
    text = lesson.text_of(lesson.code_cell("first, last = history.history['loss']"))
    first, last = (float(part.split()[0]) for part in text.split("training loss: ")[1].split(" after epoch 1 → "))
    assert last < first / 2
    test_text = lesson.text_of(lesson.code_cell("test_loss, test_accuracy = model.evaluate"))
    test_accuracy = float(test_text.split("test accuracy ")[1])
    assert test_accuracy >= 0.85, "the trained example should separate most test points"


def test_string_and_object_results_agree_in_the_lesson(lesson):
    for first_line in ("predictions = model.predict(X_test", "binary_accuracy = BinaryAccuracy("):
        left, right = eval(lesson.text_of(lesson.code_cell(first_line)))  # a tuple of two floats
        assert left == pytest.approx(right, rel=1e-6)


def test_training_is_reproducible_with_the_same_seed(moons):
    X_train, y_train, *_ = moons

    def train():
        coursekit.seed_everything(42)
        model = build_seed_model()
        model.fit(X_train, y_train, epochs=2, batch_size=32, verbose=0)
        return model.get_weights()

    assert all(np.array_equal(a, b) for a, b in zip(train(), train()))


def test_accuracy_string_is_chosen_from_the_output_shape_not_from_the_loss():
    """Lesson 1 § 6: one output unit gives BinaryAccuracy, whatever the loss (here squared error)."""
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=["accuracy"])
    model.evaluate(np.zeros((4, 2)), np.array([0.0, 1.0, 1.0, 0.0]), verbose=0)
    assert type(model.metrics[-1].metrics[0]) is BinaryAccuracy


def test_lesson_says_accuracy_follows_the_shapes(lesson):
    text = " ".join(" ".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown").split())
    assert "picks the kind of accuracy from the **shapes** of the labels and of the model's output" in text
    assert "it does not look at the loss" in text
    assert "from the loss and the output shape" not in text


def test_a_fifty_fifty_guess_costs_ln_2_nats():
    """Lesson 1 § 5: cross-entropy uses the natural logarithm; a 50/50 guess costs ln 2 ≈ 0.693 nats."""
    loss = float(BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]])))
    assert loss == pytest.approx(np.log(2), rel=1e-6) and round(np.log(2), 3) == 0.693
    assert float(BinaryCrossentropy()(np.array([[1.0]]), np.array([[1.0]]))) == pytest.approx(0, abs=1e-6)


def test_nats_are_explained_before_the_first_loss_plot(lesson):
    cells = lesson.notebook.cells
    plot = lesson.code_cell("plot_learning_curves(history")
    explained = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown"
                 and "measured in **nats**" in cell.source and "natural* logarithm" in cell.source]
    assert explained and explained[0] < plot


def test_the_other_compile_config_keys_are_arguments_of_compile():
    import inspect

    import keras

    parameters = inspect.signature(keras.Model.compile).parameters
    config = build_seed_model().get_compile_config()
    for key in set(config) - {"optimizer", "loss", "metrics"}:
        assert key in parameters, key
