"""What Canvas and Moodle put in their exports and accept as imports: their conventions, in one place.

Canvas (read in Canvas's own code: ``lib/content_zipper.rb``, ``lib/gradebook_exporter.rb``):

* **Download Submissions** (a zip): one file per uploaded attachment, named
  ``<sortable name: lower case, only word characters>[_LATE]_<user id>_<attachment id>_<file name>``. ``LATE``
  is Canvas's own judgement (its due date, with the student's overrides and extensions); with anonymous
  grading ``anon_<id>`` stands where the name and user id would be. A file a student uploads again under the
  same name is stored as ``quiz-1.ipynb``, ``quiz-2.ipynb``…; attachment ids only grow, so the largest is the
  newest upload. The zip's entry times are the time of the export, for every file.
* **Gradebook** export and import (CSV): ``Student, ID, SIS User ID, SIS Login ID, [Integration ID],
  [Root Account], Section``, then one column per assignment titled ``<name> (<assignment id>)`` and read-only
  totals. A ``    Points Possible`` row follows the header (a "Manual Posting" row may come before it), and the
  course's test student ("Student, Test", made by Student View) comes last. On import, Canvas ignores the
  Points Possible row and a blank cell changes nothing.

Moodle (``mod/assign/classes/downloader.php``, ``mod/assign/feedback/offline``, ``grade/export``):

* **Download all submissions**: one folder per participant, ``<full name>_<participant id>_assignsubmission_file_``
  (Moodle 4.1+ drops the last underscore; with "download submissions in folders" off, that prefix is glued to
  each file name instead). The participant id belongs to the assignment (``assign_user_mapping``), not to the
  user, and the download holds one attempt (the latest) and no submission time.
* **Grading worksheet** (offline grading): ``Identifier`` ("Participant 123456"), ``Full name``, ``Email address``,
  ``Status``, ``Grade``, ``Maximum Grade``, ``Grade can be changed``, ``Last modified (submission)``,
  ``Last modified (grade)`` … — the one file in which Moodle gives each participant's id and submission time.
* **Gradebook** export (plain text) and CSV import: ``First name, Last name (older: Surname), ID number,
  Institution, Department, Email address``, then one column per grade item (``Assignment: Quiz (Real)``). The
  import matches rows by a column the instructor picks (here: Email address → email address).

nbgrader's ``FileNameCollectorPlugin`` matches one regular expression per file and compares duplicates by a
timestamp; it has no notion of Canvas's attachment order, of a late marker without a time, or of Moodle's
per-assignment participant ids, so the parsing below is ours; the file copying, timestamps and lateness are
nbgrader's formats (``timestamp.txt``, the gradebook's due date, its late-submission plugin).
"""

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath


class Lms(str, Enum):
    CANVAS = "canvas"
    MOODLE = "moodle"
    PLAIN = "plain"  # a folder per student (nbgrader's own layout, or anything by hand)


# ----------------------------------------------------------------------------------- submission names

CANVAS_FILE = re.compile(
    r"^(?:(?P<late_first>late)_)?(?P<name>[^/]+?)_(?:(?P<late>late)_)?(?P<user>\d+)_(?P<attachment>\d+)_(?P<file>.+)$",
    re.IGNORECASE)
CANVAS_ANONYMOUS = re.compile(r"^(?:(?P<late>late)_)?anon_(?P<anon>[A-Za-z0-9]+)_(?P<attachment>\d+)_(?P<file>.+)$",
                              re.IGNORECASE)
MOODLE_PREFIX = re.compile(r"^(?P<name>.+)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+?)(?:_(?P<rest>.*))?$")
RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")  # Canvas's quiz-1.ipynb
BROWSER_COPY = re.compile(r"^(?P<stem>.+?)\s*\((?P<n>\d+)\)$")  # a browser's "quiz (1).ipynb"


@dataclass(frozen=True)
class Entry:
    """One file of an export, as its LMS named it."""

    path: str                     # inside the export (zip member or relative path)
    lms: Lms
    filename: str                 # the student's own file name, LMS prefix removed
    user_id: str = None           # Canvas user id
    participant_id: str = None    # Moodle participant id (per assignment)
    anonymous_id: str = None      # Canvas anonymous grading
    name: str = None              # the student's name as the LMS wrote it
    late: bool = None             # Canvas's LATE marker (None: the LMS says nothing)
    attachment: int = None        # Canvas attachment id
    plugin: str = None            # Moodle submission plugin (file, onlinetext…)

    @property
    def stem(self):
        """The file name without extension and without Canvas's -N resubmission suffix."""
        stem = PurePosixPath(self.filename).stem
        match = RESUBMISSION.match(stem) if self.lms is Lms.CANVAS else None
        return match["stem"] if match else stem

    @property
    def resubmission(self):
        match = RESUBMISSION.match(PurePosixPath(self.filename).stem) if self.lms is Lms.CANVAS else None
        return int(match["n"]) if match else 0

    @property
    def order(self):
        """The LMS's own order of two uploads of one notebook: larger is newer. Canvas: the attachment id, then
        the -N suffix; Moodle and plain folders hold one attempt per student, so every file ties."""
        return (self.attachment or 0, self.resubmission)


def parse_entry(path):
    """What the LMS's naming convention says about the file at ``path`` (POSIX, relative to the export)."""
    path = path.replace("\\", "/")
    parts = PurePosixPath(path).parts
    base = parts[-1]
    for index, part in enumerate(parts):
        match = MOODLE_PREFIX.match(part)
        if match:
            rest = "/".join(([match["rest"]] if match["rest"] else []) + list(parts[index + 1:]))
            return Entry(path, Lms.MOODLE, PurePosixPath(rest).name if rest else "", participant_id=match["participant"],
                         name=match["name"], plugin=match["plugin"])
    match = CANVAS_ANONYMOUS.match(base)
    if match:
        return Entry(path, Lms.CANVAS, match["file"], anonymous_id=match["anon"], late=bool(match["late"]),
                     attachment=int(match["attachment"]))
    match = CANVAS_FILE.match(base)
    if match:
        return Entry(path, Lms.CANVAS, match["file"], user_id=match["user"], name=match["name"],
                     late=bool(match["late"] or match["late_first"]), attachment=int(match["attachment"]))
    return Entry(path, Lms.PLAIN, base)


def copy_stem(stem):
    """``tune-adam (1)`` -> ``tune-adam``: the name a browser gives a second download of one file."""
    match = BROWSER_COPY.match(stem)
    return match["stem"] if match else stem


def canvas_name_key(last_name, first_name):
    """How Canvas writes a sortable name 'Doe, Jane' in file names: 'doejane'."""
    return re.sub(r"\W", "", f"{last_name or ''}{first_name or ''}").lower()


def name_key(text):
    """A name compared across spellings: case, accents kept, spaces and punctuation ignored."""
    return re.sub(r"[\W_]", "", text or "").lower()


# ----------------------------------------------------------------------------------- rosters

VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # ids become folder names in nbgrader
GENERIC_ID_COLUMNS = ("id", "student_id", "username", "login", "sis_user_id")
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section")
CANVAS_TEST_STUDENT = {"student, test", "test student"}
CANVAS_ASSIGNMENT_COLUMN = re.compile(r"^(?P<title>.*\S)\s+\((?P<id>\d+)\)$")
MOODLE_IDENTITY = ("First name", "Last name", "Surname", "ID number", "Institution", "Department", "Email address")
MOODLE_GRADE_ITEM = re.compile(r"^(?:Assignment|Quiz|Manual item|[A-Z][\w ]*):\s*(?P<title>.*?)\s*\((?:Real|Percentage|Letter)\)$")


@dataclass
class RosterStudent:
    id: str
    first_name: str = None
    last_name: str = None
    email: str = None
    lms_user_id: str = None
    lms_fields: dict = field(default_factory=dict)  # the LMS's own identity columns, verbatim, for export


@dataclass
class Roster:
    lms: Lms
    students: list
    rejected: list                                     # (line number, reason)
    assignment_columns: dict = field(default_factory=dict)  # LMS column title -> its name, e.g. 'Quiz (5001)' -> 'Quiz'


class RosterError(ValueError):
    """A roster file that cannot be read; the message says why and what to export instead."""


def read_roster(path):
    """Students of a roster file: Canvas's or Moodle's gradebook export, or a CSV with an id column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"no roster file at {path}") from None
    except UnicodeDecodeError:
        raise RosterError(f"{path} is not a UTF-8 text file; export the roster as CSV (UTF-8)") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise RosterError(f"{path} is empty")
    header = [cell.strip() for cell in rows[0]]
    if "Identifier" in header and "Full name" in header:
        raise RosterError(f"{path} is Moodle's grading worksheet: it belongs to one assignment; give it to "
                          "`course-grader collect … --worksheet` (import the class from Moodle's gradebook export: "
                          "Grades → Export → Plain text file)")
    if "SIS Login ID" in header and ("Student" in header or "LastName" in header):
        return _canvas_roster(header, rows[1:])
    if "Email address" in header and "First name" in header and ("Last name" in header or "Surname" in header):
        return _moodle_roster(header, rows[1:])
    return _generic_roster(path, header, rows[1:])


def _records(header, rows):
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        yield line, {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}


def _choose_ids(candidates, rejected):
    """candidates: [(line, [possible ids, best first], student)] -> students, each with the first id of its
    list that is valid and not taken. An e-mail's local part (marked by ``_local_part``) counts only when
    no other student's e-mail has the same one."""
    locals_seen = [i for _, ids, _ in candidates for i in ids if isinstance(i, LocalPart)]
    shared = {i for i in locals_seen if locals_seen.count(i) > 1}
    chosen, taken = [], set()
    for line, ids, student in candidates:
        usable = [str(i) for i in ids if i and VALID_ID.match(i) and i not in shared]
        pick = next((i for i in usable if i not in taken), None)
        if pick is None:
            rejected.append((line, f"no usable student id among {[str(i) for i in ids if i] or 'empty columns'} "
                                   "(ids may use letters, digits, '.', '_' and '-', and must be unique)"))
            continue
        taken.add(pick)
        student.id = pick
        chosen.append(student)
    return chosen


class LocalPart(str):
    """The part of an e-mail address before '@', offered as a student id."""


def _local_part(email):
    return LocalPart(email.split("@", 1)[0]) if email and "@" in email else None


def _canvas_roster(header, rows):
    rejected, candidates = [], []
    columns = {}
    for title in header:
        match = CANVAS_ASSIGNMENT_COLUMN.match(title)
        if match and title not in CANVAS_IDENTITY:
            columns[title] = match["title"]
    for line, record in _records(header, rows):
        name = record.get("Student") or ", ".join(p for p in (record.get("LastName"), record.get("FirstName")) if p)
        if name.strip().lower() == "points possible" or (not name and not record.get("ID")):
            continue  # the Points Possible and Manual Posting rows
        if name.strip().lower() in CANVAS_TEST_STUDENT:
            rejected.append((line, "Canvas's test student (Student View): skipped"))
            continue
        if not record.get("ID"):
            rejected.append((line, f"no Canvas ID for {name!r}"))
            continue
        last, _, first = name.partition(",")
        if "LastName" in record:
            last, first = record.get("LastName", ""), record.get("FirstName", "")
        login = record.get("SIS Login ID")
        email = login if login and "@" in login else None
        student = RosterStudent(id="", first_name=first.strip() or None, last_name=last.strip() or None, email=email,
                                lms_user_id=record["ID"],
                                lms_fields={k: record[k] for k in (*CANVAS_IDENTITY, "LastName", "FirstName")
                                            if k in record})
        ids = [record.get("SIS User ID"), login if login and "@" not in login else None, _local_part(email),
               record["ID"]]
        candidates.append((line, ids, student))
    return Roster(Lms.CANVAS, _choose_ids(candidates, rejected), rejected, columns)


def _moodle_roster(header, rows):
    rejected, candidates = [], []
    columns = {}
    for title in header:
        match = MOODLE_GRADE_ITEM.match(title)
        if match and not title.startswith("Course total"):
            columns[title] = match["title"]
    for line, record in _records(header, rows):
        email = record.get("Email address") or None
        student = RosterStudent(id="", first_name=record.get("First name") or None,
                                last_name=(record.get("Last name") or record.get("Surname")) or None, email=email,
                                lms_user_id=record.get("ID number") or None,
                                lms_fields={k: record[k] for k in MOODLE_IDENTITY if k in record})
        candidates.append((line, [record.get("ID number"), _local_part(email)], student))
    return Roster(Lms.MOODLE, _choose_ids(candidates, rejected), rejected, columns)


def _generic_roster(path, header, rows):
    columns = {name.lower(): name for name in header}
    id_column = next((columns[c] for c in GENERIC_ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise RosterError(f"{path} has no student id column (one of: {', '.join(GENERIC_ID_COLUMNS)}), and is not "
                          f"Canvas's or Moodle's gradebook export; found: {', '.join(header) or 'nothing'}")

    def column(record, *names):
        return next((record[columns[n]] for n in names if n in columns and record.get(columns[n])), None)

    students, rejected, seen = [], [], set()
    for line, record in _records(header, rows):
        student_id = record.get(id_column, "")
        if not student_id:
            rejected.append((line, "no student id"))
        elif not VALID_ID.match(student_id):
            rejected.append((line, f"student id {student_id!r} may only use letters, digits, '.', '_' and '-'"))
        elif student_id in seen:
            rejected.append((line, f"student id {student_id!r} appears twice"))
        else:
            seen.add(student_id)
            students.append(RosterStudent(
                student_id, column(record, "first_name", "first name", "given name"),
                column(record, "last_name", "last name", "family name", "surname"),
                column(record, "email", "e-mail"), column(record, "lms_user_id", "lms_id", "canvas_id", "user_id")))
    return Roster(Lms.PLAIN, students, rejected)


# ----------------------------------------------------------------------------------- the workspace's LMS record

LMS_FILE = "lms.json"


@dataclass
class LmsRecord:
    """WORKSPACE/lms.json: what the gradebook has no column for (nbgrader keeps only ``lms_user_id``)."""

    students: dict = field(default_factory=dict)     # student id -> {"lms": "canvas", "fields": {...}}
    columns: dict = field(default_factory=dict)      # assignment -> {"canvas": "Quiz (5001)", "moodle": "…"}
    version: int = 1

    @classmethod
    def load(cls, root):
        path = Path(root) / LMS_FILE
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls(data.get("students", {}), data.get("columns", {}), data.get("version", 1))

    def save(self, root):
        path = Path(root) / LMS_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")
        temporary.replace(path)

    def add(self, roster, assignments):
        """Record a roster's LMS fields and the LMS's columns of our assignments (matched by name)."""
        for student in roster.students:
            if roster.lms is not Lms.PLAIN:
                self.students[student.id] = {"lms": roster.lms.value, "fields": student.lms_fields}
        matched = {}
        for column, title in roster.assignment_columns.items():
            for assignment in assignments:
                if name_key(title) == name_key(assignment):
                    self.columns.setdefault(assignment, {})[roster.lms.value] = column
                    matched[assignment] = column
        return matched
