"""Import a class roster (CSV) into nbgrader's gradebook."""

import csv
import re
from dataclasses import dataclass

ID_COLUMNS = ("id", "student_id", "username", "login", "sis_user_id")
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # ids become folder names in nbgrader


@dataclass
class RosterResult:
    imported: list
    rejected: list  # (line number, reason)


def read_roster(path):
    """Rows of a roster CSV as dicts with id, first_name, last_name, email, lms_user_id."""
    try:
        text = open(path, newline="", encoding="utf-8-sig").read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no roster file at {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text file; export the roster as CSV (UTF-8)") from None
    reader = csv.DictReader(text.splitlines())
    columns = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise ValueError(f"{path} has no student id column (one of: {', '.join(ID_COLUMNS)}); "
                         f"found: {', '.join(reader.fieldnames or []) or 'nothing'}")

    def column(row, *names):
        for name in names:
            if name in columns and row.get(columns[name]):
                return row[columns[name]].strip()
        return None

    rows, rejected, seen = [], [], set()
    for line, row in enumerate(reader, start=2):
        student_id = (row.get(id_column) or "").strip()
        if not student_id:
            rejected.append((line, "no student id"))
        elif not VALID_ID.match(student_id):
            rejected.append((line, f"student id {student_id!r} may only use letters, digits, '.', '_' and '-'"))
        elif student_id in seen:
            rejected.append((line, f"student id {student_id!r} appears twice"))
        else:
            seen.add(student_id)
            rows.append({"id": student_id,
                         "first_name": column(row, "first_name", "first name", "given name"),
                         "last_name": column(row, "last_name", "last name", "family name", "surname"),
                         "email": column(row, "email", "e-mail"),
                         "lms_user_id": column(row, "lms_user_id", "lms_id", "canvas_id", "user_id")})
    return rows, rejected


def import_roster(workspace, path):
    rows, rejected = read_roster(path)
    with workspace.gradebook() as gradebook:
        for row in rows:
            student_id = row.pop("id")
            gradebook.update_or_create_student(student_id, **{k: v for k, v in row.items() if v})
    return RosterResult([row for row in rows], rejected)


def roster_students(workspace):
    """student id -> set of tokens that identify the student in an LMS export."""
    with workspace.gradebook() as gradebook:
        return {student.id: {t.lower() for t in (student.id, student.lms_user_id, student.email) if t}
                for student in gradebook.students}
