"""The exercises' checks (coursekit.grading) run in the student's own kernel (self-study, Validate):
answers given as objects, through coursekit.answers' local source."""

import numpy as np
import pytest

from coursekit import grading as check
from coursekit.answers import LocalAnswer, decode, encode


def adam_in_place(w, g, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """A right Adam step that updates its arrays in place, as NumPy code often does."""
    m *= beta_1
    m += (1 - beta_1) * g
    v *= beta_2
    v += (1 - beta_2) * g ** 2
    w -= learning_rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)
    return w, m, v


def bce_in_place(y_true, y_pred):
    np.clip(y_pred, 1e-7, 1 - 1e-7, out=y_pred)
    return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))


@pytest.mark.parametrize("steps, hyper", [(1, {}), (5, dict(learning_rate=0.05, beta_1=0.8, beta_2=0.99))])
def test_an_adam_step_that_updates_its_arrays_in_place_is_right(steps, hyper, capsys):
    check.check_adam_step(LocalAnswer("adam_step", adam_in_place), steps=steps, seed=3, **hyper)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("extremes", [False, True])
def test_a_cross_entropy_that_clips_in_place_is_right(extremes, capsys):
    check.check_bce(LocalAnswer("binary_crossentropy", bce_in_place), seed=11, extremes=extremes)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.claim("readme.judged-outside", "readme.no-eq-cheat")
def test_answers_cross_as_plain_data_only():
    class Sneaky(str):
        def __eq__(self, other):
            return True

    value = decode(encode({"a": [1, 2.5, "x", Sneaky("A"), np.float64(0.5), np.arange(3)], "b": (None, True)}))
    assert value["a"][:3] == [1, 2.5, "x"] and type(value["a"][3]).__name__ == "Unreadable"
    assert type(value["a"][4]) is np.float64 and value["a"][5].tolist() == [0, 1, 2]
    assert value["b"] == (None, True)
    with pytest.raises(ValueError):
        decode({"t": "ndarray", "dtype": "|O", "shape": [1], "b64": ""})  # no object arrays, ever


def test_a_function_answer_gets_copies_of_its_inputs():
    """The inputs a check keeps are never the ones the student's function changes in place."""
    def clobber(x):
        x[:] = 0
        return float(x.sum())

    kept = np.ones(3)
    assert LocalAnswer("clobber", clobber).call(kept) == 0.0
    assert kept.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.claim("readme.check-messages")
def test_a_failed_check_prints_one_message_not_a_traceback(capsys):
    """In IPython (the student's kernel) a failed check shows its message and hint, no traceback; IPython still
    records an error, so nbgrader scores the cell 0."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["check"] = check
    result = shell.run_cell("check.fail('q1_answer must be one letter', hint='put the letter in quotes')")
    shown = capsys.readouterr().out
    assert isinstance(result.error_in_exec, check.CheckFailed)
    assert shown.splitlines() == ["\x1b[1;31m✗ Not yet:\x1b[0m q1_answer must be one letter",
                                  "  Hint: put the letter in quotes"]
    assert "Traceback" not in shown


@pytest.mark.claim("readme.tensorflow-stderr")
def test_the_checks_silence_warnings_while_student_code_runs(recwarn):
    """nbgrader scores a test cell 0 when it writes to stderr: a warning from the student's code, which a kernel
    would print there, must not even be issued while a check runs that code."""
    import warnings

    def noisy():
        warnings.warn("a warning from the student's own code", UserWarning)
        return 1.0

    warnings.simplefilter("always")  # as a fresh kernel shows every warning once; recwarn records what is shown
    assert LocalAnswer("noisy", noisy).call() == 1.0
    assert [str(w.message) for w in recwarn] == []
    noisy()
    assert len(recwarn) == 1, "outside a check the same warning is shown: the test can tell"
