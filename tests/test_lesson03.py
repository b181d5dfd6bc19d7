"""Lesson 3's claims (losses), checked against what Keras really does and against the executed lesson.

Tolerances: the NumPy formulas and Keras agree to float32 rounding — rtol 1e-5 and atol 1e-6 on
per-example values of order 1 (up to 1e-4 absolute for cross-entropies near the clip, which reach 16).
"""

import re

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np
import pytest
import tensorflow as tf

from coursekit import losses as L
from coursekit.datasets_extra import as_batches, make_regression_with_outliers
from coursekit.loss_metric_widgets import OutputLossWidget, ProbabilityLossWidget
from support.notebooks import ROOT

LESSON = ROOT / "course" / "03-losses.ipynb"
SEEDS = range(5)
LOSS_CLASSES = {"binary_crossentropy": "BinaryCrossentropy", "categorical_crossentropy": "CategoricalCrossentropy",
                "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
                "mean_squared_error": "MeanSquaredError", "mean_absolute_error": "MeanAbsoluteError",
                "huber": "Huber"}


@pytest.fixture(scope="module")
def lesson(executed_notebooks):
    return executed_notebooks(LESSON)


def random_case(name, seed, n=16):
    """Random labels and predictions in the format the loss ``name`` expects."""
    rng = np.random.default_rng(seed)
    if name == "binary_crossentropy":
        shape = (n, int(rng.integers(1, 4)))  # one output or several tags
        return rng.integers(0, 2, size=shape).astype("float32"), rng.uniform(0, 1, size=shape).astype("float32")
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        k = int(rng.integers(2, 6))
        labels = rng.integers(0, k, size=n)
        probabilities = rng.dirichlet(np.ones(k), size=n).astype("float32")
        if name == "categorical_crossentropy":
            return np.eye(k, dtype="float32")[labels], probabilities
        return labels, probabilities
    targets = rng.normal(0, 3, size=(n, int(rng.integers(1, 3)))).astype("float32")
    return targets, (targets + rng.normal(0, 2, size=targets.shape)).astype("float32")


# --- the NumPy formulas against Keras ----------------------------------------------------------

@pytest.mark.claim("l3.formulas", "l3.mean-of-examples")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(L.NUMPY_LOSSES))
def test_numpy_loss_matches_keras_per_example_and_mean(name, seed):
    truth, predicted = random_case(name, seed)
    ours = L.NUMPY_LOSSES[name](truth, predicted)
    theirs = tf.keras.losses.get(name)(truth, predicted).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    # The loss object averages the per-example values: that mean is what fit minimises.
    loss_object = getattr(tf.keras.losses, LOSS_CLASSES[name])()
    assert float(loss_object(truth, predicted)) == pytest.approx(float(np.mean(ours)), rel=1e-5)


@pytest.mark.claim("l3.from-logits")
@pytest.mark.parametrize("seed", SEEDS)
def test_bce_from_logits_matches_keras_even_for_huge_logits(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(20, 1)).astype("float32")
    logits = rng.normal(0, 30, size=(20, 1)).astype("float32")
    ours = L.binary_crossentropy_from_logits(labels, logits)
    theirs = tf.keras.losses.binary_crossentropy(labels, logits, from_logits=True).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    # and it is the probability formula wherever float32 can represent the probability
    moderate = np.abs(logits[:, 0]) < 8
    np.testing.assert_allclose(ours[moderate], L.binary_crossentropy(labels, L.sigmoid(logits))[moderate], rtol=1e-4)


@pytest.mark.claim("l3.clipping")
def test_numpy_bce_clips_like_keras_at_the_boundary():
    labels = np.array([[1.0], [0.0], [1.0], [0.0]], dtype="float32")
    probabilities = np.array([[0.0], [1.0], [-3.0], [7.0]], dtype="float32")  # outside (0, 1)
    ours = L.binary_crossentropy(labels, probabilities)
    theirs = tf.keras.losses.binary_crossentropy(labels, probabilities).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[0] == pytest.approx(-np.log(1e-7), rel=1e-5)      # clipped to epsilon: 16.118
    assert ours[1] == pytest.approx(15.942385, rel=1e-6)           # float32 1 - 1e-7 = 0.99999988


@pytest.mark.claim("l3.keras-defaults")
def test_keras_defaults_the_lesson_relies_on():
    import inspect

    assert tf.keras.backend.epsilon() == L.EPSILON == 1e-7
    assert inspect.signature(tf.keras.losses.Huber).parameters["delta"].default == L.HUBER_DELTA == 1.0


@pytest.mark.claim("l3.gradients", "l3.sigmoid-range")
@pytest.mark.parametrize("z", [-8.0, -2.0, 0.0, 3.0])
def test_gradient_formulas_match_gradient_tape(z):
    variable = tf.Variable([[z]])
    with tf.GradientTape(persistent=True) as tape:
        p = tf.math.sigmoid(variable)
        bce = tf.keras.losses.binary_crossentropy([[1.0]], p, from_logits=False)
        squared = tf.keras.losses.get("mean_squared_error")([[1.0]], p)
    assert float(tape.gradient(bce, variable)[0, 0]) == pytest.approx(float(L.bce_gradient_wrt_logit(z, 1.0)), rel=1e-4)
    assert float(tape.gradient(squared, variable)[0, 0]) == pytest.approx(
        float(L.mse_gradient_wrt_logit(z, 1.0)), rel=1e-4, abs=1e-9)


@pytest.mark.claim("l3.gradients")
def test_confident_mistakes_escape_slowly_under_squared_error():
    bce_steps, mse_steps = L.steps_to_escape("binary_crossentropy"), L.steps_to_escape("mean_squared_error")
    assert bce_steps < 20 and mse_steps > 50 * bce_steps
    assert L.steps_to_escape("mean_squared_error", z0=-1.0) < mse_steps  # it is the confidence that hurts


# --- the table -----------------------------------------------------------------------------------

@pytest.mark.claim("l3.loss-table")
def test_table_rows_name_losses_keras_knows_and_have_numpy_twins():
    for row in L.LOSS_TABLE:
        assert tf.keras.losses.get(row.loss_name).__name__ == row.loss_name
        assert row.loss_name in L.NUMPY_LOSSES
        assert row.activation in ("sigmoid", "softmax", "linear")
        assert row.loss.strip("'") == row.loss_name or row.loss_options


def test_table_covers_the_tasks_the_issue_names():
    tasks = " / ".join(row.task for row in L.LOSS_TABLE)
    for task in ("binary", "one-hot", "integer labels", "multi-label", "regression", "outliers"):
        assert task in tasks
    names = {row.loss_name for row in L.LOSS_TABLE}
    assert names == set(L.NUMPY_LOSSES)


@pytest.mark.claim("l3.from-logits")
def test_logits_row_builds_a_from_logits_loss():
    row = next(r for r in L.LOSS_TABLE if r.loss_options)
    loss = row.make_loss()
    assert isinstance(loss, tf.keras.losses.BinaryCrossentropy) and loss.get_config()["from_logits"] is True


def task_score(row, model, X, y):
    """Accuracy for classifiers (threshold 0 for logits), R² for regression."""
    out = np.asarray(model(X))
    if row.activation == "softmax":
        truth = y.argmax(axis=1) if y.ndim == 2 else y
        return float(np.mean(out.argmax(axis=1) == truth))
    if row.dataset in ("moons", "multilabel"):
        threshold = 0.0 if row.loss_options.get("from_logits") else 0.5
        return float(np.mean((out > threshold) == (y.reshape(out.shape) > 0.5)))
    clean = np.ones(len(y), dtype=bool)
    if row.dataset == "regression_outliers":  # a robust loss should fit the clean points, not the outliers
        _, _, is_outlier = make_regression_with_outliers(n_samples=len(y), outlier_fraction=0.1, seed=1)
        clean = ~is_outlier
    residual = (y - out[:, 0])[clean]
    return 1 - float(np.mean(residual**2) / np.var(y[clean]))


@pytest.mark.claim("l3.loss-table")
def test_lesson_shows_the_table_from_coursekit(lesson):
    markdown = "\n".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown")
    assert L.loss_table_markdown() in markdown


# --- the lesson's demonstrations -----------------------------------------------------------------

@pytest.mark.claim("l3.formulas")
def test_lesson_numpy_losses_agree_with_keras(lesson):
    text = lesson.text_of(lesson.code_cell("rng = np.random.default_rng(0)"))
    differences = [float(d) for d in re.findall(r"largest difference to Keras (\S+)", text)]
    assert len(differences) == 6 and max(differences) < 1e-5


@pytest.mark.claim("l3.keras-defaults")
def test_lesson_prints_epsilon_and_huber_delta(lesson):
    text = lesson.text_of(lesson.code_cell("import inspect"))
    assert f"epsilon: {tf.keras.backend.epsilon()}" in text and "Huber delta default: 1.0" in text


@pytest.mark.claim("l3.clipping")
def test_linear_outputs_outside_0_1_get_the_clipped_loss_and_no_gradient(lesson):
    raw = tf.Variable([[-1.5], [0.0], [0.3], [1.4]])
    with tf.GradientTape() as tape:
        loss = tf.keras.losses.binary_crossentropy(tf.ones_like(raw), raw)
    gradient = tape.gradient(loss, raw).numpy()[:, 0]
    assert gradient[0] == gradient[1] == gradient[3] == 0 and gradient[2] < 0
    assert float(loss[0]) == pytest.approx(16.1181, abs=1e-4)
    text = lesson.text_of(lesson.code_cell("raw_outputs = tf.Variable("))
    assert "raw output  -1.5   loss  16.1181   gradient   0.0000" in text
    assert "raw output   0.3   loss   1.2040   gradient  -3.3333" in text


@pytest.mark.claim("l3.float32-sigmoid")
def test_saturation_table_matches_keras(lesson):
    logits = tf.Variable([[15.0], [17.0], [20.0]])
    with tf.GradientTape(persistent=True) as tape:
        via_probability = tf.keras.losses.binary_crossentropy(tf.zeros_like(logits), tf.math.sigmoid(logits))
        via_logits = tf.keras.losses.binary_crossentropy(tf.zeros_like(logits), logits, from_logits=True)
    assert float(tf.math.sigmoid(tf.constant(17.0))) == 1.0  # float32 rounds it to exactly 1
    assert via_probability.numpy()[1] == pytest.approx(15.9424, abs=1e-4)
    assert tape.gradient(via_probability, logits).numpy()[1:, 0].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(via_logits.numpy(), [15.0, 17.0, 20.0], rtol=1e-6)
    text = lesson.text_of(lesson.code_cell("logits = tf.Variable("))
    rows = {int(line.split()[0]): [float(v) for v in line.split()[1:]] for line in text.splitlines()[1:]}
    assert rows[20] == [1.0, pytest.approx(15.9424), 0.0, 20.0, 1.0]
    assert rows[5][1] == pytest.approx(rows[5][3], abs=1e-3)  # no saturation yet at z = 5


@pytest.mark.claim("l3.keras-sigmoid-logits")
def test_keras_sigmoid_hands_its_logits_to_the_loss(lesson):
    logits = tf.constant([[20.0], [30.0]])
    loss = tf.keras.losses.binary_crossentropy(tf.zeros_like(logits), tf.keras.activations.sigmoid(logits))
    np.testing.assert_allclose(loss.numpy(), [20.0, 30.0], rtol=1e-6)
    text = lesson.text_of(lesson.code_cell("with tf.GradientTape() as tape:\n    probability = tf.keras.activations"))
    assert "20.     30." in text and "gradient: [0.9933 1.     1.     1.     1.     1.    ]" in text
    # the same probabilities copied out of TensorFlow (saved and read back) lose the logits and are clipped
    copied = np.array(tf.keras.activations.sigmoid(logits))
    np.testing.assert_allclose(tf.keras.losses.binary_crossentropy(np.zeros((2, 1)), copied).numpy(), 15.9424,
                               atol=1e-3)


def escape_steps_through_keras(loss_name, z0=-8.0):
    """Gradient descent (step size 1) on one logit until sigma(z) > 0.5, each gradient taken by GradientTape
    through Keras's own loss: the lesson's count, found without coursekit.losses."""
    loss_function = tf.keras.losses.get(loss_name)

    @tf.function
    def run():
        def step(z, steps):
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss = loss_function(tf.ones((1, 1), tf.float64), tf.reshape(tf.math.sigmoid(z), (1, 1)))
            return z - tape.gradient(loss, z), steps + 1

        return tf.while_loop(lambda z, steps: z <= 0.0, step, (tf.constant(z0, tf.float64), tf.constant(0)),
                             maximum_iterations=100_000)[1]

    return int(run())


@pytest.mark.claim("l3.gradients")
def test_lesson_gradient_and_escape_numbers(lesson):
    text = lesson.text_of(lesson.code_cell("z_wrong = tf.Variable("))
    (bce_tape, bce_formula), (mse_tape, mse_formula) = (
        [float(v) for v in re.findall(r"-?\d\.\d+(?:e-\d+)?", line)] for line in text.strip().splitlines()[:2])
    assert bce_tape == pytest.approx(bce_formula, rel=1e-5) and mse_tape == pytest.approx(mse_formula, rel=1e-5)
    shown = dict(re.findall(r"^(\w+): (\d+) steps$", text, re.M))
    expected = {name: escape_steps_through_keras(name) for name in ("binary_crossentropy", "mean_squared_error")}
    assert {name: int(steps) for name, steps in shown.items()} == expected
    assert expected["mean_squared_error"] > 50 * expected["binary_crossentropy"]


@pytest.mark.claim("l3.squared-error-bounded")
def test_probability_table_in_lesson_matches_numpy(lesson):
    text = lesson.text_of(lesson.code_cell("from coursekit import losses as numpy_losses"))
    assert f"binary cross-entropy {-np.log(0.01):.3f}   squared error {0.99**2:.3f}" in text
    # § 5: squared error of a probability never exceeds 1; cross-entropy keeps growing up to where Keras clips
    p = np.linspace(0.0, 1.0, 1001).reshape(-1, 1)
    ones = np.ones_like(p)
    assert float(np.max(tf.keras.losses.get("mean_squared_error")(ones, p))) <= 1.0
    bce = tf.keras.losses.binary_crossentropy(ones, p).numpy()
    assert np.all(np.diff(bce) <= 1e-6), "cross-entropy falls as p rises: it grows as p -> 0"
    assert bce.max() == pytest.approx(-np.log(1e-7), rel=1e-5) and round(float(bce.max()), 2) == 16.12


def expected_error(build, fit):
    with pytest.raises(ValueError) as raised:
        fit(build())
    return f"ValueError: {raised.value}"


@pytest.mark.claim("l3.label-format-errors")
def test_wrong_label_format_errors_are_the_ones_keras_raises(lesson):
    from coursekit.datasets_extra import make_blobs, one_hot
    from tensorflow.keras.layers import Activation, Dense, Input
    from tensorflow.keras.models import Sequential

    X, y = make_blobs(n_samples=90, n_classes=3, seed=0)

    def model_with(loss):
        model = Sequential([Input(shape=(2,)), Dense(8), Activation("relu"), Dense(3), Activation("softmax")])
        model.compile(optimizer="adam", loss=loss)
        return model

    categorical = expected_error(lambda: model_with("categorical_crossentropy"),
                                 lambda m: m.fit(X, y, epochs=1, verbose=0))
    sparse = expected_error(lambda: model_with("sparse_categorical_crossentropy"),
                            lambda m: m.fit(X, one_hot(y, 3), epochs=1, verbose=0))
    assert "must have the same rank" in categorical and "target.shape=(None,)" in categorical
    assert "shape" in sparse, "both messages talk about shapes"
    labels = tf.keras.utils.to_categorical(y, 3)
    np.testing.assert_array_equal(labels, one_hot(y, 3))
    model_with("categorical_crossentropy").fit(X, labels, epochs=1, verbose=0)  # converted labels: no error
    shown = [lesson.text_of(i).strip() for i, cell in enumerate(lesson.notebook.cells)
             if cell.cell_type == "code" and cell.source.startswith("wrong_labels = three_class_model()")]
    assert shown == [categorical, sparse]


def run_summary(lesson):
    text = lesson.text_of(lesson.code_cell("from coursekit.data import make_moons, train_test_split"))
    rows = {}
    for line in text.splitlines()[1:]:
        label, numbers = re.match(r"(.+?)\s+([\d.]+\s+[\d.]+\s+[\d.]+%)$", line).groups()
        early, final, clipped = numbers.split()
        rows[label.strip()] = (float(early), float(final), float(clipped.rstrip("%")))
    return rows


@pytest.mark.claim("l3.output-loss-runs")
def test_output_loss_runs_show_what_the_lesson_says(lesson):
    rows = run_summary(lesson)
    assert set(rows) == set(L.OUTPUT_LOSS_PAIRS)
    right, logits = rows["sigmoid + binary_crossentropy"], rows["linear + BinaryCrossentropy(from_logits=True)"]
    linear_bce, mse = rows["linear + binary_crossentropy"], rows["sigmoid + mean_squared_error"]
    assert right == logits                                   # "the same curve"
    assert linear_bce[0] < right[0] - 0.05                   # "starts slowest"
    assert linear_bce[2] > 10 and right[2] == 0              # clipped examples after training
    assert abs(mse[1] - right[1]) < 0.03                     # "about as well as cross-entropy"
    same = lesson.text_of(lesson.code_cell("same = np.allclose("))
    assert same.strip().endswith("True")


@pytest.mark.claim("l3.outliers")
def test_regression_with_outliers_pulls_only_the_mse_line(lesson):
    text = lesson.text_of(lesson.code_cell("from coursekit.datasets_extra import make_regression_with_outliers"))
    slopes = {loss: float(slope) for loss, slope in re.findall(r"^(\w+)\s+slope\s+([\d.]+)", text, re.M)}
    assert set(slopes) == {"mean_squared_error", "mean_absolute_error", "huber"}
    assert slopes["mean_squared_error"] > 3.0
    assert abs(slopes["mean_absolute_error"] - 2) < 0.25 and abs(slopes["huber"] - 2) < 0.25
    assert "outliers: 20 of 200 points" in text
    X, y, is_outlier = make_regression_with_outliers(n_samples=200, outlier_fraction=0.1, seed=0)
    assert is_outlier.sum() == 20
    off = y[is_outlier] - (2 * X[is_outlier, 0] + 1)
    assert np.all(np.abs(off - 15) < 1.5), "each outlier is 15 units off the true line"
    assert X[is_outlier, 0].min() > X[~is_outlier, 0].max(), "the outliers are the points at the right end"


# --- widgets, headless ---------------------------------------------------------------------------

@pytest.mark.claim("l3.probability-widget")
def test_probability_widget_moves_markers_to_the_loss_values():
    widget = ProbabilityLossWidget(probability=0.2)
    before = bytes(widget.view.widget.value)
    widget.slider.value = 0.05  # what a drag does: the observer hands the value to the update thread
    widget.runner.wait()
    for label in (0, 1):
        x, y = widget.markers[label, "binary_crossentropy"].get_data()
        assert x[0] == 0.05
        assert y[0] == pytest.approx(-np.log(0.05 if label == 1 else 0.95), rel=1e-6)
        _, y_squared = widget.markers[label, "mean_squared_error"].get_data()
        assert y_squared[0] == pytest.approx((label - 0.05) ** 2)
    assert bytes(widget.view.widget.value) != before and widget.view.renders == 2
    assert "BCE 2.996" in widget.readout.value and "BCE 2.996" in widget.view.widget.tooltip
    widget.view.close()


@pytest.mark.claim("l3.probability-widget")
def test_probability_widget_values_match_keras():
    widget = ProbabilityLossWidget()
    values = widget.update(probability=0.7)
    keras_bce = float(tf.keras.losses.binary_crossentropy([[1.0]], [[0.7]])[0])
    assert values[1, "binary_crossentropy"] == pytest.approx(keras_bce, rel=1e-5)
    widget.view.close()


@pytest.mark.claim("l3.output-loss-widget")
def test_output_loss_widget_switches_run():
    rng = np.random.default_rng(0)
    grid = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    runs = {name: {"accuracy": list(rng.uniform(0.5, 1, 10)), "loss": [1.0] * 10,
                   "grid": (*grid, rng.uniform(0, 1, (5, 5))), "output_range": (0.0, 1.0), "clipped_share": 0.0}
            for name in ("a", "b")}
    X, y = rng.normal(size=(20, 2)), (rng.uniform(size=20) > 0.5).astype(float)
    widget = OutputLossWidget(runs, X, y)
    widget.choice.value = "b"
    widget.runner.wait()
    np.testing.assert_array_equal(widget.image.get_array(), runs["b"]["grid"][2])
    assert widget.lines["b"].get_linewidth() > widget.lines["a"].get_linewidth()
    assert f"{runs['b']['accuracy'][-1]:.3f}" in widget.readout.value
    assert widget.view.renders == 2 and "b highlighted" in widget.view.widget.tooltip
    # the chosen run is drawn last, on top of the others
    assert widget._dynamic_artists().index(widget.lines["b"]) > widget._dynamic_artists().index(widget.lines["a"])
    widget.view.close()


@pytest.mark.claim("readme.coursekit")
def test_lesson_structure(lesson):
    first = lesson.notebook.cells[0].source
    assert first.startswith("# Lesson 3")
    setup = lesson.notebook.cells[lesson.code_cell("import coursekit")].source
    assert setup.index("import coursekit") < setup.index("import tensorflow") and "check_versions()" in setup
    markdown = "\n".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown")
    assert "## Key terms" in markdown and "## Check your understanding" in markdown
    assert "(../exercises/README.md)" in markdown and (ROOT / "exercises" / "README.md").exists()


# --- what metrics=['accuracy'] becomes, row by row -----------------------------------------------

def resolved_accuracy(model, X, y):
    """The class compile made of metrics=['accuracy'] for this model and these labels."""
    model.evaluate(X[:8], y[:8], verbose=0)  # compile's metrics are built when they first see data
    return type(model.metrics[-1].metrics[0]).__name__


@pytest.mark.claim("l3.accuracy-table", "suite.lesson-claims")
@pytest.mark.parametrize("row", L.LOSS_TABLE, ids=lambda row: row.task)
def test_accuracy_string_for_each_loss_table_row(row):
    """The table's "'accuracy' becomes" column, for the row's own output layer, loss and labels."""
    X, y, n_outputs = L.task_data(row.dataset, n_samples=40, seed=1)
    model = row.build_model(X.shape[1], n_outputs)
    model.compile(optimizer="adam", loss=row.make_loss(), metrics=["accuracy"])
    assert resolved_accuracy(model, X, y) == row.accuracy_becomes


@pytest.mark.claim("l3.loss-table")
@pytest.mark.parametrize("row", L.LOSS_TABLE, ids=lambda row: row.task)
def test_each_rows_output_layer_loss_and_metrics_train_together(row):
    """A row of the table (and of the cheat-sheet) as code: its output layer, loss and metrics= compile, the loss
    falls clearly on a small data set of the row's task, the model learns the task, the metric reports it."""
    from tensorflow.keras.layers import Dense, Input
    from tensorflow.keras.models import Sequential

    X, y, n_outputs = L.task_data(row.dataset, n_samples=240, seed=1)
    coursekit.seed_everything(0)
    model = Sequential([Input(shape=(X.shape[1],)), Dense(8, activation="relu"), L.build_output_layer(row, n_outputs)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02), loss=row.make_loss(), metrics=L.make_metrics(row))
    before = task_score(row, model, X, y)
    history = model.fit(as_batches(X, y), epochs=40, shuffle=False, verbose=0).history
    assert history["loss"][-1] < 0.6 * history["loss"][0], "the loss should fall clearly"
    after = task_score(row, model, X, y)
    assert after > max(before, 0.7), f"{row.task}: score {before:.2f} -> {after:.2f}"
    metric = model.metrics[-1].metrics[0]
    value = history[metric.name][-1]
    if row.dataset.startswith("regression"):
        assert type(metric).__name__ == "MeanAbsoluteError" and value < np.std(y)
    else:
        assert type(metric).__name__ in ("BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy")
        assert value > 0.85, f"{row.task}: {metric.name} {value:.3f}"
        if row.loss_options.get("from_logits"):
            assert metric.get_config()["threshold"] == 0.0


@pytest.mark.claim("l3.multi-label-accuracy")
def test_multi_label_accuracy_string_counts_only_the_most_probable_tag_against_the_first_true_tag():
    """'argmax: right only if the most probable tag is the first true tag; other tags ignored.'"""
    from tensorflow.keras.metrics import BinaryAccuracy, CategoricalAccuracy

    y_true = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype="float32")
    y_pred = np.array([[0.1, 0.2, 0.9], [0.9, 0.1, 0.8], [0.2, 0.9, 0.1]], dtype="float32")
    categorical, binary = CategoricalAccuracy(), BinaryAccuracy()
    categorical.update_state(y_true, y_pred)
    binary.update_state(y_true, y_pred)
    # rows: most probable tag 2 vs first true tag 1 (wrong); 0 vs 0 (right); 1 vs 0 (wrong)
    assert float(categorical.result()) == pytest.approx(1 / 3)
    # each tag thresholded at 0.5: rows 1 and 3 miss one tag each, row 2 is all right
    assert float(binary.result()) == pytest.approx(7 / 9)


@pytest.mark.claim("l3.accuracy-table", "l3.from-logits")
def test_for_logits_the_accuracy_string_thresholds_the_logit_at_0_5():
    """'threshold 0.5 on the logit z: class 1 only when p > 0.62, not p > 0.5'."""
    row = next(r for r in L.LOSS_TABLE if r.loss_options.get("from_logits"))
    X, y, _ = L.task_data(row.dataset, n_samples=40, seed=1)
    model = row.build_model(X.shape[1], 1)
    model.compile(optimizer="adam", loss=row.make_loss(), metrics=["accuracy"])
    model.evaluate(X[:8], y[:8], verbose=0)
    assert model.metrics[-1].metrics[0].get_config()["threshold"] == 0.5
    assert round(float(L.sigmoid(np.float64(0.5))), 2) == 0.62
    from tensorflow.keras.metrics import BinaryAccuracy

    logit = np.array([[0.3]], dtype="float32")  # p = 0.57: class 1
    default, zero = BinaryAccuracy(), BinaryAccuracy(threshold=0.0)
    default.update_state(np.array([[1.0]]), logit)
    zero.update_state(np.array([[1.0]]), logit)
    assert float(default.result()) == 0.0 and float(zero.result()) == 1.0


@pytest.mark.claim("l3.accuracy-table")
def test_for_regression_the_accuracy_string_is_meaningless():
    """BinaryAccuracy compares real-valued targets with 0 or 1: a perfect regression model scores ~0."""
    from tensorflow.keras.metrics import BinaryAccuracy

    rng = np.random.default_rng(0)
    y = rng.normal(3, 2, size=(100, 1)).astype("float32")
    metric = BinaryAccuracy()
    metric.update_state(y, y)  # perfect predictions
    assert float(metric.result()) < 0.05


@pytest.mark.claim("l3.accuracy-table")
def test_lesson_shows_the_accuracy_table_from_coursekit(lesson):
    markdown = "\n".join(cell.source for cell in lesson.notebook.cells if cell.cell_type == "markdown")
    assert L.accuracy_table_markdown() in markdown
    text = " ".join(markdown.split())
    assert "never from the loss" in text and "from the loss and the output shape" not in text


@pytest.mark.claim("l3.multi-label-accuracy")
def test_lesson_shows_the_multi_label_trap(lesson):
    text = lesson.text_of(lesson.code_cell("from tensorflow.keras.metrics import BinaryAccuracy"))
    became, accuracy = re.search(r"'accuracy' became (\w+): ([\d.]+)", text).groups()
    binary = float(re.search(r"share of right yes/no answers: ([\d.]+)", text).group(1))
    assert became == "CategoricalAccuracy"
    assert binary > 0.95, "'the tagger answers almost every yes/no question right'"
    assert float(accuracy) < binary - 0.15, "'yet accuracy reports far less'"


@pytest.mark.claim("l3.third-example")
def test_the_third_example_costs_the_most_1_204_nats():
    per_example = tf.keras.losses.binary_crossentropy([[1.0], [0.0], [1.0]], [[0.9], [0.2], [0.3]]).numpy()
    assert int(per_example.argmax()) == 2
    assert per_example[2] == pytest.approx(-np.log(0.3), rel=1e-5) and round(-np.log(0.3), 3) == 1.204


@pytest.mark.claim("l3.best-constant")
def test_the_best_constant_prediction_is_the_mean_for_mse_and_the_median_for_mae():
    """The table's regression rows: of all constant predictions, Keras's MSE is lowest at the mean, its MAE at the
    median (on skewed targets, where the two differ)."""
    y = np.random.default_rng(0).exponential(2.0, size=(101, 1)).astype("float32")
    assert abs(float(np.mean(y)) - float(np.median(y))) > 0.3
    candidates = np.linspace(0.0, 6.0, 601, dtype="float32")
    predictions = np.broadcast_to(candidates, (101, 601))
    targets = np.broadcast_to(y, (101, 601))[..., None]
    mse = np.mean(tf.keras.losses.get("mean_squared_error")(targets, predictions[..., None]).numpy(), axis=0)
    mae = np.mean(tf.keras.losses.get("mean_absolute_error")(targets, predictions[..., None]).numpy(), axis=0)
    assert candidates[np.argmin(mse)] == pytest.approx(float(np.mean(y)), abs=0.01)
    assert candidates[np.argmin(mae)] == pytest.approx(float(np.median(y)), abs=0.01)


@pytest.mark.claim("l3.softmax-competes")
def test_a_softmax_makes_the_tags_compete():
    """A softmax's K probabilities sum to 1, so at most one tag can be 'yes'; K sigmoids can say yes to several."""
    logits = np.random.default_rng(0).normal(0, 3, size=(1000, 3)).astype("float32")
    softmax = tf.keras.activations.softmax(logits).numpy()
    sigmoids = tf.keras.activations.sigmoid(logits).numpy()
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, rtol=1e-5)
    assert (softmax > 0.5).sum(axis=1).max() == 1
    assert (sigmoids > 0.5).sum(axis=1).max() == 3
    raised = logits.copy()
    raised[:, 0] += 1.0  # one tag more likely: the others lose probability under softmax, not under sigmoids
    assert np.all(tf.keras.activations.softmax(raised).numpy()[:, 1:] < softmax[:, 1:])
    np.testing.assert_array_equal(tf.keras.activations.sigmoid(raised).numpy()[:, 1:], sigmoids[:, 1:])


@pytest.mark.claim("l3.same-multi-class-loss")
def test_the_two_multi_class_losses_are_the_same_loss():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, size=50)
    probabilities = rng.dirichlet(np.ones(4), size=50).astype("float32")
    one_hot_rows = np.eye(4, dtype="float32")[classes]
    np.testing.assert_allclose(tf.keras.losses.categorical_crossentropy(one_hot_rows, probabilities).numpy(),
                               tf.keras.losses.sparse_categorical_crossentropy(classes, probabilities).numpy(), rtol=1e-6)
