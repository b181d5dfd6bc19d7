"""What the class understood and what it did not: a PNG, an HTML page and a text summary per assignment.

Two sources, both read-only:

* **nbgrader's gradebook** (always there): every grade cell's score per submission. From it, per question,
  *facility* (the mean share of the points students got: 0.9 = easy) and *discrimination*: the corrected
  point-biserial correlation of the question's score with the rest of the total (does a student who does well
  overall do well here?) and the upper–lower index (mean share of the top 27 % of totals minus the bottom 27 %).
  Answers still waiting for a human (``Grade.needs_manual_grade``) are counted, kept out of their question's
  statistics, and make the totals provisional.
* **the judge's verdicts** (``WORKSPACE/verdicts/<assignment>/<student>/<notebook>.json``, one typed verdict per
  autograded test cell, written by autograde): which option each student chose, with the misconception a
  wrong option stands for, and for coding tasks which check failed how often with which class of message.
  Without these files the report says so and shows the gradebook's part.

Plus similar-submission pairs (``grader.similarity``) from the submitted notebooks' answer cells.
"""

import base64
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from nbgrader.api import MissingEntry

from grader import similarity

VERDICT_VERSION = 1
UPPER_LOWER_FRACTION = 0.27


# ----------------------------------------------------------------------------------- the arithmetic

def facility(scores, points):
    """Mean share of the points (None without scores or points)."""
    return statistics.mean(scores) / points if scores and points else None


def point_biserial(item, totals):
    """Correlation of an item's scores with the rest of each total (total minus the item); None if either is constant."""
    item = np.asarray(item, dtype=float)
    rest = np.asarray(totals, dtype=float) - item
    if len(item) < 3 or item.std() == 0 or rest.std() == 0:
        return None
    return float(np.corrcoef(item, rest)[0, 1])


def upper_lower(item_shares, totals, fraction=UPPER_LOWER_FRACTION):
    """Mean item share of the top ``fraction`` of totals minus that of the bottom ``fraction`` (None below 4)."""
    if len(totals) < 4:
        return None
    order = np.argsort(np.asarray(totals, dtype=float), kind="stable")
    size = max(1, int(round(fraction * len(totals))))
    shares = np.asarray(item_shares, dtype=float)
    return float(shares[order[-size:]].mean() - shares[order[:size]].mean())


def option_label(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


# ----------------------------------------------------------------------------------- what is measured

@dataclass(frozen=True)
class ItemStats:
    notebook: str
    grade_id: str
    kind: str                 # "test", "written answer", "code graded by hand"
    points: float
    graded: int               # submissions whose score for it is final
    to_grade: int             # submissions whose answer still needs a human
    facility: float = None
    full_share: float = None
    discrimination: float = None
    upper_lower: float = None


@dataclass(frozen=True)
class OptionShare:
    notebook: str
    answer: str
    option: str
    count: int
    share: float
    correct: bool
    misconception: str = None


@dataclass(frozen=True)
class CheckFailure:
    notebook: str
    grade_id: str
    kind: str
    check: str
    summary: str
    count: int
    share: float              # of the submissions judged on that test
    example: str = ""


@dataclass
class Report:
    assignment: str
    submissions: int
    max_score: float
    totals: list
    items: list
    to_grade: int
    provisional_students: int
    verdict_files: int = 0
    options: list = field(default_factory=list)
    letters: list = field(default_factory=list)   # OptionShare per selected letter of multi-select answers
    failures: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # verdict files that could not be read


def gradebook_part(workspace, assignment):
    with workspace.gradebook() as gradebook:
        try:
            row = gradebook.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"assignment '{assignment}' is not in the gradebook") from None
        solutions = {(n.name, c.name) for n in row.notebooks for c in n.solution_cells}
        cells = {}  # (notebook, grade_id) -> (kind, points)
        for notebook in row.notebooks:
            for cell in notebook.grade_cells:
                kind = ("written answer" if cell.cell_type == "markdown" else
                        "code graded by hand" if (notebook.name, cell.name) in solutions else "test")
                cells[notebook.name, cell.name] = (kind, float(cell.max_score))
        students, totals, scores, pending = [], [], defaultdict(dict), defaultdict(set)
        for submission in row.submissions:
            students.append(submission.student.id)
            totals.append(float(submission.score))
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    key = (notebook.name, grade.name)
                    scores[key][submission.student.id] = float(grade.score)
                    if grade.needs_manual_grade:
                        pending[key].add(submission.student.id)
        max_score = float(row.max_score or 0)
    items = []
    total_of = dict(zip(students, totals))
    for key in sorted(cells):
        kind, points = cells[key]
        graded = [s for s in students if s in scores[key] and s not in pending[key]]
        values = [scores[key][s] for s in graded]
        shares = [v / points for v in values] if points else []
        items.append(ItemStats(key[0], key[1], kind, points, len(graded), len(pending[key]),
                               facility(values, points), (sum(1 for v in values if v >= points) / len(values)) if values else None,
                               point_biserial(values, [total_of[s] for s in graded]),
                               upper_lower(shares, [total_of[s] for s in graded]) if shares else None))
    provisional = {s for students_ in pending.values() for s in students_}
    return Report(assignment, len(students), max_score, sorted(totals), items,
                  sum(len(p) for p in pending.values()), len(provisional))


def verdicts_part(workspace, report):
    folder = workspace.root / "verdicts" / report.assignment
    files = sorted(folder.glob("*/*.json")) if folder.is_dir() else []
    chosen = defaultdict(dict)                 # (notebook, answer) -> {student: value}
    correct = defaultdict(lambda: defaultdict(list))  # (notebook, answer) -> value -> [passed…]
    misconceptions = defaultdict(lambda: defaultdict(set))
    judged = Counter()                         # (notebook, grade_id) -> submissions judged
    failures = Counter()
    examples = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
            if data.get("version") != VERDICT_VERSION or not isinstance(data.get("tests"), list):
                raise ValueError(f"not a version-{VERDICT_VERSION} verdict file")
            student, notebook = data["student"], data["notebook"]
            for test in data["tests"]:
                grade_id, passed = test["grade_id"], bool(test["passed"])
                judged[notebook, grade_id] += 1
                for name, value in (test.get("answers") or {}).items():
                    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                        value = tuple(value) if isinstance(value, list) else value
                        chosen[notebook, name][student] = value
                        correct[notebook, name][value].append(passed)
                        if test.get("misconception"):
                            misconceptions[notebook, name][value].add(test["misconception"])
                failure = test.get("failure")
                if not passed and isinstance(failure, dict):
                    key = (notebook, grade_id, failure.get("kind") or "", failure.get("check") or "",
                           failure.get("summary") or "")
                    failures[key] += 1
                    examples.setdefault(key, test.get("message") or "")
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.problems.append((str(path.relative_to(workspace.root)), f"{type(error).__name__}: {error}"))
    report.verdict_files = len(files) - len(report.problems)
    for (notebook, name), by_student in sorted(chosen.items()):
        counts = Counter(by_student.values())
        total = sum(counts.values())
        for value, count in counts.most_common():
            report.options.append(OptionShare(notebook, name, option_label(value), count, count / total,
                                              all(correct[notebook, name][value]),
                                              "; ".join(sorted(misconceptions[notebook, name][value])) or None))
        if any(isinstance(v, tuple) for v in by_student.values()):
            letters = Counter(letter for v in by_student.values() for letter in (v if isinstance(v, tuple) else (v,)))
            for letter, count in sorted(letters.items()):
                report.letters.append(OptionShare(notebook, name, letter, count, count / total, False))
    for key, count in failures.most_common():
        notebook, grade_id, kind, check, summary = key
        report.failures.append(CheckFailure(notebook, grade_id, kind, check, summary, count,
                                            count / judged[notebook, grade_id], examples[key]))
    return report


def similarity_part(workspace, report):
    answers = {}
    release = workspace.root / "release" / report.assignment
    for path in sorted(release.glob("*.ipynb")) if release.is_dir() else []:
        cells = similarity.answer_cells(json.loads(path.read_text()))
        for submitted in sorted((workspace.root / "submitted").glob(f"*/{report.assignment}/{path.name}")):
            student = submitted.parts[-3]
            for grade_id, text in similarity.student_answers(submitted, cells).items():
                answers.setdefault(student, {})[f"{path.stem}:{grade_id}"] = text
    report.pairs = similarity.similar_pairs(answers)
    return report


def build_report(workspace, assignment):
    report = gradebook_part(workspace, assignment)
    if not report.submissions:
        raise ValueError(f"no graded submissions of '{assignment}' in the gradebook: run autograde first")
    return similarity_part(workspace, verdicts_part(workspace, report))


# ----------------------------------------------------------------------------------- what is shown

def _percent(value):
    return "—" if value is None else f"{value:.0%}"


def _signed(value):
    return "—" if value is None else f"{value:+.2f}"


def text_summary(report):
    scores = report.totals
    lines = [f"Assignment '{report.assignment}': {report.submissions} submissions, maximum {report.max_score:g} points",
             f"total: mean {statistics.mean(scores):.2f}, median {statistics.median(scores):.2f}, "
             f"min {min(scores):g}, max {max(scores):g}" + (" (provisional)" if report.to_grade else "")]
    if report.to_grade:
        lines.append(f"PROVISIONAL: {report.to_grade} answers of {report.provisional_students} students still need a "
                     "human (course-grader formgrader); their questions' statistics use the graded ones only")
    lines += ["", "per question: facility (mean share of points), discrimination (corrected point-biserial, "
                  "upper-lower index)"]
    for item in report.items:
        pending = f"   {item.to_grade} to grade by hand" if item.to_grade else ""
        lines.append(f"  {item.notebook:22s} {item.grade_id:18s} {item.kind:20s} {item.points:4g} pts  "
                     f"facility {_percent(item.facility):>4s}  r {_signed(item.discrimination):>5s}  "
                     f"D {_signed(item.upper_lower):>5s}{pending}")
    if report.verdict_files:
        lines += ["", f"options chosen ({report.verdict_files} verdict files):"]
        for option in report.options:
            lines.append(f"  {option.notebook}:{option.answer} = {option.option:10s} {option.count:4d} "
                         f"({option.share:.0%}){'  correct' if option.correct else ''}"
                         f"{'  — ' + option.misconception if option.misconception else ''}")
        if report.failures:
            lines += ["", "failed checks (share of judged submissions):"]
            for failure in report.failures:
                lines.append(f"  {failure.notebook}:{failure.grade_id:16s} {failure.kind:12s} {failure.check:18s} "
                             f"{failure.count:4d} ({failure.share:.0%})  {failure.summary}")
    else:
        lines += ["", "options chosen and failed checks: no verdict files in "
                      f"verdicts/{report.assignment}/ (autograde writes them); scores per question only"]
    for path, problem in report.problems:
        lines.append(f"  unreadable verdict file {path}: {problem}")
    lines += ["", f"similar submissions (answer text ≥ {similarity.THRESHOLD:g} % alike): "
                  + (str(len(report.pairs)) if report.pairs else "none")]
    for pair in report.pairs:
        lines.append(f"  {pair.first} ~ {pair.second}: {pair.similarity:g} % over {', '.join(pair.answers)}"
                     + (f" (identical: {', '.join(pair.identical)})" if pair.identical else ""))
    return "\n".join(lines) + "\n"


def figure(report):
    questions = sorted({(o.notebook, o.answer) for o in report.options})
    panels = 2 + len(questions) + (1 if report.failures else 0)
    columns = 2
    rows = (panels + 1) // 2
    fig = Figure(figsize=(13, 3.6 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()

    ax = axes[0]
    labels = [f"{i.notebook}:{i.grade_id}" for i in report.items]
    values = [100 * (i.facility or 0) for i in report.items]
    colors = ["tab:gray" if i.to_grade else "tab:blue" for i in report.items]
    ax.barh(labels, values, color=colors)
    for y, item in enumerate(report.items):
        note = f"r {_signed(item.discrimination)}" + (f", {item.to_grade} to grade" if item.to_grade else "")
        ax.text(1, y, note, va="center", fontsize=7, color="white" if values[y] > 25 else "black")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_title("Facility per question (gray: answers still to grade by hand)", fontsize=9)
    ax.set_xlabel("mean share of the points (%)")
    ax.tick_params(labelsize=7)

    ax = axes[1]
    ax.hist(report.totals, bins=np.arange(0, report.max_score + 2) - 0.5, color="tab:blue", edgecolor="white")
    ax.set_title(f"Total scores ({report.submissions} submissions{', provisional' if report.to_grade else ''})",
                 fontsize=9)
    ax.set_xlabel(f"points (of {report.max_score:g})")
    ax.set_ylabel("submissions")

    for ax, (notebook, answer) in zip(axes[2:], questions):
        shown = [o for o in report.options if (o.notebook, o.answer) == (notebook, answer)][:8]
        ax.barh([o.option for o in shown], [100 * o.share for o in shown],
                color=["tab:green" if o.correct else "tab:red" for o in shown])
        for y, option in enumerate(shown):
            if option.misconception:
                ax.text(1, y, option.misconception[:70], va="center", fontsize=7)
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_title(f"{notebook}: {answer} — options chosen (green: right)", fontsize=9)
        ax.set_xlabel("share of students (%)")
        ax.set_ylabel("option")
    if report.failures:
        ax = axes[2 + len(questions)]
        shown = report.failures[:10]
        ax.barh([f"{f.grade_id}: {f.summary[:40]}" for f in shown], [100 * f.share for f in shown], color="tab:orange")
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_title("Failed checks, by class of message", fontsize=9)
        ax.set_xlabel("share of judged submissions (%)")
        ax.tick_params(labelsize=7)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"'{report.assignment}': what the class understood")
    return fig


HTML = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ r.assignment }}: class report</title>
<style>body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}td.n{text-align:right}.warn{background:#fff3cd;padding:.5em 1em}
.right{color:#1a7f37}.wrong{color:#b42318}img{max-width:100%}</style></head><body>
<h1>'{{ r.assignment }}': what the class understood</h1>
<p>{{ r.submissions }} submissions, maximum {{ '%g' % r.max_score }} points; mean total {{ '%.2f' % mean }}.</p>
{% if r.to_grade %}<p class="warn" id="provisional"><b>Provisional:</b> {{ r.to_grade }} answers of {{ r.provisional_students }}
students still need a human (<code>course-grader formgrader</code>). Their questions' statistics use the graded answers only,
and the totals will change.</p>{% endif %}
<img alt="facility per question, total scores, options chosen and failed checks" src="data:image/png;base64,{{ png }}">
<h2>Questions</h2>
<p>Facility: mean share of the points (high = easy). Discrimination: correlation of the question's score with the rest of the
total (r) and the top 27 % minus the bottom 27 % (D); near 0 or negative means the question does not separate students who
understood from those who did not.</p>
<table id="items"><tr><th>notebook</th><th>question</th><th>kind</th><th>points</th><th>graded</th><th>to grade by hand</th>
<th>facility</th><th>full marks</th><th>r</th><th>D</th></tr>
{% for i in r.items %}<tr><td>{{ i.notebook }}</td><td>{{ i.grade_id }}</td><td>{{ i.kind }}</td><td class="n">{{ '%g' % i.points }}</td>
<td class="n">{{ i.graded }}</td><td class="n">{{ i.to_grade or '' }}</td><td class="n">{{ pct(i.facility) }}</td>
<td class="n">{{ pct(i.full_share) }}</td><td class="n">{{ signed(i.discrimination) }}</td><td class="n">{{ signed(i.upper_lower) }}</td></tr>
{% endfor %}</table>
<h2>Options chosen</h2>
{% if r.verdict_files %}<table id="options"><tr><th>question</th><th>option</th><th>students</th><th>share</th><th></th><th>misconception</th></tr>
{% for o in r.options %}<tr><td>{{ o.notebook }}: {{ o.answer }}</td><td>{{ o.option }}</td><td class="n">{{ o.count }}</td>
<td class="n">{{ pct(o.share) }}</td><td class="{{ 'right' if o.correct else 'wrong' }}">{{ 'right' if o.correct else 'wrong' }}</td>
<td>{{ o.misconception or '' }}</td></tr>{% endfor %}</table>
{% if r.letters %}<table id="letters"><tr><th>question</th><th>statement selected</th><th>students</th><th>share</th></tr>
{% for o in r.letters %}<tr><td>{{ o.notebook }}: {{ o.answer }}</td><td>{{ o.option }}</td><td class="n">{{ o.count }}</td>
<td class="n">{{ pct(o.share) }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Failed checks</h2>
<table id="failures"><tr><th>test</th><th>kind</th><th>check</th><th>message class</th><th>submissions</th><th>share</th><th>example</th></tr>
{% for f in r.failures %}<tr><td>{{ f.notebook }}: {{ f.grade_id }}</td><td>{{ f.kind }}</td><td>{{ f.check }}</td><td>{{ f.summary }}</td>
<td class="n">{{ f.count }}</td><td class="n">{{ pct(f.share) }}</td><td>{{ f.example }}</td></tr>{% endfor %}</table>
{% else %}<p>No verdict files in <code>verdicts/{{ r.assignment }}/</code> (autograde writes them): the options students chose
and the checks they failed are not known here; the scores per question above come from the gradebook.</p>{% endif %}
{% for path, problem in r.problems %}<p class="warn">Unreadable verdict file {{ path }}: {{ problem }}</p>{% endfor %}
<h2>Similar submissions</h2>
<p>Pairs whose answers (code with comments, and written explanations; the release's own lines, short answers and answers
many students share left out) are at least {{ threshold }} % alike. A signal to look at, not a verdict.</p>
{% if r.pairs %}<table id="pairs"><tr><th>student</th><th>student</th><th>similarity</th><th>answers compared</th><th>identical</th></tr>
{% for p in r.pairs %}<tr><td>{{ p.first }}</td><td>{{ p.second }}</td><td class="n">{{ '%g' % p.similarity }} %</td>
<td>{{ p.answers | join(', ') }}</td><td>{{ p.identical | join(', ') }}</td></tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}
</body></html>
""")


def write_report(workspace, assignment, png_path, html_path, text_path):
    report = build_report(workspace, assignment)
    fig = figure(report)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    Path(png_path).write_bytes(buffer.getvalue())
    Path(html_path).write_text(HTML.render(r=report, mean=statistics.mean(report.totals), pct=_percent, signed=_signed,
                                           threshold=f"{similarity.THRESHOLD:g}",
                                           png=base64.b64encode(buffer.getvalue()).decode()))
    text = text_summary(report)
    Path(text_path).write_text(text)
    return report, text
