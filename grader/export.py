"""Grades out of nbgrader's gradebook, as a file an LMS imports as it is (or our own CSV).

Every number comes from nbgrader's Gradebook API: a submission's score, its late penalty, and which answers
still need a human (``Grade.needs_manual_grade``, set for written answers until someone grades them in
Formgrader). A grade is

* **final** when no answer of the submission waits for a human,
* **provisional** when some do (their points are not in the score yet),
* **not submitted** when the gradebook has no submission — exported blank, never as 0: blank means "no grade
  from us" to Canvas and Moodle, where a 0 would be a grade.

Canvas and Moodle files leave provisional grades blank unless asked (``include_provisional``), so that a
half-graded assignment cannot be imported as final by accident; ``csv`` shows everything with its status.
"""

import csv
from dataclasses import dataclass
from enum import Enum

from nbgrader.api import MissingEntry

from grader.lms import LmsRecord


class Format(str, Enum):
    CANVAS = "canvas"
    MOODLE = "moodle"
    CSV = "csv"


class Status(str, Enum):
    FINAL = "final"
    PROVISIONAL = "provisional"
    NOT_SUBMITTED = "not submitted"


@dataclass(frozen=True)
class StudentInfo:
    id: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str


@dataclass(frozen=True)
class Grade:
    student: str
    assignment: str
    status: Status
    score: float = None          # after the late penalty; None when not submitted
    raw_score: float = None
    late_penalty: float = 0.0
    max_score: float = 0.0
    to_grade: int = 0            # answers that still need a human
    timestamp: object = None
    duedate: object = None


@dataclass
class GradeTable:
    students: list               # StudentInfo, in the LMS's order (last name, first name)
    assignments: list            # (name, max score)
    grades: dict                 # (student, assignment) -> Grade

    @property
    def provisional(self):
        return [g for g in self.grades.values() if g.status is Status.PROVISIONAL]


def grade_table(workspace, assignments=None):
    with workspace.gradebook() as gradebook:
        known = {a.name: a for a in gradebook.assignments}
        names = list(assignments) if assignments else sorted(known)
        missing = [name for name in names if name not in known]
        if missing:
            raise ValueError(f"not in the gradebook: {', '.join(missing)} (released: {', '.join(sorted(known)) or 'none'})")
        students = sorted((StudentInfo(s.id, s.first_name, s.last_name, s.email, s.lms_user_id)
                           for s in gradebook.students),
                          key=lambda s: ((s.last_name or "").lower(), (s.first_name or "").lower(), s.id))
        table = GradeTable(students, [(name, float(known[name].max_score or 0)) for name in names], {})
        for name in names:
            assignment = known[name]
            for student in students:
                try:
                    submission = gradebook.find_submission(name, student.id)
                except MissingEntry:
                    table.grades[student.id, name] = Grade(student.id, name, Status.NOT_SUBMITTED,
                                                           max_score=float(assignment.max_score or 0),
                                                           duedate=assignment.duedate)
                    continue
                to_grade = sum(1 for notebook in submission.notebooks for grade in notebook.grades
                               if grade.needs_manual_grade)
                penalty = float(submission.late_submission_penalty or 0)
                table.grades[student.id, name] = Grade(
                    student.id, name, Status.PROVISIONAL if to_grade else Status.FINAL,
                    max(0.0, float(submission.score) - penalty), float(submission.score), penalty,
                    float(submission.max_score), to_grade, submission.timestamp, assignment.duedate)
    return table


def number(value):
    return "" if value is None else format(round(value, 4), "g")


def write(workspace, table, fmt, path, include_provisional=False):
    """Write ``table`` as ``fmt`` to ``path``; returns notes for the instructor (strings)."""
    fmt = Format(fmt)
    record = LmsRecord.load(workspace.root)
    notes = []

    def value(grade):
        if grade.status is Status.FINAL or (grade.status is Status.PROVISIONAL and include_provisional):
            return number(grade.score)
        return ""

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if fmt is Format.CSV:
            writer.writerow(["student_id", "last_name", "first_name", "email", "lms_user_id", "assignment", "status",
                             "score", "max_score", "raw_score", "late_penalty", "answers_to_grade_by_hand",
                             "timestamp", "duedate"])
            for student in table.students:
                for name, _ in table.assignments:
                    g = table.grades[student.id, name]
                    writer.writerow([student.id, student.last_name or "", student.first_name or "", student.email or "",
                                     student.lms_user_id or "", name, g.status.value, number(g.score), number(g.max_score),
                                     number(g.raw_score), number(g.late_penalty) if g.raw_score is not None else "",
                                     g.to_grade, g.timestamp or "", g.duedate or ""])
        elif fmt is Format.CANVAS:
            titles = [record.columns.get(name, {}).get("canvas") or name for name, _ in table.assignments]
            for (name, _), title in zip(table.assignments, titles):
                if title == name:
                    notes.append(f"'{name}' has no Canvas column in the roster (import Canvas's gradebook export with "
                                 f"course-grader roster): the column is titled '{name}', and Canvas makes it a new "
                                 "assignment on import")
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *titles])
            writer.writerow(["    Points Possible", "", "", "", "", *[number(points) for _, points in table.assignments]])
            no_id = []
            for student in table.students:
                fields = record.students.get(student.id, {}).get("fields", {})
                canvas_id = fields.get("ID") or student.lms_user_id or ""
                if not canvas_id:
                    no_id.append(student.id)
                writer.writerow([fields.get("Student") or f"{student.last_name or ''}, {student.first_name or ''}",
                                 canvas_id, fields.get("SIS User ID", ""), fields.get("SIS Login ID", ""),
                                 fields.get("Section", ""),
                                 *[value(table.grades[student.id, name]) for name, _ in table.assignments]])
            if no_id:
                notes.append(f"{len(no_id)} students have no Canvas ID ({', '.join(no_id[:5])}…): Canvas cannot match "
                             "their rows; import the roster from Canvas's gradebook export")
        else:
            titles = [record.columns.get(name, {}).get("moodle") or name for name, _ in table.assignments]
            writer.writerow(["First name", "Last name", "ID number", "Email address", *titles])
            for student in table.students:
                fields = record.students.get(student.id, {}).get("fields", {})
                writer.writerow([student.first_name or "", student.last_name or "",
                                 fields.get("ID number") or student.lms_user_id or "", student.email or "",
                                 *[value(table.grades[student.id, name]) for name, _ in table.assignments]])
            no_email = [s.id for s in table.students if not s.email]
            if no_email:
                notes.append(f"{len(no_email)} students have no e-mail address ({', '.join(no_email[:5])}…): Moodle's "
                             "import matches rows by it")
    provisional = table.provisional
    if provisional:
        answers = sum(g.to_grade for g in provisional)
        where = ("marked 'provisional' in the status column" if fmt is Format.CSV
                 else "exported as they are (--provisional)" if include_provisional else "left blank")
        notes.insert(0, f"{len(provisional)} grades are provisional: {answers} answers still need a human "
                        f"({where}); grade them in Formgrader (course-grader formgrader), then export again")
    return notes
