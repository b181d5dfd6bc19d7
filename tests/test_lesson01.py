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


@pytest.mark.claim("l1.chapter-example")
def test_lesson_contains_the_seed_example_verbatim(lesson):
    cell = lesson.notebook.cells[lesson.code_cell("from tensorflow.keras.models import Sequential\n"
                                                   "from tensorflow.keras.layers import Dense, Activation, Input\n"
                                                   "from tensorflow.keras.optimizers import Adam")]
    code_lines = [line.strip() for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
    assert code_lines == SEED_EXAMPLE_LINES


@pytest.mark.claim("l1.uncompiled")
def test_fitting_an_uncompiled_model_raises_the_error_the_lesson_shows(lesson):
    with pytest.raises(ValueError, match=r"You must call `compile\(\)` before using the model") as raised:
        fresh_seed_model().fit(np.zeros((4, 2)), np.zeros(4), verbose=0)
    shown = lesson.text_of(lesson.code_cell("with coursekit.expect_error(ValueError):\n    uncompiled.fit"))
    assert shown.strip() == f"ValueError: {raised.value}"


@pytest.mark.claim("l1.uncompiled")
def test_an_uncompiled_model_can_already_predict():
    predictions = fresh_seed_model().predict(np.array([[0.0, 1.0], [1.0, 0.0]]), verbose=0)
    assert predictions.shape == (2, 1)


@pytest.mark.claim("l1.parameter-counts", "l2.seed-model", "suite.lesson-claims")
def test_parameter_counts_follow_inputs_times_units_plus_biases():
    model = build_seed_model()
    counts = [layer.count_params() for layer in model.layers]
    assert counts == [2 * 3 + 3, 0, 3 * 1 + 1, 0]
    assert model.count_params() == 13


@pytest.mark.claim("l1.compile-keeps-weights")
def test_compile_does_not_change_the_weights():
    model = fresh_seed_model()
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    assert all(np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


@pytest.mark.claim("l1.adam-defaults-in-config", "l1.compile-config", "l2.seed-model")
def test_compile_config_keeps_strings_as_written_and_adam_defaults():
    config = build_seed_model().get_compile_config()
    assert config["loss"] == "binary_crossentropy"
    assert config["metrics"] == ["accuracy"]
    assert config["optimizer"]["class_name"] == "Adam"
    adam = config["optimizer"]["config"]
    assert adam["learning_rate"] == float(np.float32(0.001)) != 0.001  # stored as float32
    assert (adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (0.9, 0.999, 1e-7)
    assert {"loss_weights", "run_eagerly", "jit_compile"} <= config.keys()


@pytest.mark.claim("l3.sigmoid-range")
def test_sigmoid_output_is_a_probability(moons):
    X_train, *_ = moons
    predictions = build_seed_model().predict(X_train * 100, verbose=0)  # even for extreme inputs
    assert np.all((predictions >= 0) & (predictions <= 1))


@pytest.mark.claim("l1.strings-or-objects")
def test_optimizer_string_becomes_a_default_adam_object():
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    assert isinstance(model.optimizer, Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)


@pytest.mark.claim("l1.strings-or-objects")
def test_loss_string_and_loss_object_compute_the_same_value(moons):
    X_train, y_train, *_ = moons
    predictions = fresh_seed_model()(X_train)
    from_string = tf.reduce_mean(tf.keras.losses.get("binary_crossentropy")(y_train[:, None], predictions))
    from_object = BinaryCrossentropy()(y_train[:, None], predictions)
    assert float(from_string) == pytest.approx(float(from_object), rel=1e-6)


@pytest.mark.claim("keras.accuracy-from-shapes")
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


@pytest.mark.claim("l1.misspelled-optimizer")
def test_misspelled_optimizer_fails_at_compile():
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier: adamm"):
        fresh_seed_model().compile(optimizer="adamm", loss="binary_crossentropy")


@pytest.mark.claim("l1.misspelled-loss")
def test_misspelled_loss_compiles_but_fails_at_fit(moons):
    X_train, y_train, *_ = moons
    model = fresh_seed_model()
    model.compile(optimizer="adam", loss="binary_crossentropi", metrics=["accuracy"])
    with pytest.raises(ValueError, match="Could not interpret loss identifier: binary_crossentropi"):
        model.fit(X_train, y_train, epochs=1, verbose=0)


@pytest.mark.claim("l1.trained")
def test_training_in_the_lesson_lowers_the_loss_and_learns_the_moons(lesson):
    text = lesson.text_of(lesson.code_cell("first, last = history.history['loss']"))
    first, last = (float(part.split()[0]) for part in text.split("training loss: ")[1].split(" after epoch 1 → "))
    assert last < first / 2
    test_text = lesson.text_of(lesson.code_cell("test_loss, test_accuracy = model.evaluate"))
    test_accuracy = float(test_text.split("test accuracy ")[1])
    assert test_accuracy >= 0.85, "the trained example should separate most test points"


@pytest.mark.claim("l1.strings-or-objects")
def test_string_and_object_results_agree_in_the_lesson(lesson):
    for first_line in ("predictions = model.predict(X_test", "binary_accuracy = BinaryAccuracy("):
        left, right = eval(lesson.text_of(lesson.code_cell(first_line)))  # a tuple of two floats
        assert left == pytest.approx(right, rel=1e-6)


@pytest.mark.claim("course.seeded")
def test_training_is_reproducible_with_the_same_seed(moons):
    X_train, y_train, *_ = moons

    def train():
        coursekit.seed_everything(42)
        model = build_seed_model()
        model.fit(X_train, y_train, epochs=2, batch_size=32, verbose=0)
        return model.get_weights()

    assert all(np.array_equal(a, b) for a, b in zip(train(), train()))


@pytest.mark.claim("keras.accuracy-from-shapes")
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


@pytest.mark.claim("l1.nats")
def test_a_fifty_fifty_guess_costs_ln_2_nats():
    """Lesson 1 § 5: cross-entropy uses the natural logarithm; a 50/50 guess costs ln 2 ≈ 0.693 nats."""
    loss = float(BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]])))
    assert loss == pytest.approx(np.log(2), rel=1e-6) and round(np.log(2), 3) == 0.693
    assert float(BinaryCrossentropy()(np.array([[1.0]]), np.array([[1.0]]))) == pytest.approx(0, abs=1e-6)


@pytest.mark.claim("l1.nats")
def test_nats_are_explained_before_the_first_loss_plot(lesson):
    cells = lesson.notebook.cells
    plot = lesson.code_cell("plot_learning_curves(history")
    explained = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown"
                 and "measured in **nats**" in cell.source and "natural* logarithm" in cell.source]
    assert explained and explained[0] < plot


@pytest.mark.claim("l1.compile-config")
def test_the_other_compile_config_keys_are_arguments_of_compile():
    import inspect

    import keras

    parameters = inspect.signature(keras.Model.compile).parameters
    config = build_seed_model().get_compile_config()
    for key in set(config) - {"optimizer", "loss", "metrics"}:
        assert key in parameters, key


@pytest.mark.claim("l1.training-step")
def test_a_training_step_of_fit_is_loss_gradient_and_optimizer_update(moons):
    """§ 1: fit's step on one batch = the loss of the predictions, its gradient (GradientTape), Adam's update."""
    X_train, y_train, *_ = moons
    batch_X, batch_y = X_train[:32], y_train[:32]
    model = fresh_seed_model()
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    initial = [w.copy() for w in model.get_weights()]
    model.fit(batch_X, batch_y, epochs=1, batch_size=32, shuffle=False, verbose=0)

    by_hand = fresh_seed_model()
    by_hand.set_weights(initial)
    optimizer = Adam()
    with tf.GradientTape() as tape:
        loss = BinaryCrossentropy()(batch_y[:, None], by_hand(batch_X, training=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, by_hand.trainable_variables), by_hand.trainable_variables))
    assert any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights())), "the step moved the weights"
    for from_fit, from_hand in zip(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(from_fit, from_hand, rtol=0, atol=1e-6)


@pytest.mark.claim("l1.fit-loop")
def test_an_epoch_is_one_update_per_batch_and_validation_data_is_only_scored(moons):
    """§ 5: one epoch = one Adam update per batch of 32; validation_data and evaluate change no weight."""
    X_train, y_train, X_test, y_test = moons

    def trained(validation):
        model = fresh_seed_model()
        model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
        model.fit(X_train, y_train, epochs=2, batch_size=32, shuffle=False, verbose=0,
                  validation_data=(X_test, y_test) if validation else None)
        return model

    scored, plain = trained(True), trained(False)
    assert len(X_train) == 300 and int(scored.optimizer.iterations) == 2 * 10, "ceil(300 / 32) = 10 updates an epoch"
    assert all(np.array_equal(a, b) for a, b in zip(scored.get_weights(), plain.get_weights()))
    before = [w.copy() for w in scored.get_weights()]
    scored.evaluate(X_test, y_test, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, scored.get_weights()))


@pytest.mark.claim("l1.history")
def test_history_holds_the_loss_the_metric_and_their_val_twins(lesson):
    keys = lesson.text_of(lesson.code_cell("coursekit.seed_everything(42)\nmodel = Sequential("))
    assert all(f"'{key}'" in keys for key in ("loss", "accuracy", "val_loss", "val_accuracy")), keys
    assert "after epoch 150" in lesson.text_of(lesson.code_cell("first, last = history.history['loss']")), \
        "one loss value per epoch: the 150th is the last"


@pytest.mark.claim("l1.compile-config")
def test_the_compile_config_is_saved_with_the_model(tmp_path):
    """§ 4: 'what Keras saves along with a model file'."""
    import json
    import zipfile

    model = build_seed_model()
    model.save(tmp_path / "model.keras")
    saved = json.loads(zipfile.ZipFile(tmp_path / "model.keras").read("config.json"))["compile_config"]
    assert saved["loss"] == "binary_crossentropy" and saved["metrics"] == ["accuracy"]
    assert saved["optimizer"]["class_name"] == "Adam"
    assert saved == json.loads(json.dumps(model.get_compile_config()))


@pytest.mark.claim("l1.moons")
def test_the_moons_are_generated_in_code_and_no_straight_line_separates_them():
    X, y = make_moons(n_samples=400, noise=0.2, seed=0)
    again_X, again_y = make_moons(n_samples=400, noise=0.2, seed=0)
    assert np.array_equal(X, again_X) and np.array_equal(y, again_y), "the same seed, the same points"
    assert X.shape == (400, 2) and y.mean() == 0.5
    # A certificate: a class-0 point inside a triangle of class-1 points. Any half-plane holding every class-1
    # point holds that triangle, so no straight line can put the class-0 point on the other side.
    ones, zeros = X[y == 1], X[y == 0]

    def inside(p, a, b, c):
        signs = [np.sign((q2[0] - q1[0]) * (p[1] - q1[1]) - (q2[1] - q1[1]) * (p[0] - q1[0]))
                 for q1, q2 in ((a, b), (b, c), (c, a))]
        return abs(sum(signs)) == 3

    from itertools import combinations

    found = next((p for p in zeros for near in [ones[np.argsort(np.linalg.norm(ones - p, axis=1))[:8]]]
                  if any(inside(p, *triangle) for triangle in combinations(near, 3))), None)
    assert found is not None, "the classes could be separated by a line"


@pytest.mark.claim("l1.boundary-pieces")
def test_three_relu_units_draw_a_boundary_of_at_most_seven_straight_pieces(lesson, moons):
    """§ 5: the logit is affine wherever the three ReLUs keep their on/off pattern; three lines cut the plane into
    at most seven such regions, so the boundary (logit 0, P = 0.5) is at most seven straight pieces."""
    X_train, y_train, *_ = moons
    coursekit.seed_everything(42)
    model = build_seed_model()
    model.fit(X_train, y_train, epochs=30, batch_size=32, verbose=0)
    logit_of = tf.keras.Model(model.inputs[0], model.layers[2].output)  # the Dense(1) before the sigmoid
    xx, yy = np.meshgrid(np.linspace(-2.5, 3.5, 241), np.linspace(-2.0, 2.5, 181))
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype("float32")
    logits = np.asarray(logit_of(grid))[:, 0]
    hidden_kernel, hidden_bias = model.layers[0].get_weights()
    patterns = (grid @ hidden_kernel + hidden_bias) > 0
    regions = np.unique(patterns, axis=0)
    assert len(regions) <= 7
    pieces = 0
    for pattern in regions:
        here = np.all(patterns == pattern, axis=1)
        design = np.column_stack([grid[here], np.ones(here.sum())])
        fitted = design @ np.linalg.lstsq(design, logits[here], rcond=None)[0]
        assert np.abs(fitted - logits[here]).max() < 1e-4, "the logit is not affine inside a region"
        pieces += bool(logits[here].min() < 0 < logits[here].max())
    assert 1 <= pieces <= 7
    shown = lesson.text_of(lesson.code_cell("test_loss, test_accuracy = model.evaluate"))
    assert float(shown.split("test accuracy ")[1]) < 1.0, "some test points stay on the wrong side"
