"""The fast paths behind lesson 2's widgets are still real Keras, and never retrace.

* ``FastTrainer`` (live retraining) ends with the weights and per-epoch logs of ``model.fit``
  on the same batches. Stated tolerance: 1e-6 absolute on every weight and log value (float32
  rounding); on the development machine the two are bit-identical.
* ``TrajectoryRunner`` (trajectory explorer) moves its points exactly as the same Keras
  optimizers do when applied step by step, eagerly.
* Changing hyperparameters assigns variables: the graphs are traced once.
"""

import coursekit  # noqa: F401  (quiet TensorFlow before it loads)
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.keras.optimizers import SGD, Adam, RMSprop

from coursekit.data import make_moons
from coursekit.fast_training import FastTrainer, epoch_orders
from coursekit.models import build_seed_model
from coursekit.optimizers import (SURFACES, TrajectoryRunner, TunableHyperparameter, keras_updates, make_optimizer,
                                  make_tunable, set_hyperparameters)

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("fast-training")
TOLERANCE = 1e-6  # absolute, on weights and on per-epoch loss/accuracy
SETTINGS = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}


@pytest.fixture(scope="module")
def moons():
    return make_moons(400, noise=0.2, seed=0)


def seeded_model():
    coursekit.seed_everything(42)
    return build_seed_model()


def fit_reference(initial_weights, X, y, orders, batch_size, **settings):
    """model.fit on the same batches: one epoch per call, data in the trainer's order."""
    model = build_seed_model(compile_model=False)
    model.set_weights(initial_weights)
    model.compile(optimizer=Adam(**settings), loss="binary_crossentropy", metrics=["accuracy"])
    logs = {"loss": [], "accuracy": []}
    for order in orders:
        history = model.fit(X[order], y[order], epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
        for name in logs:
            logs[name] += history.history[name]
    return model.get_weights(), {name: np.array(values) for name, values in logs.items()}


def max_difference(left, right):
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(left, right))


@pytest.mark.claim("l2.fast-trainer-equals-fit")
def test_fast_path_reaches_the_weights_of_model_fit_on_the_same_batches(moons):
    X, y = moons
    model = seeded_model()
    trainer = FastTrainer(model, X, y, epochs=50, batch_size=32, seed=3)
    trainer.train(learning_rate=0.05)  # another setting first: the graph is reused, the state reset
    logs = trainer.train(**SETTINGS)
    weights, fit_logs = fit_reference(trainer.initial_weights, X, y, trainer.orders, 32, **SETTINGS)
    assert max_difference(model.get_weights(), weights) <= TOLERANCE
    assert max_difference([logs["loss"], logs["accuracy"]], [fit_logs["loss"], fit_logs["accuracy"]]) <= TOLERANCE
    assert trainer.traces == 1
    # The comparison can fail: training changed the weights a lot, and other settings differ.
    assert max_difference(weights, trainer.initial_weights) > 0.1
    trainer.train(learning_rate=0.02)
    assert max_difference(model.get_weights(), weights) > 1e-3


def test_without_shuffling_one_fit_call_gives_the_same_weights(moons):
    X, y = moons
    model = seeded_model()
    trainer = FastTrainer(model, X, y, epochs=8, batch_size=32, shuffle=False)
    logs = trainer.train(learning_rate=0.003)
    reference = build_seed_model(compile_model=False)
    reference.set_weights(trainer.initial_weights)
    reference.compile(optimizer=Adam(learning_rate=0.003), loss="binary_crossentropy", metrics=["accuracy"])
    history = reference.fit(X, y, epochs=8, batch_size=32, shuffle=False, verbose=0)
    assert max_difference(model.get_weights(), reference.get_weights()) <= TOLERANCE
    np.testing.assert_allclose(logs["loss"], history.history["loss"], atol=TOLERANCE, rtol=0)


@pytest.mark.claim("l2.no-retrace")
def test_no_retracing_when_the_sliders_move(moons):
    X, y = moons
    trainer = FastTrainer(seeded_model(), X, y, epochs=2, batch_size=32)
    finals = set()
    for settings in ({"learning_rate": 0.001}, {"learning_rate": 0.1, "beta_1": 0.5},
                     {"beta_2": 0.9, "epsilon": 1e-3}, {"learning_rate": 0.02, "beta_1": 0.0}):
        finals.add(round(float(trainer.train(**settings)["loss"][-1]), 6))
    assert trainer.traces == 1
    assert trainer.tracing_count == 1
    assert len(finals) == 4, "each setting must really train differently"


@pytest.mark.claim("course.seeded", "l2.retrainer-model")
def test_training_is_repeatable_and_starts_from_the_initial_weights(moons):
    X, y = moons
    model = seeded_model()
    trainer = FastTrainer(model, X, y, epochs=3, batch_size=32)
    first = trainer.train(learning_rate=0.01)
    weights = model.get_weights()
    again = trainer.train(learning_rate=0.01)
    assert max_difference(weights, model.get_weights()) == 0
    np.testing.assert_array_equal(first["loss"], again["loss"])
    trainer.reset()
    assert max_difference(model.get_weights(), trainer.initial_weights) == 0
    assert int(trainer.optimizer.iterations) == 0


def test_epoch_orders_are_permutations_and_seeded():
    orders = epoch_orders(10, 4, seed=1)
    assert orders.shape == (4, 10)
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders, epoch_orders(10, 4, seed=1))
    np.testing.assert_array_equal(epoch_orders(5, 2, shuffle=False), [[0, 1, 2, 3, 4]] * 2)


@pytest.mark.parametrize("optimizer_class, settings", [
    (Adam, {"learning_rate": 0.05, "beta_1": 0.7, "beta_2": 0.95, "epsilon": 1e-3}),
    (RMSprop, {"learning_rate": 0.02, "rho": 0.8, "epsilon": 1e-4}),
    (SGD, {"learning_rate": 0.1, "momentum": 0.6}),
])
def test_a_tunable_optimizer_equals_a_fresh_one_with_those_settings(optimizer_class, settings):
    rng = np.random.default_rng(5)
    start, gradients = rng.normal(size=4), rng.normal(size=(6, 4)) * [1, 10, 0.1, 3]
    # Tunable, built with other values first, then set: the values in the variables are used.
    built_with = {name: (0.3 if name in ("beta_1", "momentum", "rho") else value * 2)
                  for name, value in settings.items()}
    tunable = make_tunable(optimizer_class(**built_with))
    set_hyperparameters(tunable, **settings)
    expected = keras_updates(optimizer_class(**settings), start, gradients)
    np.testing.assert_array_equal(keras_updates(tunable, start, gradients), expected)


@pytest.mark.claim("l2.momentum")
def test_tunable_momentum_of_zero_is_plain_sgd():
    rng = np.random.default_rng(6)
    start, gradients = rng.normal(size=3), rng.normal(size=(5, 3))
    optimizer = make_optimizer("SGD + momentum", learning_rate=0.1, beta_1=0.9)
    set_hyperparameters(optimizer, momentum=0.0)
    np.testing.assert_allclose(keras_updates(optimizer, start, gradients),
                               keras_updates(SGD(learning_rate=0.1), start, gradients), atol=1e-7)
    assert isinstance(optimizer.momentum, TunableHyperparameter)


def eager_path(name, surface, steps, settings):
    """The same Keras optimizer applied step by step, eagerly, outside any tf.function."""
    optimizer = {"SGD": lambda: SGD(settings["learning_rate"]),
                 "SGD + momentum": lambda: SGD(settings["learning_rate"], momentum=settings["beta_1"]),
                 "RMSprop": lambda: RMSprop(settings["learning_rate"], rho=settings["beta_2"],
                                            epsilon=settings["epsilon"]),
                 "Adam": lambda: Adam(settings["learning_rate"], beta_1=settings["beta_1"],
                                      beta_2=settings["beta_2"], epsilon=settings["epsilon"])}[name]()
    point = tf.Variable(np.array(surface.start, dtype="float32"))
    path = [point.numpy().copy()]
    for _ in range(steps):
        with tf.GradientTape() as tape:
            height = surface(point[0], point[1])
        optimizer.apply_gradients([(tape.gradient(height, point), point)])
        path.append(point.numpy().copy())
    return np.array(path)


@pytest.mark.claim("l2.trajectories-are-keras")
def test_trajectories_are_what_the_keras_optimizers_do_step_by_step():
    runner = TrajectoryRunner()
    settings = {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}
    surface = SURFACES["rosenbrock"]
    result = runner.run("rosenbrock", steps=40, **settings)
    for name in runner.names:
        np.testing.assert_allclose(result.paths[name], eager_path(name, surface, 40, settings), atol=1e-5, rtol=0)
    assert len({round(float(result.paths[name][-1][0]), 5) for name in runner.names}) == 4


def test_trajectory_runner_traces_once_per_surface():
    runner = TrajectoryRunner()
    ends = []
    for learning_rate, beta_1, steps in ((0.001, 0.9, 10), (0.01, 0.5, 30), (0.1, 0.0, 5), (0.02, 0.99, 50)):
        result = runner.run("bowl", steps=steps, learning_rate=learning_rate, beta_1=beta_1)
        assert result.paths["Adam"].shape == (steps + 1, 2)
        ends.append(result.paths["Adam"][-1])
    assert runner.traces == 1
    runner.run("saddle", steps=5)
    assert runner.traces == 2
    assert len({tuple(np.round(end, 6)) for end in ends}) == 4


def test_trajectory_runner_settings_not_given_are_kerass_defaults():
    """Lesson 2's printed experiments pass only some settings: the others must not be the last run's."""
    runner = TrajectoryRunner()
    assert runner.run("bowl", steps=3, epsilon=1.0).settings["epsilon"] == 1.0
    default = runner.run("bowl", steps=3)
    adam = Adam().get_config()
    assert default.settings == {**{name: pytest.approx(adam[name]) for name in ("learning_rate", "beta_1", "beta_2",
                                                                              "epsilon")}, "steps": 3}
    np.testing.assert_array_equal(default.paths["Adam"], TrajectoryRunner().run("bowl", steps=3).paths["Adam"])


@pytest.mark.claim("l2.xla")
def test_xla_compiled_trainer_matches_fit_to_float32_rounding(moons):
    """Lesson 2, Going further C: the widget's trainer (jit_compile=True) agrees with fit within 1e-5."""
    X, y = moons
    model = seeded_model()
    trainer = FastTrainer(model, X, y, epochs=50, batch_size=32, jit_compile=True)
    logs = trainer.train(**SETTINGS)
    weights, fit_logs = fit_reference(trainer.initial_weights, X, y, trainer.orders, 32, **SETTINGS)
    assert max_difference(model.get_weights(), weights) < 1e-5
    assert max_difference([logs["loss"]], [fit_logs["loss"]]) < 1e-5
