"""The report's arithmetic and its reading of the judge's verdict files, on data whose answers are known by hand."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from grader import report, similarity


@pytest.mark.claim("readme.report")
def test_facility_is_the_mean_share_of_the_points():
    assert report.facility([2, 0, 1, 1], 2) == pytest.approx(0.5)
    assert report.facility([], 2) is None


@pytest.mark.claim("readme.report")
def test_point_biserial_correlates_the_item_with_the_rest_of_the_total():
    item = [1, 1, 0, 0, 1]
    totals = [9, 8, 3, 2, 7]
    rest = [8, 7, 3, 2, 6]
    # Pearson's r by its definition, on the rest score (total minus the item)
    x, y = np.array(item, float), np.array(rest, float)
    expected = ((x - x.mean()) * (y - y.mean())).sum() / np.sqrt(((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum())
    assert report.point_biserial(item, totals) == pytest.approx(expected)
    assert report.point_biserial(item, totals) > 0.9
    assert report.point_biserial([1, 1, 1, 1], totals[:4]) is None  # everyone got it: no information


@pytest.mark.claim("readme.report")
def test_upper_lower_index_compares_the_top_and_bottom_27_percent():
    shares = [1.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.5]
    totals = [10, 9, 1, 5, 2, 8, 3, 6, 7, 0, 4]
    # 27 % of 11 -> 3 students each: top totals 10, 9, 8 (shares 1, 1, 1); bottom 0, 1, 2 (0, 0, 0)
    assert report.upper_lower(shares, totals) == pytest.approx(1.0)
    assert report.upper_lower([1, 0, 1], [1, 2, 3]) is None


def _verdict(student, tests, notebook="quiz"):
    return {"version": 1, "student": student, "assignment": "quiz", "notebook": notebook, "tests": tests}


def _choice(grade_id, name, value, passed, misconception=None):
    return {"grade_id": grade_id, "passed": passed, "answers": {name: value}, "message": "",
            "failure": None if passed else {"kind": "wrong_choice", "check": "choice", "summary": "not the best answer"},
            "misconception": misconception}


@pytest.mark.claim("readme.progress", "readme.report")
def test_options_misconceptions_and_failed_checks_from_verdict_files(tmp_path):
    folder = tmp_path / "verdicts" / "quiz"
    files = {
        "s1": [_choice("q1_points", "q1_answer", "B", True),
               _choice("q2_points_ab", "q2_answer", ["A", "C", "E"], True)],
        "s2": [_choice("q1_points", "q1_answer", "C", False, "a sigmoid is needed for non-linearity"),
               _choice("q2_points_ab", "q2_answer", ["A", "B"], False, "metrics are minimised too")],
        "s3": [_choice("q1_points", "q1_answer", "C", False, "a sigmoid is needed for non-linearity"),
               _choice("q2_points_ab", "q2_answer", ["A", "C", "E"], True)],
        "s4": [_choice("q1_points", "q1_answer", "B", True),
               {"grade_id": "q2_points_ab", "passed": False, "answers": {"q2_answer": None}, "message": "no answer",
                "failure": {"kind": "form", "check": "choices", "summary": "no answer yet"}, "misconception": None}],
    }
    for student, tests in files.items():
        (folder / student).mkdir(parents=True)
        (folder / student / "quiz.json").write_text(json.dumps(_verdict(student, tests)))
    (folder / "s5").mkdir()
    (folder / "s5" / "quiz.json").write_text("{not json")
    (folder / "s6").mkdir()
    (folder / "s6" / "quiz.json").write_text(json.dumps({"version": 2, "tests": []}))

    result = report.verdicts_part(SimpleNamespace(root=tmp_path), report.Report("quiz", 4, 9, [], [], 0, 0))
    assert result.verdict_files == 4
    assert sorted(path for path, _ in result.problems) == ["verdicts/quiz/s5/quiz.json", "verdicts/quiz/s6/quiz.json"]
    q1 = {o.option: o for o in result.options if o.answer == "q1_answer"}
    assert {k: (o.count, o.share, o.correct) for k, o in q1.items()} == {"B": (2, 0.5, True), "C": (2, 0.5, False)}
    assert q1["C"].misconception == "a sigmoid is needed for non-linearity" and q1["B"].misconception is None
    q2 = {o.option: o for o in result.options if o.answer == "q2_answer"}
    assert {k: (o.count, o.correct) for k, o in q2.items()} == {"A, C, E": (2, True), "A, B": (1, False)}
    assert q2["A, B"].misconception == "metrics are minimised too"
    letters = {o.option: o.count for o in result.letters}
    assert letters == {"A": 3, "B": 1, "C": 2, "E": 2}
    failures = {(f.grade_id, f.kind, f.summary): (f.count, f.share) for f in result.failures}
    assert failures == {("q1_points", "wrong_choice", "not the best answer"): (2, 0.5),
                        ("q2_points_ab", "wrong_choice", "not the best answer"): (1, 0.25),
                        ("q2_points_ab", "form", "no answer yet"): (1, 0.25)}


STUB = {"def binary_crossentropy(y_true, y_pred):", "# YOUR CODE HERE", "raise NotImplementedError()"}
COPIED = ("def binary_crossentropy(y_true, y_pred):\n"
          "    # keep p away from 0 and 1 so the log stays finite, as Keras does with its epsilon\n"
          "    p = np.clip(y_pred, 1e-7, 1 - 1e-7)\n"
          "    return -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))\n")


@pytest.mark.claim("readme.report")
def test_similar_pairs_find_the_copy_and_ignore_the_stub_short_and_common_answers():
    own = ("def binary_crossentropy(y_true, y_pred):\n    eps = 1e-7\n    clipped = np.minimum(np.maximum(y_pred, eps), 1 - eps)\n"
           "    losses = y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped)\n    return -losses.mean()\n")
    text = "The loss is what the optimizer minimises through its gradients; metrics are only reported for people."
    explained = "Because the sigmoid squashes any real number into (0, 1), the output reads as a probability."
    answers = {
        "copy1": {"bce": similarity.normalise(COPIED, STUB, "code"), "why": similarity.normalise(text, set(), "markdown")},
        # the same with other spacing and punctuation: still a copy
        "copy2": {"bce": similarity.normalise(COPIED.replace(" = ", "=").replace("\n", "\n\n"), STUB, "code"),
                  "why": similarity.normalise(text.upper().replace(";", ","), set(), "markdown")},
        "own": {"bce": similarity.normalise(own, STUB, "code"), "why": similarity.normalise(explained, set(), "markdown")},
        "stub": {"bce": similarity.normalise("def binary_crossentropy(y_true, y_pred):\n    # YOUR CODE HERE\n"
                                             "    raise NotImplementedError()", STUB, "code")},
    }
    common = similarity.normalise("q1_answer = 'B'  # the probability of class 1, for binary cross-entropy", set(), "code")
    for index in range(4):  # a one-liner a third of the class wrote word for word
        answers.setdefault(f"other{index}", {})["q1"] = common
    answers["copy1"]["q1"] = answers["own"]["q1"] = common
    pairs = similarity.similar_pairs(answers)
    assert [(p.first, p.second) for p in pairs] == [("copy1", "copy2")]
    assert pairs[0].similarity == 100.0 and set(pairs[0].identical) == {"bce", "why"}
    assert answers["stub"]["bce"] == ""
