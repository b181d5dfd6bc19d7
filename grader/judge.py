"""Judge one test cell where it stands in the notebook, without running any student code.

The driver (``grader.driver``) reaches an autograded test cell and hands it here. The cell's
source — hidden tests and keys included — is run in *this* process, with ``check`` being the
course's checks (``coursekit.grading``) and the answers coming from a ``RemoteSource``: every
time a check needs something of the student's, a typed request goes to the student's kernel
(``coursekit.answers.respond`` there) and a reply comes back as data, which is decoded and
validated before any check looks at it. The kernel sees names, inputs and probe data, never a
test, a key or an expected value; this process never runs anything the kernel sent.

Each test cell gets a ``grader.results.Verdict``: passed or not, what the check printed, why it
failed (the check's classification, for the instructor's report) and the answers it read.
"""

import contextlib
import io
import json
import time

from coursekit import answers as protocol
from coursekit import grading

from grader.results import Verdict


def is_autograded_test(cell):
    """An nbgrader test cell scored automatically (a dict from JSON or an nbformat cell)."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(nbgrader.get("grade")) and not nbgrader.get("solution")


class ChannelError(Exception):
    """The kernel did not answer as the protocol says: the test cannot be judged."""

    kind = "error"


class ChannelTimeout(ChannelError):
    kind = "timeout"


class KernelGone(ChannelError):
    kind = "not_run"


def _decode(data):
    try:
        return protocol.decode(data)
    except (ValueError, TypeError, KeyError) as error:
        raise ChannelError(f"the kernel's reply could not be read ({error})") from None


def _unwrap(reply, name):
    """The reply's ``ok`` part, or the typed problem it reports, raised as the checks expect."""
    if not isinstance(reply, dict):
        raise ChannelError("the kernel's reply is not a record")
    if "ok" in reply:
        return reply["ok"]
    if "no_answer" in reply:
        cause = reply.get("cause")
        raise protocol.NoAnswer(name, str(cause)[:300] if cause else None)
    if "not_callable" in reply:
        raise protocol.NotCallable(name, str(reply["not_callable"])[:100])
    if "raised" in reply and isinstance(reply["raised"], list) and len(reply["raised"]) == 2:
        raise protocol.StudentError(str(reply["raised"][0])[:100], str(reply["raised"][1])[:500])
    raise ChannelError(f"unexpected reply ({str(reply)[:200]})")


class RemoteSource:
    """Answers from the student's kernel, through ``channel.request(dict) -> dict``."""

    def __init__(self, channel):
        self.channel, self.noted, self._built = channel, {}, False

    def answer(self, name):
        self.noted.setdefault(name, None)
        return RemoteAnswer(name, self)

    def note(self, name, value):
        self.noted[name] = value

    def request(self, payload, name):
        return _unwrap(self.channel.request(payload), name)


class RemoteAnswer(protocol.Answer):
    def __init__(self, name, source):
        super().__init__(name)
        self.source = source

    def value(self):
        return _decode(self.source.request({"op": "value", "name": self.name}, self.name))

    def call(self, *args):
        payload = {"op": "call", "name": self.name, "args": [protocol.encode(a) for a in args]}
        return _decode(self.source.request(payload, self.name))

    def model(self):
        fresh = not self.source._built  # the kernel forgets the models of earlier tests
        self.source._built = True
        result = self.source.request({"op": "build", "name": self.name, "fresh_session": fresh}, self.name)
        if not isinstance(result, dict) or not isinstance(result.get("description"), dict):
            raise ChannelError("the kernel's description of the model could not be read")
        return RemoteModel(str(result.get("handle")), _description(result["description"]), self.source, self.name)


def _description(info):
    """The model's self-description, reduced to the fields and types the checks use."""
    def shape(value):
        return [None if n is None else int(n) for n in value] if isinstance(value, list) and all(
            n is None or type(n) is int for n in value) else None

    optimizer = info.get("optimizer") if isinstance(info.get("optimizer"), dict) else None
    return {"type": str(info.get("type"))[:100], "is_keras_model": info.get("is_keras_model") is True,
            "compiled": info.get("compiled") is True, "input_shape": shape(info.get("input_shape")),
            "output_shape": shape(info.get("output_shape")),
            "output_activation": str(info.get("output_activation"))[:100],
            "optimizer": None if optimizer is None else {
                "class": str(optimizer.get("class"))[:200],
                "config": optimizer.get("config") if isinstance(optimizer.get("config"), dict) else None},
            "loss": info.get("loss") if isinstance(info.get("loss"), dict) else None}


class RemoteModel(protocol.ModelHandle):
    def __init__(self, handle, description, source, name):
        self.handle, self.description, self.source, self.name = handle, description, source, name

    def _request(self, op, **data):
        return self.source.request({"op": op, "handle": self.handle, **data}, self.name)

    def describe(self):
        return self.description

    def predict(self, x, seed):
        return _array(_decode(self._request("predict", x=protocol.encode(x), seed=int(seed))))

    def loss_and_metrics(self, y, y_pred):
        result = self._request("loss_and_metrics", y=protocol.encode(y), y_pred=protocol.encode(y_pred))
        try:
            return {"loss": float(result["loss"]), "regularization": float(result["regularization"]),
                    "metrics": {str(k)[:100]: float(v) for k, v in dict(result["metrics"]).items()}}
        except (KeyError, TypeError, ValueError) as error:
            raise ChannelError(f"the kernel's loss and metrics could not be read ({error})") from None

    def optimizer_steps(self, w0, gradients):
        result = self._request("optimizer_steps", w0=protocol.encode(w0),
                               gradients=[protocol.encode(g) for g in gradients])
        if not isinstance(result, list):
            raise ChannelError("the kernel's optimizer steps could not be read")
        return [_array(_decode(step)) for step in result]


def _array(value):
    import numpy as np

    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise ChannelError("the kernel's reply is not a numeric array")
    return value.astype("float64")


def judge(grade_id, source, channel):
    """Run one test cell's ``source`` here, on the student's answers from ``channel``."""
    answers = RemoteSource(channel)
    printed = io.StringIO()
    verdict = Verdict(grade_id=grade_id, passed=False)
    started = time.monotonic()
    try:
        with protocol.use_source(answers), contextlib.redirect_stdout(printed), \
                contextlib.redirect_stderr(printed):
            exec(compile(source, f"<test {grade_id}>", "exec"), {"__name__": "__main__", "check": grading})
        verdict.passed = True
    except grading.CheckFailed as failure:
        verdict.error = ("CheckFailed", str(failure), failure._render_traceback_())
        verdict.check, verdict.summary, verdict.kind = failure.check, failure.summary, failure.kind
        verdict.misconception = failure.misconception
    except ChannelError as error:
        message = str(error)
        verdict.error = (type(error).__name__, message, [f"\x1b[1;31m✗ {message}\x1b[0m"])
        verdict.kind, verdict.summary = error.kind, message
    except protocol.AnswerProblem as problem:  # a check that did not catch one (a check's bug)
        verdict.error = (type(problem).__name__, str(problem), [f"{type(problem).__name__}: {problem}"])
        verdict.kind, verdict.summary = "error", type(problem).__name__
    except Exception as error:  # a test cell's own error on a strange answer
        message = (str(error).strip().splitlines() or [""])[0][:500]
        verdict.error = (type(error).__name__, message, [f"{type(error).__name__}: {message}"])
        verdict.kind, verdict.summary = "error", type(error).__name__
    verdict.seconds = round(time.monotonic() - started, 3)
    verdict.output = printed.getvalue()[:20_000]
    verdict.answers = json.loads(json.dumps(answers.noted, default=str))
    return verdict


def not_judged(grade_id, reason, kind="not_run"):
    """A test cell that could not be judged (the kernel died or stopped answering before it)."""
    return Verdict(grade_id=grade_id, passed=False, error=("NotRun", reason, [f"\x1b[1;31mNot run:\x1b[0m {reason}"]),
                   kind=kind, summary=reason)
