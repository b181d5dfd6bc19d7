"""Checks behind the graded exercises: friendly for students, exact for grading.

The exercises' test cells (visible and hidden) call these functions. They are designed to

* accept every valid answer: a loss as a string or an object, ``'accuracy'`` or
  ``BinaryAccuracy()``, a linear output with ``from_logits=True``, ``Adam()`` or
  ``Adam(learning_rate=0.001)``, answer letters in any case with any spacing;
* reject every wrong one, by checking *behaviour* on probe data (what loss value the compiled
  model really computes, what its metric really reports) rather than spelling;
* never be fooled by an answer object that overrides ``__eq__``: answers are copied into plain
  built-in values (``type(x) is str``, a new ``frozenset``) before any comparison;
* fail with a message that says what is wrong and gives a hint, not a traceback.

This module contains no answer key: the quiz's keys live only in the hidden tests of
``solutions/``, which nbgrader strips from the student release.
"""

import hashlib
import inspect
import json
import logging
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = [
    "CheckFailed", "answered", "choice", "choices", "check_task_model", "check_output_and_loss",
    "check_metrics", "check_adam_settings", "probe_for_task", "TASKS",
]


class CheckFailed(AssertionError):
    """A failed check. In Jupyter it prints as one friendly message instead of a traceback.

    IPython calls ``_render_traceback_`` to format an exception; nbgrader still sees an error
    output, so the test cell scores 0 as it should.
    """

    def _render_traceback_(self):
        return ["\x1b[1;31m✗ Not yet:\x1b[0m " + line if i == 0 else "  " + line
                for i, line in enumerate(str(self).splitlines())]


def passed(message):
    print(f"✓ {message}")


def fail(message, hint=None):
    raise CheckFailed(message + (f"\nHint: {hint}" if hint else ""))


@contextmanager
def quiet():
    """Silence what would reach stderr while student code runs inside a test cell: Python
    warnings (e.g. Keras's UserWarnings) and TensorFlow's Python logger (e.g. retracing
    notices). nbgrader scores a test cell 0 when anything reaches stderr."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tf_logger.setLevel(level)


# --------------------------------------------------------------------------- quiz answers

_MISSING = object()


def answered(name):
    """The value the student gave to variable ``name`` in the notebook, or a friendly failure.

    When grading, the student's kernel records what it returns (``Transcript``) and the verdict
    is given by a judge process that replays the test cells on that record (``replay_from``)."""
    if _replay is not None:
        return _replay.answer(name)
    frame = inspect.currentframe().f_back
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    value = frame.f_globals.get(name, _MISSING) if frame is not None else _MISSING
    if value is _MISSING or value is Ellipsis:
        fail(f"`{name}` has no answer yet.",
             f"replace the line `raise NotImplementedError()` with `{name} = ...` and run that cell.")
    transcript = Transcript.active()
    if transcript is None:
        return value
    if inspect.isfunction(value) or inspect.ismethod(value):
        return _Answer(name, value, transcript)  # its calls are recorded
    transcript.add(name, "value", value=_encode(value))
    return value


def _letters_in(text, name, options):
    """Parse answer letters out of a plain string: 'b', ' B ', '(B)', 'A, c', 'a c e', 'ACE'."""
    cleaned = re.sub(r"[\s,;/&+().\[\]{}'\"]|\bAND\b", " ", str.upper(text))
    letters = [token for token in cleaned.split() if token]
    if len(letters) == 1 and len(letters[0]) > 1 and all(c in options for c in letters[0]):
        letters = list(letters[0])  # 'ACE' written without separators
    unknown = [letter for letter in letters if letter not in options]
    if unknown:
        fail(f"`{name}` contains {', '.join(repr(u) for u in unknown)}, which is not one of the options "
             f"{', '.join(options)}.",
             "answer with the option letters only, e.g. \"B\" or \"A, C\".")
    return letters


def _as_plain_strings(value, name, options):
    if type(value) is str:  # exactly str: a subclass could override comparison
        return _letters_in(value, name, options)
    if type(value) in (list, tuple, set, frozenset):
        letters = []
        for item in list(value):
            if type(item) is not str:
                fail(f"`{name}` contains {item!r} of type {type(item).__name__}; every option must be a "
                     "letter in quotes.", f"e.g. {name} = {{\"A\", \"C\"}}.")
            letters += _letters_in(item, name, options)
        return letters
    fail(f"`{name}` should be letters in quotes, but it is a {type(value).__name__}.",
         f"e.g. {name} = \"B\" (one choice) or {name} = {{\"A\", \"C\"}} (several).")


def verdict(ok, message):
    """Fail with ``message`` unless ``ok``. Hidden tests use this instead of ``assert``, whose
    traceback would print the test's source line, answer key included, into the feedback."""
    if ok is not True:
        fail(message)
    passed("right.")


def show_choice(name, options):
    """Visible check of a one-letter answer: its form only, never whether it is right."""
    value = choice(answered(name), options, name)
    passed(f'{name} = "{value}" is a valid answer. It is graded when you submit.')


def show_choices(name, options):
    """Visible check of a select-all answer: its form only, never whether it is right."""
    values = choices(answered(name), options, name)
    passed(f"{name} = {{{', '.join(repr(v) for v in sorted(values))}}} is a valid answer. "
           "It is graded when you submit.")


def choice(value, options, name="answer"):
    """One letter out of ``options``, normalised to a plain upper-case ``str``."""
    letters = _as_plain_strings(value, name, options)
    if len(set(letters)) != 1:
        fail(f"`{name}` should be exactly one letter; you gave {len(set(letters))}.",
             "this question has one right answer: pick the best option.")
    return str(letters[0])


def choices(value, options, name="answer"):
    """A set of letters out of ``options``, as a new plain ``frozenset`` of ``str``."""
    letters = _as_plain_strings(value, name, options)
    if not letters:
        fail(f"`{name}` is empty.", "select every statement that is true (at least one is).")
    return frozenset(str(letter) for letter in letters)


# --------------------------------------------------------------------------- compiled models

TASKS = {
    # task: (number of input features, output units, what the labels look like)
    "binary": dict(n_features=2, units=1, labels="0 or 1", probability="sigmoid"),
    "onehot": dict(n_features=4, units=3, labels="one-hot rows such as [0, 1, 0]", probability="softmax"),
    "integer": dict(n_features=4, units=3, labels="class numbers 0, 1 or 2", probability="softmax"),
    "regression": dict(n_features=3, units=1, labels="real numbers, negative ones too", probability=None),
}

_OUTPUT_HINTS = {
    "binary": "one unit with 'sigmoid' (probabilities, loss 'binary_crossentropy'), or one linear unit "
              "with BinaryCrossentropy(from_logits=True).",
    "onehot": "3 units with 'softmax' and loss 'categorical_crossentropy', or 3 linear units with "
              "CategoricalCrossentropy(from_logits=True).",
    "integer": "3 units with 'softmax' and loss 'sparse_categorical_crossentropy', or 3 linear units "
               "with SparseCategoricalCrossentropy(from_logits=True).",
    "regression": "one linear unit (no activation) and a regression loss such as 'mean_squared_error', "
                  "'mean_absolute_error' or Huber().",
}

_IDENTITY_LAYERS = ("Dropout", "Flatten", "Reshape", "GaussianNoise", "ActivityRegularization")


def final_activation(model):
    """Name of the function applied last in ``model``: 'sigmoid', 'softmax', 'linear', ..."""
    for layer in reversed(model.layers):
        kind = type(layer).__name__
        if kind in _IDENTITY_LAYERS:
            continue
        if kind == "Softmax":
            return "softmax"
        if kind == "ReLU":
            return "relu"
        activation = getattr(layer, "activation", None)
        if activation is None:
            return kind
        name = getattr(activation, "__name__", type(activation).__name__)
        return "linear" if name in ("linear", "identity") else name
    return "linear"


def _built(model_or_builder, what="your function"):
    """The model itself; a builder function is called here, quietly, so that its warnings
    cannot zero the test cell and its errors become a friendly message."""
    if not callable(model_or_builder) or hasattr(model_or_builder, "layers"):
        return model_or_builder
    name = getattr(model_or_builder, "__name__", what)
    try:
        with quiet():
            model = model_or_builder()
        if isinstance(model_or_builder, _Answer):
            model_or_builder.record_model(model)
        return model
    except CheckFailed:
        raise
    except NotImplementedError:
        fail(f"{name}() is not written yet.", "replace `raise NotImplementedError()` with your code.")
    except Exception as error:
        if isinstance(model_or_builder, _Answer):
            model_or_builder.record_error(error)
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        fail(f"{name}() raised {type(error).__name__}: {first_line}")


def _require_model(model, task):
    import keras

    spec = TASKS[task]
    if not isinstance(model, keras.Model):
        fail(f"your function returned a {type(model).__name__}, not a Keras model.",
             "end the function with `return model`.")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        fail("the model is not compiled.", "call model.compile(optimizer=..., loss=..., metrics=[...]).")
    if tuple(model.input_shape) != (None, spec["n_features"]):
        fail(f"the model takes inputs of shape {model.input_shape}; it should be (None, {spec['n_features']}).",
             "keep the given hidden_layers(...) as the start of the model.")
    if tuple(model.output_shape) != (None, spec["units"]):
        fail(f"the output layer gives shape {model.output_shape}; this task needs (None, {spec['units']}).",
             _OUTPUT_HINTS[task])


def probe_for_task(model, task, seed):
    """Probe inputs and labels on which right and wrong compile choices give different numbers.

    Labels are derived from the model's own predictions with 25 % of them changed, so the true
    accuracy is exactly 0.75; points whose class depends on whether a threshold of 0.5 is applied
    to probabilities or to logits are included, so a metric with the wrong threshold shows. The
    model's weights are redrawn from ``seed`` first (``_redraw_weights``).
    """
    spec = TASKS[task]
    rng = np.random.default_rng(seed)
    pool = (rng.normal(size=(4096, spec["n_features"])) * rng.uniform(0.05, 6.0, size=(4096, 1))).astype("float32")
    for attempt in range(20):
        _redraw_weights(model, rng)
        raw = np.asarray(model(pool, training=False), dtype="float64")
        usable = _not_saturated(raw, final_activation(model), task)
        if task == "binary":
            ambiguous = np.flatnonzero(usable & ((raw[:, 0] > 0) != (raw[:, 0] > 0.5)))
            others = np.flatnonzero(usable & ((raw[:, 0] > 0) == (raw[:, 0] > 0.5)))
            chosen = np.concatenate([rng.permutation(ambiguous)[:64], rng.permutation(others)])[:256]
            enough = len(ambiguous) >= 32
        else:
            chosen = rng.permutation(np.flatnonzero(usable))[:256]
            enough = True
        if enough and len(chosen) >= 64:
            break
    if len(chosen) < 64:
        fail("the model's outputs are saturated (probabilities of exactly 0 or 1) for almost every input, "
             "so its loss cannot be checked.", "keep the given hidden layers and Keras's default initialisers.")
    X, raw = pool[chosen], raw[chosen]
    flipped = np.zeros(len(X), bool)
    flipped[rng.permutation(len(X))[: len(X) // 4]] = True
    if task == "binary":
        predicted = (raw[:, 0] > (0.0 if final_activation(model) == "linear" else 0.5)).astype(int)
        y = np.where(flipped, 1 - predicted, predicted).astype("float32")[:, None]
    elif task in ("onehot", "integer"):
        predicted = raw.argmax(axis=1)
        labels = np.where(flipped, (predicted + rng.integers(1, spec["units"], len(X))) % spec["units"], predicted)
        y = np.eye(spec["units"], dtype="float32")[labels] if task == "onehot" else labels.astype("int32")
    else:
        noise = rng.normal(scale=0.5, size=raw.shape)
        noise[flipped] *= 12  # outliers, so that MSE, MAE and Huber give clearly different values
        y = (raw + noise).astype("float32")
    return X, y, raw


def _redraw_weights(model, rng):
    """Give the model's trainable weights values drawn from ``rng``.

    The student's function builds the model with Keras's random initialisers, unseeded; probing
    that model would make a verdict depend on the draw (on a few draws in a hundred, a linear
    output has no logit between 0 and 0.5, and a metric that thresholds logits at 0.5 cannot be
    told from one that thresholds at 0). Seeded weights make every verdict reproducible, and the
    probe redraws until the data can tell right from wrong. Loss and metrics do not depend on
    which weights the model has, so this checks the same thing.
    """
    for variable in model.trainable_weights:
        shape = tuple(variable.shape)
        scale = 1 / np.sqrt(shape[0]) if len(shape) >= 2 else 0.1
        variable.assign((rng.normal(size=shape) * scale).astype(variable.dtype))


def _not_saturated(raw, activation, task):
    """Probe points whose outputs are not saturated. Keras computes cross-entropy from the
    logits behind a sigmoid or softmax output, without clipping; on saturated outputs (a
    float32 probability of exactly 1.0) that differs from the clipped formula, so those points
    cannot tell a right loss from a wrong one and are left out."""
    if task == "regression":
        return np.ones(len(raw), bool)
    if activation in ("sigmoid", "softmax"):
        return np.all((raw > 1e-4) & (raw < 1 - 1e-4), axis=1)
    return np.ptp(raw, axis=1) < 10 if raw.shape[1] > 1 else np.abs(raw[:, 0]) < 10


def _evaluate(model, X, y, task):
    """What ``model.evaluate(X, y, batch_size=len(X), return_dict=True)`` returns, by the same
    steps as Keras's own ``test_step`` (forward pass, ``compute_loss``, ``compute_metrics``), run
    eagerly: ``evaluate`` first traces a graph, which costs ~0.4 s per model for 256 rows."""
    with quiet():
        try:
            y_pred = model(X, training=False)
            loss = float(model.compute_loss(x=X, y=y, y_pred=y_pred, training=False))
            model.reset_metrics()
            reported = model.compute_metrics(X, y, y_pred, sample_weight=None)
            return {"loss": loss, **{name: float(value) for name, value in reported.items() if name != "loss"}}
        except Exception as error:  # a loss that cannot take these labels raises here
            message = str(error).strip().splitlines()[0][:300]
            fail(f"training this model on the task's labels ({TASKS[task]['labels']}) fails:\n"
                 f"{type(error).__name__}: {message}", _OUTPUT_HINTS[task])


def _reference_losses(task, y, raw, activation):
    """Every right loss value for these labels and outputs, by name."""
    eps = 1e-7
    if task == "regression":
        error = y - raw
        abs_error = np.abs(error)
        return {
            "mean squared error": np.mean(error ** 2),
            "mean absolute error": np.mean(abs_error),
            "Huber (delta 1)": np.mean(np.where(abs_error <= 1, 0.5 * error ** 2, abs_error - 0.5)),
            "log-cosh": np.mean(abs_error + np.log1p(np.exp(-2 * abs_error)) - np.log(2)),
        }
    if task == "binary":
        if activation == "sigmoid":
            p = np.clip(raw, eps, 1 - eps)
        else:
            p = 1 / (1 + np.exp(-raw))
            p = np.clip(p, 1e-12, 1 - 1e-12)
        return {"binary cross-entropy": np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))}
    if activation == "softmax":
        p = np.clip(raw / raw.sum(axis=1, keepdims=True), eps, 1 - eps)
    else:
        shifted = raw - raw.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    labels = y.argmax(axis=1) if task == "onehot" else y
    return {"cross-entropy": np.mean(-np.log(p[np.arange(len(p)), labels]))}


def _loss_expects_logits(loss):
    if getattr(loss, "from_logits", False) is True:
        return True
    get_config = getattr(loss, "get_config", None)
    return bool(get_config and get_config().get("from_logits"))


def check_output_and_loss(model, task, seed=0, silent=False):
    """The output activation and the loss fit the task and each other (checked on probe data).
    ``model`` is a compiled model or the student's function that returns one."""
    model = _built(model)
    _require_model(model, task)
    activation = final_activation(model)
    allowed = ("linear",) if task == "regression" else (TASKS[task]["probability"], "linear")
    if activation not in allowed:
        fail(f"the output layer applies '{activation}'.", _OUTPUT_HINTS[task])
    if activation != "linear" and _loss_expects_logits(model.loss):
        fail(f"the output is already a probability ('{activation}'), but the loss is told it gets logits "
             "(from_logits=True).",
             "Keras notices this particular mix-up and quietly uses the layer's input instead, with a warning; "
             "say what you mean: drop from_logits=True, or drop the activation.")
    X, y, raw = probe_for_task(model, task, seed)
    loss = _evaluate(model, X, y, task)["loss"]
    references = _reference_losses(task, y, raw, activation)
    matching = [name for name, value in references.items() if np.isclose(loss, value, rtol=2e-4, atol=1e-5)]
    if not matching:
        if task != "regression" and activation == "linear":
            hint = ("a linear output gives logits, not probabilities: tell the loss so with from_logits=True, "
                    "or add the activation that turns logits into probabilities.")
        elif task != "regression":
            hint = (f"the output is already a probability ('{activation}'): use the matching cross-entropy loss "
                    "without from_logits=True.")
        else:
            hint = _OUTPUT_HINTS[task]
        fail(f"the loss the model computes ({loss:.4f} on test data) is not a right loss for this task and output.",
             hint)
    if not silent:
        passed(f"output '{activation}' with a {matching[0]} loss: right for this task.")
    return None


def _reference_metrics(task, y, raw, activation):
    if task == "regression":
        error = y - raw
        return {"mean absolute error": np.mean(np.abs(error)),
                "root mean squared error": np.sqrt(np.mean(error ** 2)),
                "mean squared error": np.mean(error ** 2)}
    if task == "binary":
        predicted = raw[:, 0] > (0.0 if activation == "linear" else 0.5)
        return {"accuracy": np.mean(predicted == (y[:, 0] > 0.5))}
    labels = y.argmax(axis=1) if task == "onehot" else y
    return {"accuracy": np.mean(raw.argmax(axis=1) == labels)}


def check_metrics(model, task, seed=0, silent=False):
    """At least one metric reports the quantity the task needs, computed the right way.
    ``model`` is a compiled model or the student's function that returns one."""
    model = _built(model)
    _require_model(model, task)
    activation = final_activation(model)
    X, y, raw = probe_for_task(model, task, seed)
    results = _evaluate(model, X, y, task)
    reported = {name: value for name, value in results.items() if name != "loss"}
    if not reported:
        fail("the model reports no metric.",
             "pass metrics=[...] to compile: " + ("'accuracy' for classification."
                                                   if task != "regression" else "'mae' or RootMeanSquaredError()."))
    references = _reference_metrics(task, y, raw, activation)
    for name, value in reported.items():
        for reference_name, reference in references.items():
            if np.isclose(value, reference, rtol=1e-4, atol=1e-6):
                if not silent:
                    passed(f"metric '{name}' reports the {reference_name}: right for this task.")
                return
    wanted = " or ".join(references)
    hint = "a classifier is judged by accuracy." if task != "regression" else \
        "a regressor is judged by an error in the target's units, e.g. 'mae' or RootMeanSquaredError()."
    if task == "binary" and activation == "linear":
        hint = ("with a linear (logit) output, accuracy must threshold at 0, not 0.5: "
                "use BinaryAccuracy(threshold=0.0).")
    fail(f"none of the metrics ({', '.join(reported)}) reports the {wanted} on test data.", hint)


def check_task_model(model, task, seed=0):
    """The visible check of a compiled model: form and optimizer are required (this check's
    points); whether output, loss and metrics are right is reported, and graded by hidden tests."""
    import keras

    model = _built(model)
    _require_model(model, task)
    if not isinstance(model.optimizer, keras.optimizers.Adam):
        fail(f"the optimizer is {type(model.optimizer).__name__}; this exercise asks for Adam.",
             "optimizer='adam' or optimizer=Adam().")
    if not np.isclose(float(model.optimizer.learning_rate), 0.001, rtol=1e-6):
        fail(f"Adam's learning rate is {float(model.optimizer.learning_rate):g}; this exercise asks for the default.",
             "Adam() or Adam(learning_rate=0.001).")
    passed(f"a compiled Keras model with inputs {model.input_shape}, outputs {model.output_shape} and Adam.")
    for part in (check_output_and_loss, check_metrics):
        try:
            part(model, task, seed)
        except CheckFailed as problem:
            print("✗ " + str(problem).replace("\n", "\n  "))
    return None


# --------------------------------------------------------------------------- Adam settings

def check_adam_settings(settings):
    """Visible check: the student's Adam settings have a valid form (returns nothing, so that
    nbgrader never reads a cell's result as a partial grade)."""
    _validated_adam_settings(settings)


def _validated_adam_settings(settings):
    """The student's Adam settings as a new dict of plain floats in Adam's valid ranges."""
    if type(settings) is not dict:
        fail(f"ADAM_SETTINGS should be a dict, but it is a {type(settings).__name__}.",
             "e.g. ADAM_SETTINGS = dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999).")
    allowed = {"learning_rate", "beta_1", "beta_2", "epsilon"}
    unknown = set(map(str, settings)) - allowed
    if unknown:
        fail(f"ADAM_SETTINGS has keys Adam does not take: {', '.join(sorted(unknown))}.",
             f"use only {', '.join(sorted(allowed))}.")
    clean = {}
    for key, value in settings.items():
        if type(value) not in (int, float):
            fail(f"{key} should be a number, but it is a {type(value).__name__}.")
        clean[str(key)] = float(value)
    ranges = {"learning_rate": (0.0, 10.0), "beta_1": (0.0, 1.0), "beta_2": (0.0, 1.0), "epsilon": (0.0, 1.0)}
    for key, value in clean.items():
        low, high = ranges[key]
        if not (low < value < high) and not (key == "beta_1" and value == 0.0):
            fail(f"{key} = {value:g} is outside Adam's valid range ({low:g}, {high:g}).")
    passed("ADAM_SETTINGS has a valid form: " + ", ".join(f"{k}={v:g}" for k, v in clean.items()))
    return clean


# --------------------------------------------------------------------------- by hand in NumPy

def _call_student(function, *args, what):
    try:
        with quiet():
            result = function(*args)
    except CheckFailed:
        raise
    except Exception as error:
        if isinstance(function, _Answer):
            function.record_error(error, args)
        if isinstance(error, NotImplementedError):
            fail(f"{what} is not written yet.", "replace `raise NotImplementedError()` with your code.")
        fail(f"{what} raised {type(error).__name__}: {error}")
    if isinstance(function, _Answer):
        function.record_result(args, result)
    return result


def _as_float_array(value, what):
    try:
        array = np.array(value, dtype="float64")  # a fresh array: no student object survives
    except (TypeError, ValueError):
        fail(f"{what} returned {type(value).__name__}, not numbers.")
    return array


def check_bce(function, seed=0, n=50, extremes=False):
    """``function(y_true, y_pred)`` returns Keras's mean binary cross-entropy (1-D inputs)."""
    import keras

    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n).astype("float64")
    if extremes:  # predictions of exactly 0 and 1: Keras clips them to [1e-7, 1 - 1e-7]
        y_pred = rng.choice([0.0, 1.0, 0.5, 1e-9, 1 - 1e-9], n)
    else:
        y_pred = rng.uniform(0.001, 0.999, n)
    # In float64: Keras in float32 rounds 1 - 1e-7, which changes log(1 - p) by ~0.5 %.
    expected = float(keras.losses.binary_crossentropy(y_true[None, :], y_pred[None, :])[0])
    got = _as_float_array(_call_student(function, y_true.copy(), y_pred.copy(), what="binary_crossentropy"),
                          "binary_crossentropy")
    if got.shape != ():
        fail(f"binary_crossentropy returned an array of shape {got.shape}; it should return one number, "
             "the mean over all examples.", "np.mean(...) of the per-example losses.")
    if not np.isfinite(got):
        fail(f"binary_crossentropy returned {float(got)} for predictions of exactly 0 or 1.",
             "log(0) is -inf: clip the predictions to [1e-7, 1 - 1e-7] first, as Keras does (np.clip).")
    if not np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        what = "predictions of exactly 0 or 1" if extremes else f"{n} random examples"
        fail(f"for {what}, binary_crossentropy returned {float(got):.6f}; Keras gives {expected:.6f}.",
             "loss = -mean(y·log(p) + (1 - y)·log(1 - p)), with p clipped to [1e-7, 1 - 1e-7].")
    passed(f"binary_crossentropy matches Keras on {n} {'extreme' if extremes else 'random'} examples.")
    return None


def check_adam_step(function, steps=1, seed=0, shape=(3,), **hyper):
    """``function(w, g, m, v, t, learning_rate, beta_1, beta_2, epsilon) -> (w, m, v)`` follows
    ``keras.optimizers.Adam`` for ``steps`` steps from zero moments (Keras's and the paper's
    placement of epsilon both pass: they differ by less than the tolerance)."""
    import keras

    settings = dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    settings.update(hyper)
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=shape)
    gradients = [rng.normal(size=shape) for _ in range(steps)]

    variable = keras.Variable(w0.astype("float32"))
    optimizer = keras.optimizers.Adam(**settings)
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
    expected = np.asarray(variable.numpy(), dtype="float64")

    w, m, v = w0.copy(), np.zeros(shape), np.zeros(shape)
    for t, g in enumerate(gradients, start=1):
        result = _call_student(function, w.copy(), g.copy(), m.copy(), v.copy(), t, settings["learning_rate"],
                               settings["beta_1"], settings["beta_2"], settings["epsilon"], what="adam_step")
        if type(result) is not tuple or len(result) != 3:
            fail("adam_step should return a tuple of three arrays: (new_w, new_m, new_v).",
                 "end with `return w, m, v`.")
        w, m, v = (_as_float_array(part, "adam_step") for part in result)
        if not (w.shape == m.shape == v.shape == shape):
            fail(f"adam_step returned shapes {w.shape}, {m.shape}, {v.shape}; each should be {shape}.")
    if not np.allclose(w, expected, rtol=1e-5, atol=1e-6):
        fail(f"after {steps} step(s) your weights are {np.round(w, 6)}; Keras's Adam gives {np.round(expected, 6)}.",
             "m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  m̂ = m/(1-β1^t);  v̂ = v/(1-β2^t);  "
             "w = w - lr·m̂/(√v̂ + ε).")
    passed(f"adam_step follows keras.optimizers.Adam for {steps} step(s) "
           f"(learning_rate={settings['learning_rate']:g}, beta_1={settings['beta_1']:g}, "
           f"beta_2={settings['beta_2']:g}).")
    return None


# --------------------------------------------------------------------------- tuning Adam

TUNING_EPOCHS = 20
TUNING_TARGET_ACCURACY = 0.83


def train_with_adam_settings(settings, data_seed=0, model_seed=42, epochs=TUNING_EPOCHS):
    """Train the chapter's model on the half-moons with these Adam settings; test accuracy."""
    import coursekit
    from coursekit.data import make_moons, train_test_split
    from coursekit.models import build_seed_model

    import keras

    X, y = make_moons(n_samples=400, noise=0.2, seed=data_seed)
    X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.25, seed=data_seed)
    coursekit.seed_everything(model_seed)
    model = build_seed_model(compile_model=False)
    model.compile(optimizer=keras.optimizers.Adam(**settings), loss="binary_crossentropy", metrics=["accuracy"])
    with quiet():
        model.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
        _, accuracy = model.evaluate(X_test, y_test, verbose=0)
    return float(accuracy)


def check_adam_reaches_target(settings, data_seed=0, model_seed=42):
    """The chapter's model, trained with ``settings`` for TUNING_EPOCHS epochs, reaches the target."""
    clean = _validated_adam_settings(settings)
    if Transcript.active() is not None:
        return None  # grading: the judge trains; training here too would only cost time
    accuracy = train_with_adam_settings(clean, data_seed=data_seed, model_seed=model_seed)
    if not (accuracy >= TUNING_TARGET_ACCURACY):
        fail(f"with these settings the model reaches a test accuracy of {accuracy:.3f} after {TUNING_EPOCHS} "
             f"epochs; the target is {TUNING_TARGET_ACCURACY}.",
             "20 epochs are few steps: which of Adam's settings makes each step larger?")
    passed(f"test accuracy {accuracy:.3f} after {TUNING_EPOCHS} epochs (target {TUNING_TARGET_ACCURACY}).")
    return None


# --------------------------------------------------------------------------- judged outside the kernel
#
# Student code runs in the same kernel as the test cells and can change anything there: these
# checks, NumPy, builtins, IPython's error display. So when an instructor grades, the kernel's
# own verdicts are not used. The kernel only *records* what the student answered (``Transcript``):
# each value read by ``answered``, each model a builder function returned (as Keras serializes
# it), and each result the student's functions gave for the inputs the checks chose. A judge
# process that never ran student code then runs the test cells again with ``replay_from``, where
# ``answered`` returns the recorded answers. The kernel can only choose what it reports as the
# answer, never whether an answer is judged right; an answer it did not record is no answer.

TRANSCRIPT_ENV = "COURSEKIT_TRANSCRIPT"  # set by the grader in the kernel's environment
_replay = None


def _encode(value):
    """A plain-JSON description of an answer; anything that is not plain data is only named."""
    kind = type(value)
    if kind in (bool, int, float, str) or value is None:
        return {"plain": value} if kind is not float or np.isfinite(value) else {"float": repr(value)}
    if kind in (list, tuple, set, frozenset):
        return {kind.__name__: [_encode(item) for item in value]}
    if kind is dict:
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (np.ndarray, np.generic)) and type(value).__module__ == "numpy" \
            and np.asarray(value).dtype.kind in "biuf":
        array = np.asarray(value)
        return {"array": [str(array.dtype), list(array.shape), [repr(float(x)) for x in array.ravel()]]}
    return {"other": kind.__name__}


def _decode(data):
    (kind, content), = data.items()
    if kind == "plain":
        if type(content) not in (bool, int, float, str) and content is not None:
            raise ValueError("not plain data")
        return content
    if kind == "float":
        return float(content)
    if kind in ("list", "tuple", "set", "frozenset"):
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](map(_decode, content))
    if kind == "dict":
        return {_decode(k): _decode(v) for k, v in content}
    if kind == "array":
        dtype, shape, numbers = content
        if np.dtype(str(dtype)).kind not in "biuf":
            raise ValueError("not a numeric array")
        return np.array([float(x) for x in numbers], dtype="float64").reshape(shape).astype(np.dtype(str(dtype)))
    if kind == "other":
        return type(str(content), (), {})()  # keeps the type's name for the checks' messages
    raise ValueError(f"unknown kind {kind!r}")


def _digest(args):
    return hashlib.sha256(json.dumps([_encode(a) for a in args], sort_keys=True).encode()).hexdigest()


class Transcript:
    """The kernel's record of the answers: a folder with ``answers.jsonl``."""

    models_recorded = set()  # builder names whose model is saved (one kernel grades one notebook)

    def __init__(self, folder):
        self.folder = Path(folder)

    @classmethod
    def active(cls):
        folder = os.environ.get(TRANSCRIPT_ENV)
        return cls(folder) if folder and _replay is None else None

    def add(self, name, kind, **data):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "answers.jsonl", "a", encoding="utf-8") as records:
            records.write(json.dumps({"name": name, "kind": kind, **data}) + "\n")


class _Answer:
    """A student's function as ``answered(name)`` returned it: calls it, and records what it gave."""

    def __init__(self, name, function, transcript):
        self.__name__, self.function, self.transcript = name, function, transcript

    def __call__(self, *args):
        return self.function(*args)

    def record_model(self, model):
        """The model as Keras serializes it (layers and compile settings; the weights do not matter:
        the checks draw their own), so that the judge can rebuild it without running any code."""
        if self.__name__ in Transcript.models_recorded:
            return  # the checks call a builder several times; the judge needs its model once
        Transcript.models_recorded.add(self.__name__)
        import keras

        try:
            with quiet():
                config = keras.saving.serialize_keras_object(model)
                compiled = model.get_compile_config() if getattr(model, "compiled", False) else None
            self.transcript.add(self.__name__, "built", model={"config": config, "compile": compiled})
        except Exception as error:  # not a Keras model, or one Keras cannot serialize (a lambda, say)
            self.record_error(error)

    def record_result(self, args, result):
        self.transcript.add(self.__name__, "call", args=_digest(args), result=_encode(result))

    def record_error(self, error, args=None):
        kind = "call" if args is not None else "built"
        self.transcript.add(self.__name__, kind, args=_digest(args) if args is not None else None,
                            error=[type(error).__name__, str(error)[:2000]])


class _Replay:
    """The judge's side: ``answered`` returns what the kernel recorded."""

    def __init__(self, folder):
        self.folder, self.records, self.functions = Path(folder), {}, {}
        try:
            lines = (self.folder / "answers.jsonl").read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
                self.records.setdefault(str(record["name"]), []).append(record)
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line is no answer

    def answer(self, name):
        records = self.records.get(name, [])
        values = [r for r in records if r.get("kind") == "value"]
        if values:
            try:
                return _decode(values[-1]["value"])
            except Exception:
                fail(f"`{name}`: its recorded answer could not be read.")
        if records:
            if name not in self.functions:
                self.functions[name] = _ReplayedFunction(name, records, self.folder)
            return self.functions[name]
        fail(f"`{name}` has no answer yet.",
             f"replace the line `raise NotImplementedError()` with `{name} = ...` and run that cell.")


class _ReplayedFunction:
    def __init__(self, name, records, folder):
        self.__name__, self.records, self.folder, self.model = name, records, folder, None

    def _rebuild(self):
        built = [r for r in self.records if r.get("kind") == "built"]
        if not built:
            fail(f"{self.__name__}() was never called when the notebook ran.")
        if built[0].get("error"):
            self._raise(built[0]["error"])
        import keras

        try:
            with quiet():
                model = keras.saving.deserialize_keras_object(built[0]["model"]["config"], safe_mode=True)
                if built[0]["model"].get("compile") is not None:
                    model.compile_from_config(built[0]["model"]["compile"])
        except Exception as error:
            fail(f"{self.__name__}(): Keras cannot rebuild the model it returned "
                 f"({type(error).__name__}: {str(error)[:200]}).",
                 "use Keras's own layers, losses and metrics.")
        return model

    @staticmethod
    def _raise(error):
        name, message = (list(error) + ["", ""])[:2]
        kind = NotImplementedError if name == "NotImplementedError" else type(str(name), (Exception,), {})
        raise kind(str(message))

    def __call__(self, *args):
        if not args:  # a builder: the model rebuilt by Keras from what it serialized (safe mode: no code)
            if self.model is None:
                self.model = self._rebuild()
            # One model for all the checks of this builder (rebuilding costs ~20 ms): no check depends
            # on what another left in it, since each draws its own weights and resets the metrics.
            return self.model
        digest = _digest(args)
        for record in self.records:
            if record.get("kind") == "call" and record.get("args") == digest:
                if record.get("error"):
                    self._raise(record["error"])
                return _decode(record["result"])
        fail(f"{self.__name__} gave no result for the test's inputs when the notebook ran.")


def replay_from(folder):
    """Judge mode: from now on, answers come from the transcript in ``folder`` (None: back to live)."""
    global _replay
    _replay = _Replay(folder) if folder is not None else None
