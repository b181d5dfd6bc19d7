"""How a check reaches a student's answer: in the student's own kernel, or across a narrow channel.

The exercises' checks (``coursekit.grading``) never hold a student's object. They ask an
*answer* for what they need:

* ``value()``: the variable's value, copied into plain data (``encode``/``decode``);
* ``call(*args)``: what the student's function returns for copies of ``args``;
* ``model()``: a *model handle* on a fresh model from the student's builder function, which
  answers ``describe()``, ``predict(x, seed)``, ``loss_and_metrics(y, y_pred)`` and
  ``optimizer_steps(w0, gradients)``.

Where the answer comes from is the *answer source*:

* ``LocalSource`` (the default): the kernel the check runs in. This is self-study, nbgrader's
  Validate and stock ``nbgrader autograde``.
* A grader's source (``grader.judge.RemoteSource``): the checks run in the grader's own
  process, which never runs student code; each need becomes a typed *request* (JSON: names,
  input arrays, probe data), which the student's kernel answers with ``respond`` — the same
  local operations as above — and the reply is data again: numbers, arrays, strings, configs.
  No test source, key or expected value ever travels to the kernel, and nothing the kernel
  sends back is ever run.

A kernel can therefore only choose what it answers, never how its answer is judged.
"""

import base64
import json
import sys
from contextlib import contextmanager

import numpy as np

__all__ = ["Answer", "LocalSource", "ModelHandle", "NoAnswer", "NotCallable", "StudentError", "Unreadable",
           "answer_source", "decode", "encode", "respond", "use_source"]

MAX_ITEMS = 2_000_000   # numbers in one encoded value; larger values are refused, not truncated
MAX_DEPTH = 20
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float


# --------------------------------------------------------------------------- what can go wrong

class AnswerProblem(Exception):
    """The answer cannot be judged as asked; checks turn each kind into a friendly message."""


class NoAnswer(AnswerProblem):
    """The variable does not exist (yet). ``cause``: the error that stopped its cell, if known."""

    def __init__(self, name, cause=None):
        super().__init__(name)
        self.name, self.cause = name, cause


class NotCallable(AnswerProblem):
    def __init__(self, name, type_name):
        super().__init__(f"{name} is a {type_name}")
        self.name, self.type_name = name, type_name


class StudentError(AnswerProblem):
    """The student's code raised ``type_name``: ``message``."""

    def __init__(self, type_name, message):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = str(type_name), str(message)


class TooLarge(AnswerProblem):
    pass


def _first_line(error, limit=300):
    text = str(error).strip()
    return (text.splitlines() or [""])[0][:limit]


# --------------------------------------------------------------------------- plain data

class Unreadable:
    """Stands for a value that is not plain data (a class instance, a Keras object): only its
    type's name crosses the channel, so that a check can say what the student gave."""

    def __init__(self, type_name):
        self.type_name = str(type_name)

    def __repr__(self):
        return f"<a {self.type_name} object>"


def encode(value):
    """``value`` as JSON-safe data. Only exact built-in types and NumPy's numeric arrays and
    scalars are data; a subclass (a ``str`` whose ``__eq__`` says yes to everything) or any other
    object becomes ``{"t": "other"}`` with its type's name."""
    budget = [MAX_ITEMS]

    def walk(item, depth):
        if depth > MAX_DEPTH:
            raise TooLarge("nested too deeply")
        budget[0] -= 1
        if budget[0] < 0:
            raise TooLarge("too many items")
        kind = type(item)
        if item is None or kind in (bool, int, str):
            return {"t": "plain", "v": item}
        if kind is float:
            return {"t": "float", "v": repr(item)}
        if kind in (list, tuple, set, frozenset):
            return {"t": kind.__name__, "v": [walk(x, depth + 1) for x in list(item)]}
        if kind is dict:
            return {"t": "dict", "v": [[walk(k, depth + 1), walk(v, depth + 1)] for k, v in list(item.items())]}
        if kind is np.ndarray or (isinstance(item, np.generic) and kind.__module__ == "numpy"):
            array = np.asarray(item)
            if array.dtype.kind in NUMERIC_KINDS and array.dtype.fields is None:
                budget[0] -= array.size
                if budget[0] < 0:
                    raise TooLarge("too many numbers")
                data = np.ascontiguousarray(array).tobytes()
                return {"t": "ndarray" if kind is np.ndarray else "npscalar", "dtype": array.dtype.str,
                        "shape": list(array.shape), "b64": base64.b64encode(data).decode("ascii")}
        return {"t": "other", "type": getattr(kind, "__qualname__", kind.__name__)}

    return walk(value, 0)


def decode(data):
    """The value ``encode`` described, built afresh from plain data; anything malformed raises
    ``ValueError``. Never runs code and never calls a constructor other than the built-ins'."""
    budget = [MAX_ITEMS]

    def walk(item, depth):
        if depth > MAX_DEPTH or type(item) is not dict:
            raise ValueError("malformed answer")
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError("answer too large")
        kind = item.get("t")
        if kind == "plain":
            value = item.get("v")
            if value is not None and type(value) not in (bool, int, str):
                raise ValueError("malformed plain value")
            return value
        if kind == "float":
            return float(str(item["v"]))
        if kind in ("list", "tuple", "set", "frozenset"):
            items = [walk(x, depth + 1) for x in _list(item["v"])]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind == "dict":
            return {walk(k, depth + 1): walk(v, depth + 1) for k, v in (_pair(p) for p in _list(item["v"]))}
        if kind in ("ndarray", "npscalar"):
            dtype = np.dtype(str(item["dtype"]))
            shape = tuple(int(n) for n in _list(item["shape"]))
            if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or any(n < 0 for n in shape):
                raise ValueError("not a numeric array")
            size = int(np.prod(shape, dtype=np.int64))
            budget[0] -= size
            if budget[0] < 0:
                raise ValueError("answer too large")
            raw = base64.b64decode(str(item["b64"]), validate=True)
            if len(raw) != size * dtype.itemsize:
                raise ValueError("array data does not match its shape")
            array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            return array if kind == "ndarray" else array[()]
        if kind == "other":
            return Unreadable(str(item.get("type", "?"))[:100])
        raise ValueError(f"unknown kind {kind!r}")

    return walk(data, 0)


def _list(value):
    if type(value) is not list:
        raise ValueError("malformed answer")
    return value


def _pair(value):
    if type(value) is not list or len(value) != 2:
        raise ValueError("malformed answer")
    return value


def copied(value):
    """A deep copy made of plain data only (what a remote call would receive)."""
    return decode(json.loads(json.dumps(encode(value))))


# --------------------------------------------------------------------------- the interfaces checks use

class ModelHandle:
    """A model the student's builder returned. Every method's result is plain data."""

    def describe(self):
        """What the model reports about itself (class names, configs, shapes): for messages and
        hints only — verdicts rest on what the model computes."""
        raise NotImplementedError

    def predict(self, x, seed):
        """Outputs for ``x`` after the trainable weights are redrawn from ``seed`` (see
        ``redraw_weights``), as a float64 array."""
        raise NotImplementedError

    def loss_and_metrics(self, y, y_pred):
        """What the compiled loss and metrics give for labels ``y`` and predictions ``y_pred``
        (plain arrays: nothing of the model's forward pass is used, so an output layer's hidden
        logits cannot quietly fix a loss told the wrong thing). ``{"loss": float,
        "regularization": float, "metrics": {name: float}}``; the loss excludes regularization."""
        raise NotImplementedError

    def optimizer_steps(self, w0, gradients):
        """The model's own optimizer applied to a fresh variable starting at ``w0``: the variable
        after each gradient step, as float64 arrays."""
        raise NotImplementedError


class Answer:
    """A student's answer, by the name of its variable."""

    def __init__(self, name):
        self.name = name

    def value(self):
        raise NotImplementedError

    def call(self, *args):
        raise NotImplementedError

    def model(self):
        raise NotImplementedError


# --------------------------------------------------------------------------- local: in this process

def user_namespace():
    """The notebook's variables: IPython's user namespace in a kernel, else ``__main__``."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython is part of every course environment
        shell = None
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


def last_error():
    """The error that last stopped a cell of this kernel, as one line, or None."""
    error = getattr(sys, "last_value", None)
    return f"{type(error).__name__}: {_first_line(error)}" if isinstance(error, BaseException) else None


_MISSING = object()


class LocalAnswer(Answer):
    """An answer in this process: a variable of the notebook, or an object given directly."""

    def __init__(self, name, obj=_MISSING, namespace=None):
        super().__init__(name)
        self._obj, self._namespace = obj, namespace

    def _get(self):
        if self._obj is not _MISSING:
            return self._obj
        namespace = self._namespace if self._namespace is not None else user_namespace()
        value = namespace.get(self.name, _MISSING)
        if value is _MISSING or value is Ellipsis:
            raise NoAnswer(self.name, last_error())
        return value

    def value(self):
        return copied(self._get())

    def call(self, *args):
        function = self._get()
        if not callable(function):
            raise NotCallable(self.name, type(function).__name__)
        arguments = [copied(a) for a in args]  # the student's function may change its inputs in place
        with quiet():
            try:
                result = function(*arguments)
            except Exception as error:
                raise StudentError(type(error).__name__, _first_line(error)) from None
        try:
            return copied(result)
        except TooLarge as error:
            raise StudentError("TooLarge", f"the result is too large ({error})") from None

    def model(self):
        builder = self._get()
        if hasattr(builder, "layers") or not callable(builder):
            return LocalModel(builder)  # a model given directly
        with quiet():
            try:
                built = builder()
            except Exception as error:
                raise StudentError(type(error).__name__, _first_line(error)) from None
        return LocalModel(built)


def _qualified(obj):
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _plain_config(config):
    """A Keras config made JSON-safe (anything else becomes its repr)."""
    return json.loads(json.dumps(config, default=repr))


def redraw_weights(model, seed):
    """Give the model's trainable weights values drawn from ``seed``.

    The student's builder uses Keras's random initialisers, unseeded: probing that model would
    make a verdict depend on the draw. Seeded weights make every verdict reproducible; loss and
    metrics do not depend on which weights the model has."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        shape = tuple(variable.shape)
        scale = 1 / np.sqrt(shape[0]) if len(shape) >= 2 else 0.1
        variable.assign((rng.normal(size=shape) * scale).astype(variable.dtype))


class LocalModel(ModelHandle):
    def __init__(self, model):
        self.model = model

    def describe(self):
        model = self.model
        import keras

        info = {"type": type(model).__name__, "is_keras_model": isinstance(model, keras.Model),
                "compiled": False, "optimizer": None, "loss": None, "metrics": [],
                "input_shape": None, "output_shape": None, "output_activation": None}
        if not info["is_keras_model"]:
            return info
        with quiet():
            for key in ("input_shape", "output_shape"):
                try:
                    shape = getattr(model, key)
                    info[key] = [None if n is None else int(n) for n in shape]
                except Exception:
                    pass
            info["output_activation"] = _last_activation(model)
            info["compiled"] = bool(getattr(model, "compiled", False)) and getattr(model, "optimizer", None) is not None
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None:
                try:
                    config = _plain_config(optimizer.get_config())
                except Exception:
                    config = None
                info["optimizer"] = {"class": _qualified(optimizer), "config": config}
            loss = getattr(model, "loss", None)
            if loss is not None:
                entry = {"class": _qualified(loss), "name": loss if isinstance(loss, str) else
                         getattr(loss, "name", getattr(loss, "__name__", None))}
                try:
                    entry["config"] = _plain_config(loss.get_config()) if hasattr(loss, "get_config") else None
                except Exception:
                    entry["config"] = None
                info["loss"] = entry
        return info

    def predict(self, x, seed):
        with quiet():
            try:
                redraw_weights(self.model, int(seed))
                return np.asarray(self.model(np.asarray(x, dtype="float32"), training=False), dtype="float64")
            except Exception as error:
                raise StudentError(type(error).__name__, _first_line(error)) from None

    def loss_and_metrics(self, y, y_pred):
        import keras

        model = self.model
        with quiet():
            try:
                y = keras.ops.convert_to_tensor(np.asarray(y))
                y_pred = keras.ops.convert_to_tensor(np.asarray(y_pred, dtype="float32"))
                total = float(model.compute_loss(x=None, y=y, y_pred=y_pred, training=False))
                regularization = float(sum(float(model._aggregate_additional_loss(loss)) for loss in model.losses)) \
                    if hasattr(model, "_aggregate_additional_loss") else float(sum(float(l) for l in model.losses))
                model.reset_metrics()
                reported = model.compute_metrics(None, y, y_pred, sample_weight=None)
                metrics = {str(name): float(value) for name, value in reported.items() if name != "loss"}
            except Exception as error:
                raise StudentError(type(error).__name__, _first_line(error)) from None
        return {"loss": total - regularization, "regularization": regularization, "metrics": metrics}

    def optimizer_steps(self, w0, gradients):
        import keras

        with quiet():
            try:
                optimizer = self.model.optimizer
                variable = keras.Variable(np.asarray(w0, dtype="float32"))
                trajectory = []
                for gradient in gradients:
                    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.asarray(gradient, dtype="float32")),
                                                variable)])
                    trajectory.append(np.asarray(variable.numpy(), dtype="float64"))
                return trajectory
            except Exception as error:
                raise StudentError(type(error).__name__, _first_line(error)) from None


_IDENTITY_LAYERS = ("Dropout", "Flatten", "Reshape", "GaussianNoise", "ActivityRegularization", "InputLayer")


def _last_activation(model):
    """The name of the function a model applies last, as its layers report it (for messages)."""
    for layer in reversed(getattr(model, "layers", [])):
        kind = type(layer).__name__
        if kind in _IDENTITY_LAYERS:
            continue
        if kind in ("Softmax", "ReLU"):
            return kind.lower()
        activation = getattr(layer, "activation", None)
        if activation is None:
            return kind
        name = getattr(activation, "__name__", type(activation).__name__)
        return "linear" if name in ("linear", "identity") else name
    return "linear"


class LocalSource:
    """Answers from this kernel's notebook variables."""

    def answer(self, name):
        return LocalAnswer(name)


_source = LocalSource()


def answer_source():
    return _source


@contextmanager
def use_source(source):
    """Checks inside this block read answers from ``source`` (the grader's judge uses this)."""
    global _source
    previous, _source = _source, source
    try:
        yield source
    finally:
        _source = previous


@contextmanager
def quiet():
    """Keep warnings and TensorFlow's Python logger off stderr while student code runs: nbgrader
    scores a test cell 0 when anything reaches stderr."""
    import logging
    import warnings

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- the kernel's side of a request

_handles = {}  # handle id -> LocalModel, for the requests of the test being judged


def respond(request_json):
    """Answer one grader request (a JSON string) from this kernel's variables; returns JSON.

    The grader sends it as a silent ``execute_request`` with a user expression; nothing of a test
    is in it. Every failure becomes a typed reply, so the grader never has to read a traceback."""
    try:
        request = json.loads(request_json)
        reply = _dispatch(request)
    except AnswerProblem as problem:
        reply = _problem(problem)
    except Exception as error:  # a malformed request: the grader's bug, reported as such
        reply = {"protocol_error": f"{type(error).__name__}: {_first_line(error)}"}
    try:
        return json.dumps(reply)
    except (TypeError, ValueError) as error:
        return json.dumps({"protocol_error": f"reply not serialisable: {error}"})


def _problem(problem):
    if isinstance(problem, NoAnswer):
        return {"no_answer": problem.name, "cause": problem.cause}
    if isinstance(problem, NotCallable):
        return {"not_callable": problem.type_name}
    if isinstance(problem, StudentError):
        return {"raised": [problem.type_name, problem.message]}
    return {"raised": [type(problem).__name__, _first_line(problem)]}


def _dispatch(request):
    op = request["op"]
    if op == "value":
        return {"ok": encode(LocalAnswer(str(request["name"])).value())}
    if op == "call":
        args = [decode(a) for a in request["args"]]
        return {"ok": encode(LocalAnswer(str(request["name"])).call(*args))}
    if op == "build":
        if request.get("fresh_session"):
            _handles.clear()
        handle = LocalAnswer(str(request["name"])).model()
        key = f"m{len(_handles) + 1}"
        _handles[key] = handle
        return {"ok": {"handle": key, "description": handle.describe()}}
    handle = _handles[str(request["handle"])]
    if op == "predict":
        return {"ok": encode(handle.predict(decode(request["x"]), int(request["seed"])))}
    if op == "loss_and_metrics":
        return {"ok": handle.loss_and_metrics(decode(request["y"]), decode(request["y_pred"]))}
    if op == "optimizer_steps":
        steps = handle.optimizer_steps(decode(request["w0"]), [decode(g) for g in request["gradients"]])
        return {"ok": [encode(step) for step in steps]}
    raise ValueError(f"unknown request {op!r}")
