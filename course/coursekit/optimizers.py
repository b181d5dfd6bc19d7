"""Keras's own optimizers, made tunable without retracing, on 2-D test surfaces.

Lesson 2 moves Adam's hyperparameters with sliders. A Keras 3 optimizer reads ``beta_1``,
``beta_2``, ``epsilon``, ``rho`` and ``momentum`` as plain Python floats inside
``update_step``; a ``tf.function`` bakes such floats into its graph, so every new slider value
would trace (build) the graph again, which takes longer than the whole update. ``make_tunable``
swaps those floats for ``TunableHyperparameter``\\ s, which hold ``tf.Variable``\\ s
(``learning_rate`` already is one): the optimizer's own
``update_step`` runs unchanged, reads the variables, and one traced graph serves every value.

``TrajectoryRunner`` then runs several real Keras optimizers side by side on a surface such as
Rosenbrock's banana valley, all steps inside one ``tf.function``.
"""

import functools
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow import keras

# The optimizers the lesson compares. The sliders are shared: beta_1 is the decay rate of the
# gradient average (SGD's momentum, Adam's first moment); beta_2 that of the squared-gradient
# average (RMSprop's rho, Adam's second moment).
OPTIMIZER_NAMES = ("SGD", "SGD + momentum", "RMSprop", "Adam")
DEFAULT_SETTINGS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

# Which optimizer attribute each slider sets.
_SLIDER_TO_ATTRIBUTE = {
    "SGD": {},
    "SGD + momentum": {"beta_1": "momentum"},
    "RMSprop": {"beta_2": "rho", "epsilon": "epsilon"},
    "Adam": {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"},
}


class TunableHyperparameter:
    """An optimizer hyperparameter kept in a ``tf.Variable``, in place of a Python float.

    Keras's ``update_step`` uses its hyperparameters in three ways, and this object supports all
    three without a new graph per value:

    * in TensorFlow operations (``ops.cast(self.beta_1, ...)``, ``ops.add(..., self.epsilon)``):
      it converts to the variable's current value;
    * in ``1 - self.beta_1``: it returns a second variable holding ``1 - value`` computed in
      Python's float64 and then rounded to float32 — exactly the number Keras gets from a Python
      float, so training matches ``fit`` to the last bit where the graph allows;
    * in ``if self.momentum != 0`` (``SGD``, ``RMSprop``, decided while the graph is traced): it
      answers "yes". The optimizer keeps the momentum code it was built with; a value of 0 then
      simply adds nothing.
    """

    dtype = "float32"

    def __init__(self, value, name):
        self.variable = tf.Variable(float(value), dtype=tf.float32, trainable=False, name=name)
        self.one_minus = tf.Variable(1.0 - float(value), dtype=tf.float32, trainable=False,
                                     name=f"one_minus_{name}")

    def assign(self, value):
        self.variable.assign(float(value))
        self.one_minus.assign(1.0 - float(value))

    def numpy(self):
        return self.variable.numpy()

    def __float__(self):
        return float(self.variable.numpy())

    def __rsub__(self, other):
        if isinstance(other, (int, float)) and other == 1:
            return tf.convert_to_tensor(self.one_minus)
        return other - tf.convert_to_tensor(self.variable)

    def __sub__(self, other):
        return tf.convert_to_tensor(self.variable) - other

    def __mul__(self, other):
        return tf.convert_to_tensor(self.variable) * other

    __rmul__ = __mul__

    def __add__(self, other):
        return tf.convert_to_tensor(self.variable) + other

    __radd__ = __add__

    def __ne__(self, other):
        return True

    def __gt__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<tunable {self.variable.name.split(':')[0]}={float(self):.4g}>"


tf.register_tensor_conversion_function(
    TunableHyperparameter,
    lambda value, dtype=None, name=None, as_ref=False: tf.convert_to_tensor(value.variable, dtype=dtype,
                                                                           name=name),
)


def make_tunable(optimizer, names=None):
    """Replace the optimizer's float hyperparameters ``names`` by ``tf.Variable``\\ s, in place.

    Default: every one of ``beta_1``, ``beta_2``, ``epsilon``, ``rho``, ``momentum`` it has
    (``momentum`` only if it is not 0: Keras's SGD and RMSprop leave out the momentum code when it
    is 0, and a tunable one would put it back). Returns the optimizer. Change values with
    ``set_hyperparameters``.
    """
    if names is None:
        names = [name for name in ("beta_1", "beta_2", "epsilon", "rho", "momentum")
                 if isinstance(getattr(optimizer, name, None), (int, float))
                 and not (name == "momentum" and getattr(optimizer, name) == 0)]
    for name in names:
        value = getattr(optimizer, name)
        if isinstance(value, (int, float)):  # else: already tunable
            setattr(optimizer, name, TunableHyperparameter(value, name))
    return optimizer


def set_hyperparameters(optimizer, **values):
    """Assign new values to a tunable optimizer's hyperparameters (no retracing needed)."""
    for name, value in values.items():
        target = optimizer.learning_rate if name == "learning_rate" else getattr(optimizer, name)
        if not hasattr(target, "assign"):
            raise TypeError(f"{name} of {type(optimizer).__name__} is a Python number; call make_tunable first")
        target.assign(value)


def reset_optimizer_state(optimizer):
    """Zero the step counter and every slot variable (momentums, velocities), keep the settings."""
    learning_rate = optimizer.learning_rate
    for variable in optimizer.variables:
        if variable is not learning_rate:
            variable.assign(tf.zeros(variable.shape, variable.dtype))


def make_optimizer(name, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """A tunable Keras optimizer for one of ``OPTIMIZER_NAMES``, set from the shared sliders."""
    if name == "SGD":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    elif name == "SGD + momentum":
        # Built with a non-zero momentum so that Keras creates the momentum slots.
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=beta_1 or 0.9)
    elif name == "RMSprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate, rho=beta_2, epsilon=epsilon)
    elif name == "Adam":
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                                          epsilon=epsilon)
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZER_NAMES}")
    make_tunable(optimizer)
    apply_settings(name, optimizer, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    return optimizer


def apply_settings(name, optimizer, **sliders):
    """Set a ``make_optimizer`` optimizer from slider values (the ones it does not use are ignored)."""
    values = {"learning_rate": sliders["learning_rate"]} if "learning_rate" in sliders else {}
    for slider, attribute in _SLIDER_TO_ATTRIBUTE[name].items():
        if slider in sliders:
            values[attribute] = sliders[slider]
    set_hyperparameters(optimizer, **values)


def keras_updates(optimizer, initial, gradients):
    """Let a real Keras optimizer apply a given sequence of gradients to a weight vector.

    Returns the weights before and after every step, shape ``(len(gradients) + 1, n)``: what
    Keras does with exactly these gradients, to compare with an update rule written by hand.
    """
    weights = keras.Variable(np.asarray(initial, dtype="float32"), name="w")
    history = [weights.numpy().copy()]
    for gradient in gradients:
        optimizer.apply_gradients([(tf.constant(gradient, dtype=tf.float32), weights)])
        history.append(weights.numpy().copy())
    return np.array(history)


def apply_rule(step, initial, gradients, state=(), **settings):
    """Run an update rule written by hand over a sequence of gradients, like ``keras_updates``.

    ``step(w, g, *state, **settings)`` returns the new ``w``, or ``(w, *state)`` when the rule
    keeps state (a velocity, moment estimates). If ``step`` has a parameter ``t``, it gets the
    step number, counted from 1. Returns the weights before and after every step.
    """
    import inspect

    takes_step_number = "t" in inspect.signature(step).parameters
    w = np.asarray(initial, dtype="float64")
    state = tuple(state)
    history = [w]
    for t, gradient in enumerate(np.asarray(gradients, dtype="float64"), start=1):
        result = step(w, gradient, *state, **({"t": t} if takes_step_number else {}), **settings)
        if isinstance(result, tuple):
            w, *state = result
        else:
            w = result
        history.append(w)
    return np.array(history)


# --------------------------------------------------------------------------- test surfaces


@dataclass(frozen=True)
class Surface:
    """A 2-D function to minimise, with what a plot of it needs."""

    key: str
    title: str
    formula: str
    function: object  # f(x, y) with NumPy or TensorFlow arrays
    start: tuple
    minima: tuple  # the points of lowest value
    minimum_value: float
    xlim: tuple
    ylim: tuple
    log_levels: bool = False

    def __call__(self, x, y):
        return self.function(x, y)


SURFACES = {
    surface.key: surface
    for surface in (
        Surface(
            key="bowl",
            title="Elongated bowl",
            formula="f(x, y) = (x² + 25·y²) / 2",
            function=lambda x, y: 0.5 * (x**2 + 25.0 * y**2),
            start=(-1.8, 0.6), minima=((0.0, 0.0),), minimum_value=0.0,
            xlim=(-2.0, 2.0), ylim=(-1.0, 1.0),
        ),
        Surface(
            key="rosenbrock",
            title="Rosenbrock's banana valley",
            formula="f(x, y) = (1 − x)² + 100·(y − x²)²",
            function=lambda x, y: (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2,
            start=(-1.2, 1.0), minima=((1.0, 1.0),), minimum_value=0.0,
            xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), log_levels=True,
        ),
        Surface(
            key="saddle",
            title="Saddle point between two valleys",
            formula="f(x, y) = x² − y² + y⁴/4",
            function=lambda x, y: x**2 - y**2 + 0.25 * y**4,
            start=(-1.5, 0.01), minima=((0.0, -np.sqrt(2.0)), (0.0, np.sqrt(2.0))), minimum_value=-1.0,
            xlim=(-2.0, 2.0), ylim=(-2.2, 2.2),
        ),
    )
}


@dataclass
class Trajectories:
    """The result of ``TrajectoryRunner.run``: one path per optimizer."""

    surface: Surface
    settings: dict
    paths: dict  # optimizer name -> array (steps + 1, 2) of points, the start first
    values: dict  # optimizer name -> array (steps + 1,) of f at those points

    def first_step_length(self, name):
        return float(np.linalg.norm(self.paths[name][1] - self.paths[name][0]))

    def final_gap(self, name):
        """f(last point) − f(minimum): how far the optimizer still is from the lowest value."""
        return float(self.values[name][-1] - self.surface.minimum_value)

    def diverged(self, name):
        """Overflowed to inf/NaN, or ended more than 1000 times further from f* than it started."""
        gaps = self.values[name] - self.surface.minimum_value
        return not np.all(np.isfinite(self.paths[name])) or bool(gaps[-1] > 1000 * gaps[0])


class TrajectoryRunner:
    """Run real Keras optimizers from a surface's start point, all steps in one ``tf.function``.

    Each optimizer moves its own 2-D ``keras.Variable``: gradient from a ``GradientTape``, update
    by ``optimizer.apply_gradients``, exactly as in training. There is one traced function per
    surface; learning rate, betas, epsilon and the number of steps are inputs or variables, so
    changing them never traces again (``traces`` counts the tracings). By default XLA compiles
    it (``jit_compile``): the whole loop becomes one fused kernel, 1000 steps of four optimizers
    in well under a millisecond instead of ~40 ms, for ~0.5 s of compiling per surface.
    """

    def __init__(self, names=OPTIMIZER_NAMES, max_steps=2000, jit_compile=True):
        self.names = tuple(names)
        self.jit_compile = jit_compile
        self.max_steps = max_steps
        self.optimizers = {name: make_optimizer(name, **DEFAULT_SETTINGS) for name in self.names}
        self.points = {name: keras.Variable(np.zeros(2, "float32"), name=f"point_{i}")
                       for i, name in enumerate(self.names)}
        for name in self.names:
            self.optimizers[name].build([self.points[name]])
        self.traces = 0
        self._functions = {}

    def _function_for(self, surface):
        if surface.key not in self._functions:
            # A partial, not a lambda: TensorFlow counts tracings per code object and warns when one
            # traces often, but one graph per surface is the design, not a retracing problem.
            self._functions[surface.key] = tf.function(
                functools.partial(self._run_graph, surface), jit_compile=self.jit_compile,
                input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.float32)],
            )
        return self._functions[surface.key]

    def _run_graph(self, surface, steps, start):
        self.traces += 1  # Python code runs only while tracing
        for name in self.names:
            self.points[name].assign(start)
            reset_optimizer_state(self.optimizers[name])
        # A fixed size (the longest path) whatever ``steps`` is: XLA compiles for fixed shapes,
        # so a size that followed the steps slider would recompile at every new value.
        path = tf.TensorArray(tf.float32, size=self.max_steps + 1, element_shape=[len(self.names), 2])
        path = path.write(0, tf.stack([self.points[name].value for name in self.names]))

        def one_step(step, path):
            for name in self.names:
                point = self.points[name]
                with tf.GradientTape() as tape:
                    tape.watch(point.value)
                    height = surface(point.value[0], point.value[1])
                gradient = tape.gradient(height, point.value)
                self.optimizers[name].apply_gradients([(gradient, point)])
            return step + 1, path.write(step + 1, tf.stack([self.points[name].value for name in self.names]))

        # A constant bound on the iterations: XLA needs one, and ``for step in tf.range(steps)``
        # would make ``steps`` that bound, to be compiled anew for every value.
        _, path = tf.while_loop(lambda step, _: step < steps, one_step, [tf.constant(0), path],
                                maximum_iterations=self.max_steps)
        return path.stack()

    def run(self, surface="bowl", steps=100, **settings):
        """Paths of every optimizer after ``steps`` steps; settings not given are Keras's defaults."""
        surface = SURFACES[surface] if isinstance(surface, str) else surface
        if not 0 <= steps <= self.max_steps:
            raise ValueError(f"steps must be between 0 and {self.max_steps}, got {steps}")
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; use {sorted(DEFAULT_SETTINGS)}")
        settings = {**DEFAULT_SETTINGS, **settings}  # each run from Keras's defaults, not the last run's
        for name in self.names:
            apply_settings(name, self.optimizers[name], **settings)
        points = self._function_for(surface)(tf.constant(steps, tf.int32),
                                             tf.constant(surface.start, tf.float32)).numpy()[: steps + 1]
        # A diverging optimizer overflows to inf/NaN: keep its path up to there.
        with np.errstate(all="ignore"):
            paths = {name: points[:, i, :].astype("float64") for i, name in enumerate(self.names)}
            values = {name: surface(path[:, 0], path[:, 1]) for name, path in paths.items()}
        return Trajectories(surface, dict(settings, steps=steps), paths, values)
