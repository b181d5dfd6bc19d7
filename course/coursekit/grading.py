"""The exercises' checks: what their test cells call (``from coursekit import grading as check``).

Checks judge **behaviour**, not spelling: what a compiled model's loss and metrics compute on
probe data, what a student's function returns for inputs the check chooses, how the model's
optimizer moves a weight. They reach the student's work only through ``answered(name)``
(``coursekit.answers``), so the same check runs

* in the student's kernel (self-study, nbgrader's Validate, stock ``nbgrader autograde``), and
* in ``course-grader``'s judge, a process that never runs student code: there every need becomes
  a typed request to the student's kernel, and only data comes back.

A check never needs to know which. It is written to

* accept every valid answer (a loss as a string or an object, a linear output with
  ``from_logits=True``, Keras's or the paper's form of Adam, any real number type);
* reject every wrong one, including answers that only look right (``AdamW`` is not Adam with its
  defaults; a ``str`` subclass equal to everything is not a letter: answers are copied into plain
  built-in values before any comparison);
* fail with a message that says what is wrong and points at the idea (and the lesson) behind it,
  never at the answer itself.

This module contains no answer key.
"""

import numpy as np

from coursekit.answers import (Answer, LocalAnswer, NoAnswer, NotCallable, StudentError, Unreadable, answer_source,
                               quiet)

__all__ = [
    "CheckFailed", "answered", "choice", "choices", "show_choice", "show_choices", "verdict", "grade_choice",
    "grade_statements", "hidden_test", "check_task_model",
    "check_output_and_loss", "check_metrics", "check_adam_settings", "check_adam_reaches_target", "check_bce",
    "check_adam_step", "probe_for_task", "TASKS",
]


class CheckFailed(AssertionError):
    """A failed check. In Jupyter it prints as one friendly message instead of a traceback.

    IPython calls ``_render_traceback_`` to format an exception; nbgrader still sees an error
    output, so the test cell scores 0 as it should. ``check`` and ``summary`` classify the
    failure for the instructor's report (``summary`` holds no numbers, so that failures group).
    """

    def __init__(self, message, hint=None, check=None, summary=None, kind="check", misconception=None):
        super().__init__(message + (f"\nHint: {hint}" if hint else ""))
        self.check, self.summary, self.kind, self.misconception = check, summary or message, kind, misconception

    def _render_traceback_(self):
        return ["\x1b[1;31m✗ Not yet:\x1b[0m " + line if i == 0 else "  " + line
                for i, line in enumerate(str(self).splitlines())]


def passed(message):
    print(f"✓ {message}")


def fail(message, hint=None, **classification):
    raise CheckFailed(message, hint, **classification)


# --------------------------------------------------------------------------- answers

def answered(name):
    """The student's answer ``name`` (a variable of the notebook), from the current answer source."""
    return answer_source().answer(name)


def _as_answer(obj, name):
    return obj if isinstance(obj, Answer) else LocalAnswer(name, obj)


def _no_answer(problem, name):
    if problem.cause and problem.cause.startswith("NameError"):
        fail(f"`{name}` has no answer: the cell that should set it stopped with {problem.cause}.",
             "a name that is not defined is often a letter or a word without quotes: write \"X\", not X.",
             summary="answer cell stopped with a NameError", kind="form")
    if problem.cause:
        fail(f"`{name}` has no answer: the cell that should set it stopped with {problem.cause}.",
             "fix that error and run the cell again.", summary="answer cell stopped with an error", kind="form")
    fail(f"`{name}` has no answer yet.",
         f"replace the line `raise NotImplementedError()` with `{name} = ...` and run that cell.",
         summary="no answer", kind="form")


def _value(answer, name):
    try:
        return _as_answer(answer, name).value()
    except NoAnswer as problem:
        _no_answer(problem, name)


def _note(name, value):
    """Tell the answer source how this answer reads once normalised (for the instructor's report)."""
    note = getattr(answer_source(), "note", None)
    if note is not None:
        note(name, value)


# --------------------------------------------------------------------------- multiple choice

def _letters_in(text, name, options):
    """Answer letters out of a plain string: 'b', ' B ', '(B)', 'A, c', 'a c e', 'ACE'."""
    import re

    cleaned = re.sub(r"[\s,;/&+().\[\]{}'\"]|\bAND\b", " ", text.upper())
    letters = [token for token in cleaned.split() if token]
    if len(letters) == 1 and len(letters[0]) > 1 and all(c in options for c in letters[0]):
        letters = list(letters[0])  # 'ACE' written without separators
    unknown = [letter for letter in letters if letter not in options]
    if unknown:
        fail(f"`{name}` contains {', '.join(repr(u) for u in unknown)}, which is not one of the options "
             f"{', '.join(options)}.", "answer with option letters only, in quotes, e.g. \"X\" or \"X, Y\".",
             summary="not one of the options", kind="form")
    return letters


def _plain_letters(value, name, options):
    if type(value) is str:
        return _letters_in(value, name, options)
    if type(value) in (list, tuple, set, frozenset):
        letters = []
        for item in value:
            if type(item) is not str:
                shown = item.type_name if isinstance(item, Unreadable) else type(item).__name__
                fail(f"`{name}` contains a {shown}; every option must be a letter in quotes.",
                     f'e.g. {name} = {{"X", "Y"}}.', summary="not letters in quotes", kind="form")
            letters += _letters_in(item, name, options)
        return letters
    shown = value.type_name if isinstance(value, Unreadable) else type(value).__name__
    fail(f"`{name}` should be letters in quotes, but it is a {shown}.",
         f'e.g. {name} = "X" (one choice) or {name} = {{"X", "Y"}} (several).',
         summary="not letters in quotes", kind="form")


def choice(answer, options, name="answer"):
    """One letter out of ``options``, as a new plain upper-case ``str``. ``answer``: an answer
    from ``answered`` or a value. Accepted forms: a string ("B", " b ", "(B)") or a list, tuple or
    set holding one such string."""
    letters = _plain_letters(_value(answer, name), name, options)
    if len(set(letters)) != 1:
        fail(f"`{name}` should be exactly one letter; you gave {len(set(letters))}.",
             "this question has one best answer: pick one option.", summary="not exactly one letter", kind="form")
    _note(name, letters[0])
    return str(letters[0])


def choices(answer, options, name="answer"):
    """A set of letters out of ``options``, as a new plain ``frozenset`` of ``str``. Accepted forms:
    one string ("A, C", "ac") or a list, tuple or set of letter strings."""
    letters = _plain_letters(_value(answer, name), name, options)
    if not letters:
        fail(f"`{name}` is empty.", "select every statement that is true (at least one is).",
             summary="empty", kind="form")
    selected = frozenset(str(letter) for letter in letters)
    _note(name, sorted(selected))
    return selected


def verdict(ok, message, misconception=None):
    """Fail with ``message`` unless ``ok``. Hidden tests use this instead of ``assert``, whose
    traceback would print the test's source line, answer key included, into the feedback."""
    if ok is not True:
        fail(message, summary=message, kind="wrong_choice", misconception=misconception)
    passed("right.")


def grade_choice(answer, options, key, misconceptions):
    """Hidden test of a one-letter question: right if ``answer`` (from ``answered``) is ``key``. For
    a wrong choice the failure carries the misconception behind it: ``misconceptions[letter] = (why
    it is wrong, where the course shows it)``."""
    name = answer.name
    chosen = choice(answer, options, name)
    if chosen == key:
        passed(f"{name}: right.")
        return
    why, where = misconceptions[chosen]
    fail(f"{name} = \"{chosen}\" is not the best answer: {why}", f"see {where}.", summary=f"chose {chosen}",
         kind="wrong_choice", misconception=why)


def grade_statements(answer, options, truth, explanations):
    """Hidden test of some statements of a select-all question: right if, for every letter in
    ``truth``, the letter is selected in ``answer`` (from ``answered``) exactly when its statement is
    true. ``explanations[letter] = (why the statement is true or false, where the course shows it)``."""
    name = answer.name
    selected = choices(answer, options, name)
    wrong = sorted(letter for letter, true in truth.items() if (letter in selected) != true)
    judged = " and ".join(sorted(truth))
    if not wrong:
        passed(f"{name}: statements {judged} judged right.")
        return
    lines = [f"statement {letter} is {'true' if truth[letter] else 'false'}: {explanations[letter][0]} "
             f"(see {explanations[letter][1]})" for letter in wrong]
    fail(f"{name}: statements {judged} are not both judged right yet.\n" + "\n".join(lines),
         summary=f"misjudged {', '.join(wrong)}", kind="wrong_choice",
         misconception="; ".join(explanations[letter][0] for letter in wrong))


def _after_visible(class_note):
    """After a visible check, in a class release: say when the rest is graded."""
    from coursekit import selfstudy

    if selfstudy.mode() == "class":
        passed(class_note)


def hidden_test(grade_id):
    """The visible line of a hidden test cell. In self-study (the repository's exercises/, beside
    solutions/) it runs the cell's hidden part from solutions/, so the cell passes or fails exactly as
    it will be graded (and nbgrader's Validate reports it); in a class release it says the cell is
    graded after the deadline; while grading it does nothing (the hidden part follows it)."""
    from coursekit import selfstudy

    mode = selfstudy.mode()
    if mode == "self-study":
        selfstudy.run_hidden_test(grade_id)
    elif mode == "class":
        passed(f"This cell's tests are not shown here: {GRADED_LATER}")


GRADED_LATER = "correctness is graded after the deadline."


def show_choice(name, options):
    """Visible check of a one-letter answer: its form; in self-study also whether it is right."""
    value = choice(answered(name), options, name)
    passed(f'{name} = "{value}": form OK.')
    _after_visible(GRADED_LATER[0].upper() + GRADED_LATER[1:])


def show_choices(name, options):
    """Visible check of a select-all answer: its form; in self-study also whether it is right."""
    values = choices(answered(name), options, name)
    passed(f"{name} = {{{', '.join(repr(v) for v in sorted(values))}}}: form OK.")
    _after_visible(GRADED_LATER[0].upper() + GRADED_LATER[1:])


# --------------------------------------------------------------------------- compiled models

TASKS = {
    # task: (number of input features, output units, what the labels look like)
    "binary": dict(n_features=2, units=1, labels="0 or 1", probability="sigmoid"),
    "onehot": dict(n_features=4, units=3, labels="one-hot rows such as [0, 1, 0]", probability="softmax"),
    "integer": dict(n_features=4, units=3, labels="class numbers 0, 1 or 2", probability="softmax"),
    "regression": dict(n_features=3, units=1, labels="real numbers, negative ones too", probability=None),
}

LESSON_LOSSES = "lesson 3 (Losses), the table of output layers and losses for each task"
LESSON_METRICS = "lesson 4 (Metrics)"

_OUTPUT_HINTS = {
    "binary": f"one output should give the probability of class 1 (or a logit): see {LESSON_LOSSES}.",
    "onehot": f"three classes need one output per class, read as class probabilities (or logits): see {LESSON_LOSSES}.",
    "integer": f"three classes need one output per class, read as class probabilities (or logits): see {LESSON_LOSSES}.",
    "regression": f"a regression output must be able to take any real value: see {LESSON_LOSSES}.",
}

PROBE_ROWS = 1024


def _model(model_or_builder, what):
    """A handle on the model: the student's builder is called (quietly), its errors become a
    friendly message."""
    answer = _as_answer(model_or_builder, what)
    name = answer.name
    try:
        return answer.model()
    except NoAnswer as problem:
        _no_answer(problem, name)
    except StudentError as error:
        if error.type_name == "NotImplementedError":
            fail(f"{name}() is not written yet.", "replace `raise NotImplementedError()` with your code.",
                 summary="not written yet", kind="form")
        fail(f"{name}() raised {error.type_name}: {error.message}", summary=f"the builder raised {error.type_name}")


def _require_model(handle, task):
    info = handle.describe()
    spec = TASKS[task]
    if not info["is_keras_model"]:
        fail(f"your function returned a {info['type']}, not a Keras model.", "end the function with `return model`.",
             summary="not a Keras model")
    if not info["compiled"]:
        fail("the model is not compiled.", "call model.compile(optimizer=..., loss=..., metrics=[...]).",
             summary="not compiled")
    if info["input_shape"] != [None, spec["n_features"]]:
        shown = tuple(info["input_shape"]) if info["input_shape"] else "unknown"
        fail(f"the model takes inputs of shape {shown}; it should be (None, {spec['n_features']}).",
             "keep the given hidden_layers(...) as the start of the model.", summary="wrong input shape")
    if info["output_shape"] != [None, spec["units"]]:
        shown = tuple(info["output_shape"]) if info["output_shape"] else "unknown"
        fail(f"the output layer gives shape {shown}; this task needs (None, {spec['units']}).",
             _OUTPUT_HINTS[task], summary="wrong number of outputs")
    return info


def output_kind(raw):
    """What the outputs look like, whatever layer made them: 'softmax' (rows of probabilities
    that sum to 1), 'probability' (each in [0, 1]), 'nonnegative', 'bounded' (in [-1, 1]) or
    'linear' (any real value)."""
    low, high = float(np.min(raw)), float(np.max(raw))
    if low >= 0 and high <= 1:
        if raw.shape[1] > 1 and np.allclose(raw.sum(axis=1), 1, atol=1e-4):
            return "softmax"
        return "probability"
    if low >= 0:
        return "nonnegative"
    if -1 <= low and high <= 1:
        return "bounded"
    return "linear"


def _not_saturated(raw, kind, task):
    """Probe points whose outputs are not saturated: on a float32 probability of exactly 0 or 1,
    a loss computed from probabilities (clipped) and one computed from logits differ, so those
    points cannot tell a right loss from a wrong one and are left out."""
    if task == "regression":
        return np.ones(len(raw), bool)
    if kind in ("softmax", "probability"):
        return np.all((raw > 1e-4) & (raw < 1 - 1e-4), axis=1)
    return np.ptp(raw, axis=1) < 10 if raw.shape[1] > 1 else np.abs(raw[:, 0]) < 10


def probe_for_task(handle, task, seed):
    """Probe inputs, labels and the model's outputs on which right and wrong compile choices give
    different numbers: (y, raw outputs, output kind).

    Labels are derived from the model's own predictions with 25 % of them changed, so the true
    accuracy is exactly 0.75; for binary tasks points whose class depends on whether a threshold
    of 0.5 is applied to probabilities or to logits are included, so a metric with the wrong
    threshold shows. The model's weights are redrawn from seeds drawn from ``seed``.
    """
    spec = TASKS[task]
    rng = np.random.default_rng(seed)
    pool = (rng.normal(size=(PROBE_ROWS, spec["n_features"])) * rng.uniform(0.05, 6.0, size=(PROBE_ROWS, 1)))
    pool = pool.astype("float32")
    chosen = []
    for attempt in range(8):
        raw = _predict(handle, pool, int(rng.integers(2**31)), task)
        kind = output_kind(raw)
        usable = _not_saturated(raw, kind, task)
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
             "so its loss cannot be checked.", "keep the given hidden layers.", summary="saturated outputs")
    raw = raw[chosen]
    flipped = np.zeros(len(raw), bool)
    flipped[rng.permutation(len(raw))[: len(raw) // 4]] = True
    if task == "binary":
        predicted = (raw[:, 0] > (0.5 if kind in ("probability", "softmax") else 0.0)).astype(int)
        y = np.where(flipped, 1 - predicted, predicted).astype("float32")[:, None]
    elif task in ("onehot", "integer"):
        predicted = raw.argmax(axis=1)
        labels = np.where(flipped, (predicted + rng.integers(1, spec["units"], len(raw))) % spec["units"], predicted)
        y = np.eye(spec["units"], dtype="float32")[labels] if task == "onehot" else labels.astype("int32")
    else:
        noise = rng.normal(scale=0.5, size=raw.shape)
        noise[flipped] *= 12  # outliers, so that MSE, MAE and Huber give clearly different values
        y = (raw + noise).astype("float32")
    return y, raw, kind


def _predict(handle, pool, seed, task):
    try:
        raw = handle.predict(pool, seed)
    except StudentError as error:
        fail(f"the model cannot compute outputs for inputs with {TASKS[task]['n_features']} features "
             f"({error.type_name}: {error.message}).", "keep the given hidden_layers(...) as the start of the model.",
             summary="the model cannot compute outputs")
    raw = np.asarray(raw, dtype="float64")
    if raw.ndim != 2 or raw.shape != (len(pool), TASKS[task]["units"]):
        fail(f"the model's outputs have shape {raw.shape[1:]} per batch; this task needs ({TASKS[task]['units']},).",
             _OUTPUT_HINTS[task], summary="wrong number of outputs")
    if not np.all(np.isfinite(raw)):
        fail("the model's outputs are not finite numbers.", summary="outputs not finite")
    return raw


def _loss_and_metrics(handle, y, raw, task):
    try:
        return handle.loss_and_metrics(y, raw)
    except StudentError as error:  # a loss that cannot take these labels raises here
        fail(f"training this model on the task's labels ({TASKS[task]['labels']}) fails:\n"
             f"{error.type_name}: {error.message}", _OUTPUT_HINTS[task], summary="the loss cannot take these labels")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _huber(error, delta):
    absolute = np.abs(error)
    return np.mean(np.where(absolute <= delta, 0.5 * error ** 2, delta * absolute - 0.5 * delta ** 2))


def _huber_delta(error, loss):
    """The delta for which mean Huber(error) equals ``loss`` (it grows with delta), or None."""
    low, high = 1e-6, 1e6
    if not (_huber(error, low) <= loss <= _huber(error, high)):
        return None
    for _ in range(200):
        middle = np.sqrt(low * high)
        low, high = (middle, high) if _huber(error, middle) < loss else (low, middle)
    return float(np.sqrt(low * high))


def _reference_losses(task, y, raw, kind):
    """Every right loss value for these labels and outputs, by name."""
    eps = 1e-7
    if task == "regression":
        error = (y - raw).astype("float64")
        absolute = np.abs(error)
        return {"mean squared error": np.mean(error ** 2), "mean absolute error": np.mean(absolute),
                "log-cosh": np.mean(absolute + np.log1p(np.exp(-2 * absolute)) - np.log(2))}
    if task == "binary":
        p = np.clip(raw if kind in ("probability", "softmax") else _sigmoid(raw), eps, 1 - eps)
        return {"binary cross-entropy": np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))}
    if kind == "softmax":
        p = np.clip(raw / raw.sum(axis=1, keepdims=True), eps, 1 - eps)
    elif kind == "probability":  # sigmoid outputs: not a distribution, so no cross-entropy fits
        return {}
    else:
        shifted = raw - raw.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    labels = y.argmax(axis=1) if task == "onehot" else y
    return {"cross-entropy": np.mean(-np.log(p[np.arange(len(p)), labels]))}


def _matching_loss(task, y, raw, kind, loss, check_y, check_raw, check_loss):
    """The name of the right loss the model computes, or None. A Huber loss of any delta is right
    for regression: its delta is found on one probe and must then fit a second one."""
    for name, value in _reference_losses(task, y, raw, kind).items():
        if np.isclose(loss, value, rtol=2e-4, atol=1e-5):
            return name
    if task == "regression":
        delta = _huber_delta((y - raw).astype("float64"), loss)
        if delta is not None and np.isclose(check_loss, _huber((check_y - check_raw).astype("float64"), delta),
                                            rtol=1e-3, atol=1e-5):
            return f"Huber (delta {delta:.3g})"
    return None


def _allowed_output(task, kind):
    if task == "regression":
        return kind == "linear"
    if task == "binary":
        return kind in ("probability", "linear")
    return kind in ("softmax", "linear")


_OUTPUT_WORDS = {"softmax": "rows of probabilities that sum to 1", "probability": "a probability (0 to 1) per unit",
                 "nonnegative": "never negative", "bounded": "always between -1 and 1", "linear": "any real value"}


def check_output_and_loss(model, task, seed=0, silent=False):
    """The output layer and the loss fit the task and each other, judged by the loss the compiled
    model computes on probe data. ``model``: the student's builder (from ``answered``) or a model."""
    handle = _model(model, "your function")
    info = _require_model(handle, task)
    y, raw, kind = probe_for_task(handle, task, seed)
    if not _allowed_output(task, kind):
        fail(f"the output layer gives {_OUTPUT_WORDS[kind]} (it applies '{info['output_activation']}').",
             _OUTPUT_HINTS[task], check="output_and_loss", summary=f"output layer gives {_OUTPUT_WORDS[kind]}")
    computed = _loss_and_metrics(handle, y, raw, task)["loss"]
    check_y, check_raw, _ = probe_for_task(handle, task, seed + 1)
    check_loss = _loss_and_metrics(handle, check_y, check_raw, task)["loss"]
    matching = _matching_loss(task, y, raw, kind, computed, check_y, check_raw, check_loss)
    if matching is None:
        if task != "regression" and kind == "linear":
            hint = (f"a linear output gives logits, not probabilities: does your loss know that? See {LESSON_LOSSES} "
                    "(from_logits).")
            summary = "loss does not fit a linear (logit) output"
        elif task != "regression":
            hint = (f"the output is already a probability: which loss compares probabilities with these labels? "
                    f"See {LESSON_LOSSES}.")
            summary = "loss does not fit a probability output"
        else:
            hint = f"which losses compare real-valued predictions with real-valued targets? See {LESSON_LOSSES}."
            summary = "loss does not fit a regression task"
        fail(f"the loss the model computes ({computed:.4f} on test data) is not a right loss for this task and "
             "output.", hint, check="output_and_loss", summary=summary)
    if not silent:
        passed(f"output ({_OUTPUT_WORDS[kind]}) with a {matching} loss: right for this task.")


def _reference_metrics(task, y, raw, kind):
    if task == "regression":
        error = (y - raw).astype("float64")
        return {"mean absolute error": np.mean(np.abs(error)), "root mean squared error": np.sqrt(np.mean(error ** 2)),
                "mean squared error": np.mean(error ** 2)}
    if task == "binary":
        # A probability is thresholded at 0.5 and a logit at 0; an output that is neither (a ReLU
        # unit, say) may be read either way.
        thresholds = {"linear": [0.0], "probability": [0.5], "softmax": [0.5]}.get(kind, [0.5, 0.0])
        return {"accuracy": [np.mean((raw[:, 0] > t) == (y[:, 0] > 0.5)) for t in thresholds]}
    labels = y.argmax(axis=1) if task == "onehot" else y
    return {"accuracy": np.mean(raw.argmax(axis=1) == labels)}


def check_metrics(model, task, seed=0, silent=False):
    """At least one metric reports what the task asks for — accuracy for a classifier; the mean
    absolute, mean squared or root mean squared error for a regressor — computed the right way.
    ``model``: the student's builder (from ``answered``) or a model."""
    handle = _model(model, "your function")
    _require_model(handle, task)
    y, raw, kind = probe_for_task(handle, task, seed)
    reported = _loss_and_metrics(handle, y, raw, task)["metrics"]
    if not reported:
        fail("the model reports no metric.", f"pass metrics=[...] to compile: see {LESSON_METRICS}.",
             check="metrics", summary="no metric")
    references = _reference_metrics(task, y, raw, kind)
    for name, value in reported.items():
        for reference_name, reference in references.items():
            if np.any(np.isclose(value, reference, rtol=1e-4, atol=1e-6)):
                if not silent:
                    passed(f"metric '{name}' reports the {reference_name}: right for this task.")
                return
    wanted = " or ".join(references)
    if task == "binary" and kind == "linear":
        hint = f"a linear output gives logits: where does accuracy put its threshold? See {LESSON_METRICS}."
        summary = "accuracy thresholded at the wrong value"
    else:
        hint = f"see {LESSON_METRICS}: which metric tells a person how well the model does on this task?"
        summary = "no metric reports what the task asks for"
    fail(f"no metric reports the {wanted} on test data (the model reports: {', '.join(reported)}).", hint,
         check="metrics", summary=summary)


def adam_defaults():
    """Keras's own Adam() config, without its name: the one definition of "Adam's defaults"."""
    import keras

    config = keras.optimizers.Adam().get_config()
    config.pop("name", None)
    return config


ADAM_CLASS = "keras.src.optimizers.adam.Adam"


def _same_config(config, reference):
    if not isinstance(config, dict):
        return False
    config = {k: v for k, v in config.items() if k != "name"}
    if set(config) != set(reference):
        return False
    for key, expected in reference.items():
        value = config[key]
        if isinstance(expected, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not np.isclose(value, expected, rtol=1e-6, atol=0):
                return False
        elif value != expected:
            return False
    return True


def _adam_probe():
    """A start and gradients on which every setting of Adam changes the path: one large gradient
    then small ones (amsgrad keeps the largest v), gradients near epsilon's size, and a large
    weight (weight decay)."""
    rng = np.random.default_rng(7)
    w0 = np.array([3.0, -2.0, 0.5, 10.0])
    gradients = [np.array([5.0, -4.0, 2.0, 1.0])] + [rng.normal(scale=1e-6, size=4) for _ in range(3)] \
        + [rng.normal(size=4) for _ in range(2)]
    return w0, gradients


def _adam_reference(w0, gradients):
    import keras

    variable = keras.Variable(np.asarray(w0, dtype="float32"))
    optimizer = keras.optimizers.Adam()
    path = []
    for gradient in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.asarray(gradient, dtype="float32")), variable)])
        path.append(np.asarray(variable.numpy(), dtype="float64"))
    return path


def check_task_model(model, task, seed=0):
    """The visible check of a compiled model: a Keras model of the right shape, compiled with Adam
    and Keras's default settings (this check's point). Output layer, loss and metrics are graded
    by the hidden tests; this check only says whether they are right yet."""
    handle = _model(model, "your function")
    info = _require_model(handle, task)
    optimizer = info["optimizer"] or {}
    if optimizer.get("class") != ADAM_CLASS:
        shown = str(optimizer.get("class", "none")).rsplit(".", 1)[-1]
        fail(f"the optimizer is {shown}; this exercise asks for Adam with Keras's default settings.",
             "lesson 2 (Optimizers) shows Adam and how to create it.", check="optimizer", summary="not Adam")
    w0, gradients = _adam_probe()
    try:
        path = handle.optimizer_steps(w0, gradients)
    except StudentError as error:
        fail(f"the model's optimizer cannot take a step ({error.type_name}: {error.message}).", check="optimizer",
             summary="optimizer fails")
    reference = _adam_reference(w0, gradients)
    same_path = len(path) == len(reference) and all(
        np.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(path, reference))
    if not (same_path and _same_config(optimizer.get("config"), adam_defaults())):
        changed = sorted(k for k, v in adam_defaults().items()
                         if not _same_config({**adam_defaults(), k: (optimizer.get("config") or {}).get(k, v)},
                                             adam_defaults()))
        detail = f" (changed: {', '.join(changed)})" if changed else ""
        fail(f"the optimizer is Adam, but not with Keras's default settings{detail}.",
             "this exercise asks for Adam exactly as Keras sets it up when you give no arguments.",
             check="optimizer", summary="Adam, but not its default settings")
    passed(f"a compiled Keras model with inputs {tuple(info['input_shape'])}, outputs {tuple(info['output_shape'])} "
           "and Adam with its default settings.")
    _after_visible(f"Output layer, loss and metrics: {GRADED_LATER}")


# --------------------------------------------------------------------------- Adam settings

ADAM_SETTING_RANGES = {"learning_rate": (0.0, 10.0), "beta_1": (0.0, 1.0), "beta_2": (0.0, 1.0), "epsilon": (0.0, 1.0)}


def _real_number(value):
    """``value`` as a float if it is a real number (int, float, a NumPy integer or float scalar,
    a 0-d array of those), else None. ``bool`` is not a number here."""
    if type(value) in (int, float):
        return float(value)
    if isinstance(value, np.ndarray) and value.shape == () or isinstance(value, np.generic):
        if np.asarray(value).dtype.kind in "iuf":
            return float(value)
    return None


def check_adam_settings(settings):
    """Visible check: the student's Adam settings have a valid form (returns nothing, so that
    nbgrader never reads a cell's result as a partial grade)."""
    _validated_adam_settings(settings)


def _validated_adam_settings(settings):
    """The student's Adam settings as a new dict of plain floats in Adam's valid ranges."""
    value = _value(settings, "ADAM_SETTINGS")
    if type(value) is not dict:
        shown = value.type_name if isinstance(value, Unreadable) else type(value).__name__
        fail(f"ADAM_SETTINGS should be a dict, but it is a {shown}.",
             "e.g. ADAM_SETTINGS = dict(beta_2=0.99) — a dict of the settings you change.",
             summary="not a dict", kind="form")
    unknown = sorted(str(k) for k in value if k not in ADAM_SETTING_RANGES)
    if unknown:
        fail(f"ADAM_SETTINGS has keys Adam does not take: {', '.join(unknown)}.",
             f"use only {', '.join(sorted(ADAM_SETTING_RANGES))}.", summary="unknown keys", kind="form")
    clean = {}
    for key, setting in value.items():
        number = _real_number(setting)
        if number is None:
            shown = setting.type_name if isinstance(setting, Unreadable) else type(setting).__name__
            fail(f"{key} should be a number, but it is a {shown}.", summary="a setting is not a number", kind="form")
        low, high = ADAM_SETTING_RANGES[key]
        if not (low < number < high) and not (key == "beta_1" and number == 0.0):
            fail(f"{key} = {number:g} is outside Adam's valid range ({low:g}, {high:g}).",
                 summary="a setting is out of range", kind="form")
        clean[str(key)] = number
    passed("ADAM_SETTINGS has a valid form: " + (", ".join(f"{k}={v:g}" for k, v in clean.items()) or "no changes"))
    return clean


TUNING_EPOCHS = 20
TUNING_TARGET_ACCURACY = 0.83


def train_with_adam_settings(settings, data_seed=0, model_seed=42, epochs=TUNING_EPOCHS):
    """Train the chapter's model on the half-moons with these Adam settings; test accuracy."""
    import keras

    import coursekit
    from coursekit.data import make_moons, train_test_split
    from coursekit.models import build_seed_model

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
    """The chapter's model, trained with ``settings`` for TUNING_EPOCHS epochs, reaches the target.
    The settings are data: the training runs wherever the check runs, never in student code."""
    clean = _validated_adam_settings(settings)
    accuracy = train_with_adam_settings(clean, data_seed=data_seed, model_seed=model_seed)
    if not (accuracy >= TUNING_TARGET_ACCURACY):
        fail(f"with these settings the model reaches a test accuracy of {accuracy:.3f} after {TUNING_EPOCHS} "
             f"epochs; the target is {TUNING_TARGET_ACCURACY}.",
             "20 epochs are few steps: which of Adam's settings makes each step larger? (lesson 2)",
             check="tuning", summary="target accuracy not reached")
    passed(f"test accuracy {accuracy:.3f} after {TUNING_EPOCHS} epochs (target {TUNING_TARGET_ACCURACY}).")
    _after_visible(f"On a fresh draw of the data: {GRADED_LATER}")


# --------------------------------------------------------------------------- by hand in NumPy

def _call(function, *args, what):
    answer = _as_answer(function, what)
    try:
        return answer.call(*args)
    except NoAnswer as problem:
        _no_answer(problem, what)
    except NotCallable as problem:
        fail(f"{what} should be a function, but it is a {problem.type_name}.", summary="not a function", kind="form")
    except StudentError as error:
        if error.type_name == "NotImplementedError":
            fail(f"{what} is not written yet.", "replace `raise NotImplementedError()` with your code.",
                 summary="not written yet", kind="form")
        fail(f"{what} raised {error.type_name}: {error.message}", check=what, summary=f"raised {error.type_name}")


def _as_float_array(value, what):
    if isinstance(value, Unreadable):
        fail(f"{what} returned a {value.type_name}, not numbers.", check=what, summary="returned no numbers")
    try:
        return np.array(value, dtype="float64")
    except (TypeError, ValueError):
        fail(f"{what} returned {type(value).__name__}, not numbers.", check=what, summary="returned no numbers")


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
    got = _as_float_array(_call(function, y_true, y_pred, what="binary_crossentropy"), "binary_crossentropy")
    if got.shape != ():
        fail(f"binary_crossentropy returned an array of shape {got.shape}; it should return one number, "
             "the mean over all examples.", check="bce", summary="not one number")
    if not np.isfinite(got):
        fail(f"binary_crossentropy returned {float(got)} for predictions of exactly 0 or 1.",
             "what is log(0)? Read the exercise's sentence on clipping again.", check="bce",
             summary="not finite for predictions of 0 or 1")
    if not np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        what = "predictions of exactly 0 or 1" if extremes else f"{n} random examples"
        fail(f"for {what}, binary_crossentropy returned {float(got):.6f}; Keras gives {expected:.6f}.",
             "compare your code with the formula above, term by term.", check="bce", summary="wrong value")
    passed(f"binary_crossentropy matches Keras on {n} {'extreme' if extremes else 'random'} examples.")
    _after_visible(f"Other inputs: {GRADED_LATER}")


def adam_step_references(w0, gradients, learning_rate, beta_1, beta_2, epsilon):
    """The two accepted forms of ``steps`` Adam steps: Keras's own optimizer (the bias correction
    folded into the step size, so epsilon is effectively scaled by sqrt(1 - beta_2^t)), and the
    paper's form (epsilon added to the corrected sqrt(v_hat))."""
    import keras

    variable = keras.Variable(np.asarray(w0, dtype="float32"))
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.asarray(g, dtype="float32")), variable)])
    keras_form = np.asarray(variable.numpy(), dtype="float64")
    w, m, v = np.array(w0, dtype="float64"), np.zeros_like(w0, dtype="float64"), np.zeros_like(w0, dtype="float64")
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g ** 2
        w = w - learning_rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)
    return {"Keras's form": keras_form, "the paper's form": w}


def check_adam_step(function, steps=1, seed=0, shape=(3,), gradient_scale=1.0, **hyper):
    """``function(w, g, m, v, t, learning_rate, beta_1, beta_2, epsilon) -> (w, m, v)`` follows Adam
    for ``steps`` steps from zero moments, in Keras's form or the paper's (``adam_step_references``).
    With a large epsilon and small gradients (``gradient_scale``) the two forms, epsilon inside the
    square root and epsilon left out all give clearly different weights."""
    settings = dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    settings.update(hyper)
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=shape)
    gradients = [rng.normal(size=shape) * gradient_scale for _ in range(steps)]
    references = adam_step_references(w0, gradients, **settings)

    w, m, v = w0.copy(), np.zeros(shape), np.zeros(shape)
    for t, g in enumerate(gradients, start=1):
        result = _call(function, w, g, m, v, t, settings["learning_rate"], settings["beta_1"], settings["beta_2"],
                       settings["epsilon"], what="adam_step")
        if type(result) not in (tuple, list) or len(result) != 3:
            fail("adam_step should return three arrays: (new_w, new_m, new_v).", "end with `return w, m, v`.",
                 check="adam_step", summary="does not return (w, m, v)")
        w, m, v = (_as_float_array(part, "adam_step") for part in result)
        if not (w.shape == m.shape == v.shape == shape):
            fail(f"adam_step returned shapes {w.shape}, {m.shape}, {v.shape}; each should be {shape}.",
                 check="adam_step", summary="wrong shapes")
    matching = [name for name, expected in references.items() if np.allclose(w, expected, rtol=1e-5, atol=1e-6)]
    if not matching:
        shown = references["the paper's form"]
        fail(f"after {steps} step(s) your weights are {np.round(w, 6)}; Adam gives {np.round(shown, 6)}.",
             "compare each line of your code with the update rule above: the moments, their bias correction, "
             "and where epsilon goes (lesson 2).", check="adam_step", summary="weights differ from Adam's")
    passed(f"adam_step follows Adam ({matching[0]}) for {steps} step(s) "
           + ", ".join(f"{k}={v:g}" for k, v in settings.items()) + ".")
    _after_visible(f"Other inputs: {GRADED_LATER}")
