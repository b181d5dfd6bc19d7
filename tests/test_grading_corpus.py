"""Every answer in the corpus gets exactly the score it deserves from the real `nbgrader autograde`.

The corpus (tests/corpus/answer_variants.py) holds valid variants, misconceptions and cheats for
every graded cell. Variants that touch different cells share one submission, so a batch of
submissions covers the whole corpus; a variant must not change the score of any other cell.
"""

from collections import defaultdict

import pytest

from corpus.answer_variants import VARIANTS, pack_into_submissions
from support.nbgrader_course import Course

NOTEBOOKS = sorted({variant.notebook for variant in VARIANTS})


@pytest.mark.claim("readme.corpus", "readme.judged-outside", "readme.nbgrader")
@pytest.mark.parametrize("grader", ["nbgrader", "course-grader"])
@pytest.mark.parametrize("notebook_path", NOTEBOOKS)
def test_corpus_scores_exactly_as_expected(notebook_path, grader, tmp_path):
    """Stock nbgrader runs the tests in the student's kernel; course-grader judges them outside it
    (grader.judge). Both must give every variant exactly its score."""
    assignment, notebook = notebook_path.split("/")
    course = Course(tmp_path / "course")
    course.release(assignment)
    variants = [v for v in VARIANTS if v.notebook == notebook_path]
    submissions = pack_into_submissions(variants)
    students = {}
    for index, packed in enumerate(submissions):
        student = f"variant{index:02d}"
        answers = {grade_id: source for variant in packed for grade_id, source in variant.cells.items()}
        course.submit(student, assignment, notebook, answers)
        students[student] = packed
    course.submit("solution", assignment, notebook, {})
    if grader == "nbgrader":
        course.autograde(assignment, notebook)
    else:
        course.autograde_with_course_grader(assignment)

    full = course.max_scores(assignment, notebook)
    assert full, "the notebook has no autograded cells"
    wrong = []
    assert course.autograded_scores("solution", assignment, notebook) == full, "the solution must get full points"
    for student, packed in students.items():
        scores = course.autograded_scores(student, assignment, notebook)
        expected = dict(full)
        for variant in packed:
            expected.update(variant.expect)
        for grade_id, points in expected.items():
            if scores.get(grade_id) != points:
                owner = next((v for v in packed if grade_id in v.expect), None)
                wrong.append(f"{owner.label if owner else '(untouched cell)'} [{owner.kind if owner else '-'}]: "
                             f"{grade_id} got {scores.get(grade_id)}, expected {points}")
    assert wrong == [], "false passes or false fails:\n" + "\n".join(wrong)


@pytest.mark.claim("readme.corpus")
def test_corpus_covers_every_autograded_cell_with_right_and_wrong_answers(tmp_path):
    course = Course(tmp_path / "course")
    covered = defaultdict(set)
    for variant in VARIANTS:
        for grade_id in variant.expect:
            covered[grade_id].add(variant.kind)
    for notebook_path in NOTEBOOKS:
        assignment, notebook = notebook_path.split("/")
        for grade_id in course.max_scores(assignment, notebook):
            assert {"right", "wrong"} <= covered[grade_id], f"{notebook_path}:{grade_id} needs right and wrong variants"
