"""Collect submissions from an LMS export (a zip, or the folder it was unpacked into) into nbgrader's submitted/.

Layouts (their conventions are described in ``grader.lms``):

* Canvas "Download Submissions": ``doejane[_LATE]_1001_2001_quiz-1.ipynb`` — the student is the roster student
  whose LMS user id is 1001; of several uploads of one notebook the largest attachment id (then the larger
  ``-N``) is graded; ``LATE`` makes the submission late.
* Moodle "Download all submissions": ``Jane Doe_123456_assignsubmission_file_/quiz.ipynb`` — the participant id
  is looked up in Moodle's grading worksheet (``--worksheet``), which also gives the submission time; without
  it the full name must match exactly one roster student.
* plain: ``jdoe/quiz.ipynb`` or ``jdoe/quiz/quiz.ipynb`` (a roster id, LMS user id or e-mail as a path part),
  with nbgrader's ``timestamp.txt`` beside the notebooks if there is one.

Never used: the zip's entry times (Canvas and Moodle write the export's time into every entry). Lateness goes
where nbgrader reads it: ``submitted/<student>/<assignment>/timestamp.txt`` against the gradebook's due date,
scored by nbgrader's late-submission plugin at autograde. Canvas says only *whether* a file was late: such a
submission is recorded one second after the due date, an on-time one at the due date.

The export is only read. A file that matches no student or no notebook, or is ambiguous, is copied to
``unmatched/<batch>/`` and reported, with a suggestion when it looks like a notebook of the assignment (renamed,
a browser's ``(1)`` copy, inside a zip) and the command that accepts it (``--match ENTRY=NOTEBOOK``). Older
uploads go to ``unmatched/<batch>/superseded/``, a replaced earlier collection to ``…/previous/``.
"""

import csv
import io
import json
import re
import shlex
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from nbgrader.api import MissingEntry
from rapidfuzz import fuzz

from grader.lms import Entry, Lms, canvas_name_key, copy_stem, name_key, parse_entry
from grader.workspace import WorkspaceError, timestamp_text

MAX_FILE_BYTES = 50 * 2**20  # as autograde: a larger "notebook" is not one
NESTED_SEPARATOR = "::"      # ENTRY::MEMBER names a file inside a zip that is inside the export
TOKEN_SPLIT = re.compile(r"[\\/_\s]+")
ONE_SECOND = timedelta(seconds=1)


@dataclass
class Item:
    """One file of the export (or of a zip inside it)."""

    entry: Entry
    size: int
    read: callable
    key: str  # how --match names it: the path in the export, or OUTER::MEMBER


@dataclass
class Candidate:
    item: Item
    student: str
    notebook: str


@dataclass(frozen=True)
class Suggestion:
    notebook: str
    why: str
    command: str  # the collection again, with --match for this file


@dataclass
class CollectResult:
    collected: list = field(default_factory=list)   # (student, notebook, export path, late: bool|None)
    unmatched: list = field(default_factory=list)   # (export path, reason, [Suggestion])
    superseded: list = field(default_factory=list)  # (export path, reason)
    notes: list = field(default_factory=list)       # (who or what, note)
    batch: Path = None

    @property
    def students(self):
        return sorted({student for student, _, _, _ in self.collected})


# ----------------------------------------------------------------------------------- reading the export

@contextmanager
def open_export(source):
    """The files of a folder or zip, open until the block ends (their ``read`` works only inside it)."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no folder or zip at {source}")
    if source.is_dir():
        yield [Item(parse_entry(str(p.relative_to(source).as_posix())), p.stat().st_size, p.read_bytes,
                    str(p.relative_to(source).as_posix()))
               for p in sorted(source.rglob("*")) if p.is_file()]
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{source} is neither a folder nor a readable zip file") from None
    with archive:
        yield [Item(parse_entry(info.filename), info.file_size, lambda info=info: archive.read(info), info.filename)
               for info in archive.infolist() if not info.is_dir()]


def nested_items(item):
    """The files of a zip that a student uploaded (read into memory: it is at most MAX_FILE_BYTES)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(item.read()))
        infos = [info for info in archive.infolist() if not info.is_dir() and not _ignored(info.filename)]
    except (zipfile.BadZipFile, OSError, ValueError):
        return []
    return [Item(item.entry, info.file_size, lambda info=info: archive.read(info),
                 f"{item.key}{NESTED_SEPARATOR}{info.filename}") for info in infos if info.file_size <= MAX_FILE_BYTES]


def _ignored(path):
    name = PurePosixPath(path).name
    return name.startswith(".") or "__MACOSX" in path


# ----------------------------------------------------------------------------------- Moodle's worksheet

@dataclass
class WorksheetRow:
    participant: str
    full_name: str
    email: str
    submitted: datetime = None  # aware


def read_worksheet(workspace, path):
    """Moodle's grading worksheet: participant id -> row (its time read in the workspace's time zone)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"no grading worksheet at {path}") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "Identifier" not in reader.fieldnames:
        raise ValueError(f"{path} is not Moodle's grading worksheet (no 'Identifier' column); download it from the "
                         "assignment: View all submissions → Grading action → Download grading worksheet")
    rows = {}
    for record in reader:
        match = re.search(r"(\d+)\s*$", record.get("Identifier") or "")
        if not match:
            continue
        when = (record.get("Last modified (submission)") or "").strip()
        submitted = workspace.parse_date(when) if when and when != "-" else None
        rows[match.group(1)] = WorksheetRow(match.group(1), (record.get("Full name") or "").strip(),
                                            (record.get("Email address") or "").strip().lower(), submitted)
    return rows


# ----------------------------------------------------------------------------------- who and which notebook

class Students:
    """Finds the roster student an export entry belongs to."""

    def __init__(self, gradebook_students, participants=None):
        self.ids = {s.id for s in gradebook_students}
        self.by_lms_id = {s.lms_user_id: s.id for s in gradebook_students if s.lms_user_id}
        self.tokens = {s.id: {t.lower() for t in (s.id, s.lms_user_id, s.email) if t} for s in gradebook_students}
        self.by_email = {s.email.lower(): s.id for s in gradebook_students if s.email}
        self.by_name = {}
        for s in gradebook_students:
            for key in {name_key(f"{s.first_name or ''}{s.last_name or ''}"), canvas_name_key(s.last_name, s.first_name)}:
                if key:
                    self.by_name.setdefault(key, set()).add(s.id)
        self.participants = {}  # Moodle participant id -> student id, from the worksheet
        for participant, row in (participants or {}).items():
            student = self.by_email.get(row.email) or self._one(self.by_name.get(name_key(row.full_name)))
            if student:
                self.participants[participant] = student

    @staticmethod
    def _one(found):
        return next(iter(found)) if found and len(found) == 1 else None

    def match(self, entry):
        """(student id, None) or (None, reason)."""
        if entry.lms is Lms.CANVAS:
            if entry.anonymous_id:
                return None, ("anonymous grading: Canvas does not say whose file this is (turn anonymity off "
                              "before downloading)")
            if entry.user_id in self.by_lms_id:
                return self.by_lms_id[entry.user_id], None
            return None, (f"Canvas user {entry.user_id} ({entry.name}) is not in the roster: import the class "
                          "from Canvas's gradebook export (course-grader roster)")
        if entry.lms is Lms.MOODLE:
            if entry.participant_id in self.participants:
                return self.participants[entry.participant_id], None
            found = self.by_name.get(name_key(entry.name), set())
            if len(found) == 1:
                return next(iter(found)), None
            if found:
                return None, (f"{len(found)} roster students are named {entry.name!r}: give Moodle's grading "
                              "worksheet (--worksheet) to tell them apart by participant id")
            return None, f"Moodle participant {entry.participant_id} ({entry.name}) matches no roster student"
        tokens = {t.lower() for t in TOKEN_SPLIT.split(entry.path) if t}
        tokens |= {part.lower() for part in PurePosixPath(entry.path).parts}
        found = sorted(student for student, keys in self.tokens.items() if keys & tokens)
        if len(found) == 1:
            return found[0], None
        if found:
            return None, f"matches several students: {', '.join(found)}"
        return None, "matches no student in the roster (no roster id, LMS user id or e-mail in its path)"


def notebook_of(entry, notebooks):
    """The notebook the file is, by its name as the LMS's convention gives it, or None."""
    if PurePosixPath(entry.filename).suffix.lower() != ".ipynb":
        return None
    stem = entry.stem.lower()
    for notebook in notebooks:
        if stem == notebook.lower():
            return notebook
    if entry.lms is Lms.PLAIN:  # e.g. jdoe_quiz.ipynb: the student's id, then the notebook's name
        for notebook in notebooks:
            if re.search(rf"(^|[_\s]){re.escape(notebook.lower())}$", stem):
                return notebook
    return None


def grade_ids_of(data):
    """nbgrader ids of a notebook's cells (empty for anything that is not a notebook)."""
    try:
        cells = json.loads(data).get("cells", [])
        return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells if isinstance(c, dict)} - {None}
    except (ValueError, AttributeError, UnicodeDecodeError):
        return set()


def suggest(item, notebooks, cell_ids):
    """[(key, notebook, why)]: what this unmatched file probably is. ``cell_ids``: notebook -> its nbgrader ids."""
    if item.size > MAX_FILE_BYTES:
        return []
    name = PurePosixPath(item.entry.filename)
    if name.suffix.lower() == ".zip" and NESTED_SEPARATOR not in item.key:
        found = []
        for member in nested_items(item):
            member_entry = Entry(member.key, Lms.PLAIN, PurePosixPath(member.key.split(NESTED_SEPARATOR)[1]).name)
            exact = notebook_of(member_entry, notebooks)
            if exact:
                found.append((member.key, exact, "a notebook inside the uploaded zip"))
            else:
                found += [(key, nb, f"inside the uploaded zip: {why}")
                          for key, nb, why in suggest(Item(member_entry, member.size, member.read, member.key),
                                                      notebooks, cell_ids)]
        return found
    if name.suffix.lower() != ".ipynb":
        return []
    ids = grade_ids_of(item.read())
    by_cells = [nb for nb in notebooks if ids and cell_ids.get(nb) and len(ids & cell_ids[nb]) >= len(cell_ids[nb]) / 2]
    if len(by_cells) == 1:
        return [(item.key, by_cells[0], f"its cells are {by_cells[0]}.ipynb's (nbgrader ids)")]
    stem = item.entry.stem
    for notebook in notebooks:
        if copy_stem(stem).lower() == notebook.lower():
            return [(item.key, notebook, "a browser's numbered copy of the name")]
    scored = sorted(((fuzz.partial_ratio(name_key(notebook), name_key(stem)), notebook) for notebook in notebooks),
                    reverse=True)
    if scored and scored[0][0] >= 80 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return [(item.key, scored[0][1], "a renamed copy of the name")]
    return []


# ----------------------------------------------------------------------------------- the whole collection

def collect(workspace, source, assignment, matches=(), worksheet=None, command=None, now=None):
    """Copy ``source``'s submissions of ``assignment`` into submitted/. ``matches``: ["ENTRY=NOTEBOOK", …]
    the instructor accepted; ``worksheet``: Moodle's grading worksheet; ``command``: how the instructor
    started this collection, for the suggested commands."""
    now = now or datetime.now(timezone.utc)
    worksheet_rows = read_worksheet(workspace, worksheet) if worksheet else {}
    with workspace.gradebook() as gradebook:
        try:
            notebook_rows = gradebook.find_assignment(assignment).notebooks
        except MissingEntry:
            raise WorkspaceError(f"assignment '{assignment}' is not in the gradebook: run "
                                 f"`course-grader release {assignment}` first.") from None
        notebooks = sorted(n.name for n in notebook_rows)
        cell_ids = {n.name: {c.name for c in (*n.grade_cells, *n.solution_cells, *n.source_cells)} for n in notebook_rows}
        roster = list(gradebook.students)
        if not roster:
            raise ValueError("the gradebook has no students: import a roster first (course-grader roster ROSTER.csv)")
        students = Students(roster, worksheet_rows)
    due = workspace.due_date(assignment)
    accepted = _parse_matches(matches, notebooks)
    batch = workspace.root / "unmatched" / now.strftime("%Y%m%d-%H%M%S-%f")
    result = CollectResult(batch=batch)
    command = command or f"course-grader collect EXPORT --assignment {assignment}"

    with open_export(source) as items:
        by_key = {item.key: item for item in items}
        for key in accepted:
            outer = key.split(NESTED_SEPARATOR)[0]
            if outer not in by_key:
                raise ValueError(f"--match names {outer!r}, which is not a file of {source}")
        candidates, timestamps = [], {}
        for item in items:
            if _ignored(item.key):
                continue
            who, reason = students.match(item.entry)
            if PurePosixPath(item.entry.filename).name == "timestamp.txt" and item.entry.lms is Lms.PLAIN and who:
                timestamps[who] = item.read().decode("utf-8", "replace").strip()
                continue
            nested = [m for m in nested_items(item) if m.key in accepted] if item.size <= MAX_FILE_BYTES and any(
                k.startswith(item.key + NESTED_SEPARATOR) for k in accepted) else []
            for chosen in nested or [item]:
                which = accepted.get(chosen.key) or notebook_of(chosen.entry, notebooks)
                if who and which and chosen.size <= MAX_FILE_BYTES:
                    candidates.append(Candidate(chosen, who, which))
                    continue
                if chosen.size > MAX_FILE_BYTES:
                    why = f"larger than {MAX_FILE_BYTES // 2**20} MiB: not copied (it stays in the export)"
                elif not who:
                    why = reason
                elif item.entry.lms is Lms.MOODLE and item.entry.plugin != "file":
                    why = f"Moodle's {item.entry.plugin} submission, not a file"
                else:
                    why = f"not a notebook of '{assignment}' ({', '.join(n + '.ipynb' for n in notebooks)})"
                hints = [Suggestion(nb, why_, f"{command} --match {shlex.quote(f'{key}={nb}')}")
                         for key, nb, why_ in (suggest(chosen, notebooks, cell_ids) if who else [])]
                if chosen.size <= MAX_FILE_BYTES:
                    _keep(batch, chosen.key.replace(NESTED_SEPARATOR, "/"), chosen.read())
                result.unmatched.append((chosen.key, why, hints))

        chosen_files = _newest(candidates, result, batch)
        by_student = {}
        for (student, notebook), candidate in sorted(chosen_files.items()):
            by_student.setdefault(student, []).append(candidate)
        for student, files in by_student.items():
            when = _submitted_at(student, files, due, timestamps, worksheet_rows, students, result, assignment)
            folder = workspace.root / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            for candidate in files:
                data = candidate.item.read()
                target = folder / f"{candidate.notebook}.ipynb"
                if target.exists() and target.read_bytes() != data:
                    _keep(batch / "previous" / student / assignment, target.name, target.read_bytes())
                target.write_bytes(data)
                if not data.strip():
                    result.notes.append((student, f"{candidate.item.key}: empty file (it will score 0)"))
                result.collected.append((student, candidate.notebook, candidate.item.key, candidate.item.entry.late))
            if when is not None:
                stamp = folder / "timestamp.txt"
                text = when if isinstance(when, str) else timestamp_text(when)
                if stamp.exists() and stamp.read_text().strip() != text:
                    _keep(batch / "previous" / student / assignment, "timestamp.txt", stamp.read_bytes())
                stamp.write_text(text)
    if result.unmatched or result.superseded:
        batch.mkdir(parents=True, exist_ok=True)
    return result


def _parse_matches(matches, notebooks):
    accepted = {}
    for text in matches:
        key, sep, notebook = text.rpartition("=")
        notebook = notebook.strip()
        notebook = notebook[:-len(".ipynb")] if notebook.endswith(".ipynb") else notebook
        if not sep or not key or notebook not in notebooks:
            raise ValueError(f"--match {text!r}: give ENTRY=NOTEBOOK with NOTEBOOK one of {', '.join(notebooks)}")
        accepted[key] = notebook
    return accepted


def _newest(candidates, result, batch):
    """(student, notebook) -> the candidate the LMS's own order says is newest; others superseded."""
    grouped = {}
    for candidate in candidates:
        grouped.setdefault((candidate.student, candidate.notebook), []).append(candidate)
    chosen = {}
    for key, group in grouped.items():
        group.sort(key=lambda c: c.item.entry.order)
        newest = group[-1]
        if len(group) > 1 and group[-2].item.entry.order == newest.item.entry.order:
            tied = [c for c in group if c.item.entry.order == newest.item.entry.order]
            for candidate in tied:
                _keep(batch, candidate.item.key.replace(NESTED_SEPARATOR, "/"), candidate.item.read())
                result.unmatched.append((candidate.item.key, f"{len(tied)} files are {key[1]}.ipynb for {key[0]} and "
                                         "the export does not say which is newer: choose one with --match", []))
            continue
        for older in group[:-1]:
            _keep(batch / "superseded", older.item.key.replace(NESTED_SEPARATOR, "/"), older.item.read())
            result.superseded.append((older.item.key, f"{newest.item.key} is a newer upload of {key[1]}.ipynb by "
                                      f"{key[0]} (Canvas attachment {newest.item.entry.attachment})"))
        chosen[key] = newest
    return chosen


def _submitted_at(student, files, due, timestamps, worksheet_rows, students, result, assignment):
    """What goes into timestamp.txt (aware datetime, nbgrader's own text, or None), from the LMS's data only."""
    entries = [c.item.entry for c in files]
    if any(e.lms is Lms.CANVAS for e in entries):
        late = any(e.late for e in entries)
        if due is None:
            if late:
                result.notes.append((student, f"Canvas marked it LATE, but '{assignment}' has no due date: set one "
                                              f"(course-grader release {assignment} --due …) and collect again"))
            return None
        return due + ONE_SECOND if late else due
    if any(e.lms is Lms.MOODLE for e in entries):
        rows = [worksheet_rows.get(e.participant_id) for e in entries]
        times = [row.submitted for row in rows if row and row.submitted]
        if times:
            return max(times)
        if not worksheet_rows:
            result.notes.append((student, "Moodle's download has no submission times: give its grading worksheet "
                                          "(--worksheet) to apply the due date"))
        return None
    return timestamps.get(student)


def _keep(folder, name, data):
    # Names come from an archive: keep only plain parts, so nothing lands outside `folder`.
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    target = Path(folder).joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
